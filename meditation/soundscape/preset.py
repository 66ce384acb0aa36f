"""Reading soundscape presets: TOML files that say which layers play, how loud, where.

Preset format::

    name = "stream"
    description = "A gentle mountain stream"
    fade_s = 6.0                   # crossfade when scenes change

    [layers.river]                 # every layer the preset uses
    level_db = -10.0               # relative to the narration's level
    flow = 0.6                     # any other key is a layer parameter

    [layers.rain]                  # any name with a file is a recording
    file = "rain.flac"             # relative to this preset file

    [voice]                        # voice-chain settings this soundscape suits
    reverb = "hall"                # (see meditation.voicefx)

    [wind-down]                    # the narration winds down over the session
    rate = 0.75                    # (see meditation.winddown; a script's own wins)
    level = "-4dB"

    [lexicon]                      # how words are said over this soundscape
    Metta = "MET-tah"              # (see meditation.lexicon; the script's own win)

    [scenes.default]               # scenes not named below, and scriptless tracks
    river = 0.0                    # layer = gain in dB on top of level_db

    [scenes."The valley"]          # a scene by its heading (case-insensitive)
    river = 0.0
    fade_s = 10.0

    [[cues]]                       # one-off events
    layer = "bell"
    action = "strike"
    at_scene = "The awakening"     # or at_text = "words in the script", or at = "start"/"end"
    offset_s = 0.5
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import MeditationError, SoundscapeError
from ..lexicon import Entry, lexicon_entries
from ..timeline import Choice
from ..tomlfile import read_toml
from ..voicefx import STYLES, voice_fx_from
from ..winddown import WindDown, parse_wind_down
from .layers import LAYERS, Layer
from .layers.base import check_range

__all__ = [
    "Preset",
    "LayerSpec",
    "SceneSpec",
    "CueSpec",
    "Anchor",
    "load_preset",
    "list_presets",
    "PRESET_DIRS",
    "check_scene_names",
]

# The top-level soundscapes/ folder, reached through a symlink in a checkout and copied into a wheel.
_PACKAGE_PRESETS = (Path(__file__).resolve().parent.parent / "data" / "soundscapes").resolve()
PRESET_DIRS = (_PACKAGE_PRESETS,)

# The ranges of a preset's own numbers, declared once: checked here, shown in the README reference.
DEFAULT_FADE_S = 6.0
FADE_S_RANGE = (0.0, 120.0)
LEVEL_DB_RANGE = (-80.0, 12.0)
SCENE_DB_RANGE = (-80.0, 24.0)
OFFSET_S_RANGE = (-600.0, 600.0)


@dataclass(frozen=True)
class LayerSpec:
    """One layer of a preset."""

    name: str
    level_db: float
    params: Mapping[str, Any]
    kind: str = ""
    """The registered layer that plays it, when not ``name`` (``recording`` for a ``file = ...`` table)."""

    @property
    def cls(self) -> type[Layer]:
        return LAYERS[self.kind or self.name]


@dataclass(frozen=True)
class SceneSpec:
    """How one scene sets the layers: dB offsets of those that play; the others are silent."""

    layers: Mapping[str, float]
    fade_s: float


class Anchor(enum.StrEnum):
    """Where ``at = ...`` places a cue: the start of the track or the end of its last words."""

    START = "start"
    END = "end"


@dataclass(frozen=True)
class CueSpec:
    """A one-off event placed relative to the script."""

    layer: str
    action: str
    at_text: str | None = None
    at_scene: str | None = None
    at: Anchor | None = None
    offset_s: float = 0.0
    params: Mapping[str, Any] = field(default_factory=dict)
    nth: int | None = None
    """With ``at_text``: at its ``nth`` whole-word occurrence (from 0) in the spoken text
    (``--soundscape auto`` anchors each cue to its word); None: where the text first appears."""


@dataclass(frozen=True)
class Preset:
    """A parsed, validated soundscape preset."""

    name: str
    description: str
    layers: Mapping[str, LayerSpec]
    scenes: Mapping[str, SceneSpec]
    cues: tuple[CueSpec, ...]
    fade_s: float
    path: Path
    voice: Mapping[str, Any] = field(default_factory=dict)
    """The ``[voice]`` table: voice-chain settings this soundscape suits (see ``meditation.voicefx``)."""
    why: Mapping[str, tuple[Choice, ...]] = field(default_factory=dict)
    """By scene name (lower case): the words that chose its layers (``--soundscape auto``)."""
    wind_down: WindDown | None = None
    """The ``[wind-down]`` table: how the narration winds down under this soundscape (``meditation.winddown``)."""
    lexicon: tuple[Entry, ...] = ()
    """The ``[lexicon]`` table: pronunciations for every script played over it (``meditation.lexicon``)."""


def list_presets() -> list[Preset]:
    """Every shipped preset, by name."""
    found: dict[str, Preset] = {}
    for folder in PRESET_DIRS:
        for path in sorted(folder.glob("*.toml")):
            found.setdefault(path.stem, load_preset(str(path)))
    return [found[k] for k in sorted(found)]


def load_preset(name_or_path: str) -> Preset:
    """Load a preset by name (shipped) or by path to a .toml file."""
    path = Path(name_or_path)
    if path.suffix.lower() != ".toml":
        candidates = [folder / f"{name_or_path}.toml" for folder in PRESET_DIRS]
        path = next((c for c in candidates if c.is_file()), candidates[0])
        if not path.is_file():
            names = sorted({p.stem for folder in PRESET_DIRS for p in folder.glob("*.toml")})
            raise SoundscapeError(
                f"unknown soundscape {name_or_path!r} (known: {', '.join(names)}, none, or a .toml path)"
            )
    return _parse_preset(read_toml(path, error_class=SoundscapeError, what="soundscape"), path)


def _parse_preset(data: Mapping[str, Any], path: Path) -> Preset:
    where = str(path)

    def fail(message: str) -> SoundscapeError:
        return SoundscapeError(f"{where}: {message}")

    known_top = {"name", "description", "fade_s", "layers", "scenes", "cues", "voice", "lexicon"}
    known_top |= {"wind-down", "wind_down"}
    for key in data:
        if key not in known_top:
            raise fail(f"unknown key {key!r} (known: {', '.join(sorted(known_top))})")
    fade_s = _number(data.get("fade_s", DEFAULT_FADE_S), "fade_s", fail, *FADE_S_RANGE)
    layers: dict[str, LayerSpec] = {}
    for name, table in dict(data.get("layers", {})).items():
        if not isinstance(table, Mapping):
            raise fail(f"[layers.{name}] must be a table")
        # Any name with a file is a recording, so a preset can hold several.
        kind = "recording" if "file" in table else name
        if kind not in LAYERS:
            raise fail(
                f"unknown layer {name!r} (known: {', '.join(sorted(LAYERS))}, or any name with file = ...)"
            )
        params = {k: v for k, v in table.items() if k != "level_db"}
        if isinstance(params.get("file"), str):
            params["file"] = str(path.parent / params["file"])  # relative to the preset
        try:
            LAYERS[kind].make_params(params)
        except SoundscapeError as exc:
            raise fail(str(exc)) from None
        level = _number(
            table.get("level_db", 0.0), f"layers.{name}.level_db", fail, *LEVEL_DB_RANGE
        )
        layers[name] = LayerSpec(name, level, params, "" if kind == name else kind)
    if not layers:
        raise fail("a preset needs at least one [layers.NAME] table")
    scenes: dict[str, SceneSpec] = {}
    for scene, table in dict(data.get("scenes", {})).items():
        if not isinstance(table, Mapping):
            raise fail(f"[scenes.{scene!r}] must be a table")
        gains = {}
        for key, value in table.items():
            if key == "fade_s":
                continue
            if key not in layers:
                raise fail(f"scene {scene!r} sets layer {key!r}, which is not in [layers]")
            gains[key] = _number(value, f"scenes.{scene}.{key}", fail, *SCENE_DB_RANGE)
        scenes[scene.lower()] = SceneSpec(
            gains,
            _number(table.get("fade_s", fade_s), f"scenes.{scene}.fade_s", fail, *FADE_S_RANGE),
        )
    if "default" not in scenes:
        scenes["default"] = SceneSpec(
            {name: 0.0 for name, spec in layers.items() if _bed_like(spec.cls)}, fade_s
        )
    cues = []
    for i, table in enumerate(data.get("cues", [])):
        if not isinstance(table, Mapping):
            raise fail(f"cues[{i}] must be a table")
        allowed = {"layer", "action", "at_text", "at_scene", "at", "offset_s", "params"}
        for key in table:
            if key not in allowed:
                raise fail(f"cues[{i}]: unknown key {key!r} (known: {', '.join(sorted(allowed))})")
        layer = table.get("layer")
        if layer not in layers:
            raise fail(f"cues[{i}]: layer {layer!r} is not in [layers]")
        action = table.get("action")
        if action not in layers[layer].cls.cue_actions:
            raise fail(
                f"cues[{i}]: layer {layer!r} has no cue {action!r} (known: {', '.join(sorted(layers[layer].cls.cue_actions)) or 'none'})"
            )
        anchors = [k for k in ("at_text", "at_scene", "at") if k in table]
        if len(anchors) != 1:
            raise fail(f"cues[{i}]: give exactly one of at_text, at_scene, at")
        at = None
        if "at" in table:
            try:
                at = Anchor(table["at"])
            except ValueError:
                raise fail(f'cues[{i}]: at must be "start" or "end", not {table["at"]!r}') from None
        cues.append(
            CueSpec(
                layer=layer,
                action=action,
                at_text=table.get("at_text"),
                at_scene=table.get("at_scene"),
                at=at,
                offset_s=_number(
                    table.get("offset_s", 0.0), f"cues[{i}].offset_s", fail, *OFFSET_S_RANGE
                ),
                params=dict(table.get("params", {})),
            )
        )
    voice = data.get("voice", {})
    if not isinstance(voice, Mapping):
        raise fail("[voice] must be a table")
    try:
        voice_fx_from(STYLES["gentle"], voice, "[voice]")
    except MeditationError as exc:
        raise fail(str(exc)) from None
    winding = data.get("wind-down", data.get("wind_down"))
    if winding is not None and not isinstance(winding, Mapping):
        raise fail('[wind-down] must be a table, e.g. rate = 0.75, level = "-4dB"')
    try:
        wind = parse_wind_down(dict(winding)) if winding is not None else None
    except MeditationError as exc:
        raise fail(str(exc)) from None
    # Pronunciations this place's scripts share; bad entries refused here, at their line.
    lexicon = lexicon_entries(data["lexicon"], path) if "lexicon" in data else []
    return Preset(
        voice=dict(voice),
        wind_down=wind,
        lexicon=tuple(lexicon),
        name=str(data.get("name", path.stem)),
        description=str(data.get("description", "")),
        layers=layers,
        scenes=scenes,
        cues=tuple(cues),
        fade_s=fade_s,
        path=path,
    )


def check_scene_names(preset: Preset, headings: Sequence[str]) -> str | None:
    """Match the preset's scene names and ``at_scene`` anchors against a script's headings.

    A name that equals no heading but is close to one is a probable typo:
    refused (SoundscapeError) naming the closest heading. A preset none of
    whose names match any heading was likely written for another script (the
    dream's preset under a story of one's own): returns a one-line warning,
    since its default scene still plays. Otherwise None.

    Shipped presets are not judged: they are written for the dream and say
    how they play under any other script (``sleep`` keeps alpha, …).
    """
    if preset.path.resolve().parent in {d.resolve() for d in PRESET_DIRS}:
        return None
    if not any(headings):
        return None  # no scenes to match (an ambient track, a script without headings)
    by_lower = {h.lower(): h for h in headings if h}
    named = [(f"scene {name!r}", name) for name in preset.scenes if name != "default"]
    named += [
        (f"a cue's at_scene {cue.at_scene!r}", cue.at_scene) for cue in preset.cues if cue.at_scene
    ]
    if not named:
        return None
    matched = False
    for what, name in named:
        if name.lower() in by_lower:
            matched = True
            continue
        close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.8)
        if close:
            raise SoundscapeError(
                f"{preset.path}: {what} matches no heading of the script; "
                f"did you mean {by_lower[close[0]]!r}?"
            )
    if matched:
        return None
    return (
        f"soundscape {preset.name!r} names no heading of this script "
        f"(its scenes: {', '.join(repr(n) for _, n in named[:3])}{', …' if len(named) > 3 else ''}); "
        "its default scene plays throughout"
    )


def _bed_like(cls: type[Layer]) -> bool:
    """A layer that plays continuously (not one that only rings on cues): in the default scene unless told."""
    return not cls.cue_actions or getattr(cls, "follows_scenes", False)


def _number(value: Any, what: str, fail, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(f"{what} must be a number, not {value!r}")
    try:
        check_range(what, value, low, high)
    except SoundscapeError as exc:
        raise fail(str(exc)) from None
    return float(value)
