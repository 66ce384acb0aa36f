"""Stage 5: the soundscape — layers that follow the story's scenes.

A preset (a TOML file in ``soundscapes/``) says which layers play, at what
level and with which parameters, how each scene sets them, and which one-off
cues (a bell strike, a single wing beat) fall where. ``plan_ambience`` turns
a preset and a timeline into per-layer gain envelopes and cue times;
``AmbiencePlan.build`` makes a fresh, seeded streaming renderer from that plan
(the master stage streams the mix twice, so it builds two).

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
    reverb = "hall"

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

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import MeditationError, SoundscapeError
from ..mix import VOICE_RMS_DB
from ..timeline import SceneSpan, Timeline
from .layers import BLOCK_SIZE, LAYERS, NOMINAL_RMS_DB, Cue, Layer

__all__ = ["Preset", "AmbiencePlan", "load_preset", "list_presets", "plan_ambience", "PRESET_DIRS"]

_PACKAGE_PRESETS = Path(__file__).resolve().parent.parent / "data" / "soundscapes"
PRESET_DIRS = (_PACKAGE_PRESETS,)
_SILENT_DB = -60.0


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


@dataclass(frozen=True)
class CueSpec:
    """A one-off event placed relative to the script."""

    layer: str
    action: str
    at_text: str | None = None
    at_scene: str | None = None
    at: str | None = None
    offset_s: float = 0.0
    params: Mapping[str, Any] = field(default_factory=dict)


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


def parse_bed(text: str, level_db: float = -12.0) -> tuple[str, float]:
    """``FILE[:LEVEL_DB]`` (``--bed``) as (path, level_db); the file is checked at once (one-line errors)."""
    from .layers.recording import inspect_recording

    raw = str(text)
    path, level = raw, level_db
    head, sep, tail = raw.rpartition(":")
    if sep and head:
        try:
            level = float(tail)
            path = head
        except ValueError:
            pass
    if not -60.0 <= level <= 12.0:
        raise SoundscapeError(f"--bed {raw!r}: level {level:g} dB is out of range (-60 to 12)")
    inspect_recording(path)
    return path, level


def list_presets() -> list[Preset]:
    """Every shipped preset, by name."""
    found = {}
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
            raise SoundscapeError(f"unknown soundscape {name_or_path!r} (known: {', '.join(names)}, none, or a .toml path)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SoundscapeError(f"soundscape file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SoundscapeError(f"cannot read soundscape {str(path)!r}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SoundscapeError(f"{path}: {exc}") from None
    return _parse_preset(data, path)


def _parse_preset(data: Mapping[str, Any], path: Path) -> Preset:
    where = str(path)

    def fail(message: str) -> SoundscapeError:
        return SoundscapeError(f"{where}: {message}")

    known_top = {"name", "description", "fade_s", "layers", "scenes", "cues", "voice"}
    for key in data:
        if key not in known_top:
            raise fail(f"unknown key {key!r} (known: {', '.join(sorted(known_top))})")
    fade_s = _number(data.get("fade_s", 6.0), "fade_s", fail, 0.0, 120.0)
    layers: dict[str, LayerSpec] = {}
    for name, table in dict(data.get("layers", {})).items():
        if not isinstance(table, Mapping):
            raise fail(f"[layers.{name}] must be a table")
        # Any name with a file is a recording, so a preset can hold several.
        kind = "recording" if "file" in table else name
        if kind not in LAYERS:
            raise fail(f"unknown layer {name!r} (known: {', '.join(sorted(LAYERS))}, or any name with file = ...)")
        params = {k: v for k, v in table.items() if k != "level_db"}
        if isinstance(params.get("file"), str):
            params["file"] = str(path.parent / params["file"])  # relative to the preset
        try:
            LAYERS[kind].make_params(params)
        except SoundscapeError as exc:
            raise fail(str(exc)) from None
        level = _number(table.get("level_db", 0.0), f"layers.{name}.level_db", fail, -80.0, 12.0)
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
            gains[key] = _number(value, f"scenes.{scene}.{key}", fail, -80.0, 24.0)
        scenes[scene.lower()] = SceneSpec(gains, _number(table.get("fade_s", fade_s), f"scenes.{scene}.fade_s", fail, 0.0, 120.0))
    if "default" not in scenes:
        scenes["default"] = SceneSpec({name: 0.0 for name, spec in layers.items() if _bed_like(spec.cls)}, fade_s)
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
            raise fail(f"cues[{i}]: layer {layer!r} has no cue {action!r} (known: {', '.join(sorted(layers[layer].cls.cue_actions)) or 'none'})")
        anchors = [k for k in ("at_text", "at_scene", "at") if k in table]
        if len(anchors) != 1:
            raise fail(f"cues[{i}]: give exactly one of at_text, at_scene, at")
        if "at" in table and table["at"] not in ("start", "end"):
            raise fail(f"cues[{i}]: at must be \"start\" or \"end\", not {table['at']!r}")
        cues.append(
            CueSpec(
                layer=layer,
                action=action,
                at_text=table.get("at_text"),
                at_scene=table.get("at_scene"),
                at=table.get("at"),
                offset_s=_number(table.get("offset_s", 0.0), f"cues[{i}].offset_s", fail, -600.0, 600.0),
                params=dict(table.get("params", {})),
            )
        )
    voice = data.get("voice", {})
    if not isinstance(voice, Mapping):
        raise fail("[voice] must be a table")
    from ..voicefx import STYLES, voice_fx_from

    try:
        voice_fx_from(STYLES["gentle"], voice, "[voice]")
    except MeditationError as exc:
        raise fail(str(exc)) from None
    return Preset(
        voice=dict(voice),
        name=str(data.get("name", path.stem)),
        description=str(data.get("description", "")),
        layers=layers,
        scenes=scenes,
        cues=tuple(cues),
        fade_s=fade_s,
        path=path,
    )


def _bed_like(cls: type[Layer]) -> bool:
    """A layer that plays continuously (not one that only rings on cues): in the default scene unless told."""
    return not cls.cue_actions or getattr(cls, "follows_scenes", False)


def _number(value: Any, what: str, fail, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(f"{what} must be a number, not {value!r}")
    if not low <= value <= high:
        raise fail(f"{what} = {value} is out of range ({low:g} to {high:g})")
    return float(value)


@dataclass(frozen=True)
class AmbiencePlan:
    """Where each layer sounds and how loud: everything but the audio."""

    preset: Preset
    timeline: Timeline
    """The timeline with each scene's sounding layers filled in."""
    envelopes: Mapping[str, tuple[np.ndarray, np.ndarray]]
    """Per layer: breakpoints (sample positions, linear gains) of its level over the track."""
    cues: Mapping[str, tuple[Cue, ...]]
    seed: int
    cue_only: frozenset = frozenset()
    """Layers no scene mentions: they play their cues at their level and are silent otherwise."""

    def build(self) -> "Ambience":
        """A fresh streaming renderer; two builds render identical audio."""
        return Ambience(self)


class Ambience:
    """Streams every layer of a plan with its level envelope applied."""

    def __init__(self, plan: AmbiencePlan):
        self.plan = plan
        sr = plan.timeline.sample_rate
        names = list(plan.preset.layers)
        # One child seed per layer, by the layer's name: adding a layer to a
        # preset never shifts the randomness of the others.
        self._layers: dict[str, Layer] = {}
        for name in names:
            spec = plan.preset.layers[name]
            entropy = [plan.seed, *name.encode("utf-8")]
            rng = np.random.default_rng(np.random.SeedSequence(entropy))
            self._layers[name] = spec.cls(sample_rate=sr, rng=rng, params=spec.params, cues=plan.cues.get(name, ()))
        self.names = tuple(names)
        self._position = 0
        self._active = {name: _active_ranges(plan, name, self._layers[name]) for name in names}
        # Samples of silent layer blocks not yet skipped (see ``render``).
        self._deferred = {name: 0 for name in names}

    def render(self, n_samples: int) -> dict[str, np.ndarray]:
        """The next ``n_samples`` of every layer that sounds here, level envelope applied.

        Layers silent for the whole stretch are left out of the result (the
        caller treats a missing layer as silence). Whether a layer is
        rendered or skipped is decided per whole layer block (``BLOCK_SIZE``
        samples on a grid from sample 0), never per call, and a skip is
        handed to the layer only once the silent blocks are over, in whole
        blocks. Skipping leaves a layer's filters and random stream where
        they were, so deciding per call would make the audio depend on how
        the caller chunks the stream; on the grid, any chunk sizes give the
        same audio.
        """
        start, end = self._position, self._position + n_samples
        out = {}
        for name, layer in self._layers.items():
            pieces = []
            pos = start
            while pos < end:
                # A run of blocks that are all loud or all silent.
                loud = self._block_is_loud(name, pos // BLOCK_SIZE)
                run_end = (pos // BLOCK_SIZE + 1) * BLOCK_SIZE
                while run_end < end and self._block_is_loud(name, run_end // BLOCK_SIZE) == loud:
                    run_end += BLOCK_SIZE
                run_end = min(run_end, end)
                if loud:
                    if self._deferred[name]:
                        layer.skip(self._deferred[name])  # whole blocks: nothing rendered
                        self._deferred[name] = 0
                    pieces.append((pos - start, layer.render(run_end - pos)))
                else:
                    self._deferred[name] += run_end - pos  # silent here: don't spend time on it
                pos = run_end
            if not pieces:
                continue
            if len(pieces) == 1 and pieces[0][0] == 0 and len(pieces[0][1]) == n_samples:
                buf = pieces[0][1]
            else:
                buf = np.zeros((n_samples, 2), dtype=np.float32)
                for offset, audio in pieces:
                    buf[offset : offset + len(audio)] = audio
            gain = _gain(self.plan.envelopes[name], start, end)
            if isinstance(gain, float):
                buf *= np.float32(gain)
            else:
                buf *= gain[:, None]
            out[name] = buf
        self._position = end
        return out

    def _block_is_loud(self, name: str, block: int) -> bool:
        return _overlaps(self._active[name], block * BLOCK_SIZE, (block + 1) * BLOCK_SIZE)


def _gain(envelope: tuple[np.ndarray, np.ndarray], start: int, end: int) -> float | np.ndarray:
    """A layer's linear gain over samples [start, end): one number where the envelope is flat there."""
    xs, ys = envelope
    first, last = np.searchsorted(xs, [start, end - 1], side="right")
    if first == last and (first == 0 or first == len(xs) or ys[first - 1] == ys[first]):
        return float(ys[min(max(first - 1, 0), len(ys) - 1)])
    return np.interp(np.arange(start, end, dtype=np.float64), xs, ys).astype(np.float32)


def _active_ranges(plan: AmbiencePlan, name: str, layer: Layer) -> list[tuple[int, int]]:
    """Sample ranges where a layer can be heard: its envelope is up, or a cue rings."""
    xs, ys = plan.envelopes[name]
    ranges = []
    loud = ys > 0 if name not in plan.cue_only else np.zeros(len(ys), dtype=bool)
    for i in range(len(xs) - 1):
        if loud[i] or loud[i + 1]:
            ranges.append((int(xs[i]), int(np.ceil(xs[i + 1])) + 1))
    if loud[-1]:
        ranges.append((int(xs[-1]), 1 << 62))
    sr = plan.timeline.sample_rate
    for cue in plan.cues.get(name, ()):
        begin = int(cue.time_s * sr)
        ranges.append((begin, begin + int(layer.cue_duration_s(cue) * sr) + 1))
    return ranges


def _overlaps(ranges: Sequence[tuple[int, int]], start: int, end: int) -> bool:
    return any(a < end and b > start for a, b in ranges)


def plan_ambience(
    preset_name: str, *, script, timeline: Timeline, seed: int, only: Sequence[str] | None = None, beds: Sequence[tuple[str, float]] = ()
) -> AmbiencePlan:
    """Plan a preset over a timeline: level envelopes, cue times and each scene's sounding layers.

    ``beds`` are recordings ``(path, level_db)`` added under the preset in
    every scene (``--bed``); with ``preset_name="none"`` they play alone.
    """
    if preset_name == "auto":
        preset_name = (script.settings.get("soundscape") if script is not None else None) or "default"
    if preset_name == "none":
        preset = Preset("none", "", {}, {"default": SceneSpec({}, 6.0)}, (), 6.0, Path("none"))
    else:
        preset = load_preset(preset_name)
    if only is not None:
        unknown = [n for n in only if n not in preset.layers]
        if unknown:
            raise SoundscapeError(
                f"--layers: {', '.join(unknown)} not in soundscape {preset.name!r} (it has: {', '.join(preset.layers)})"
            )
        preset = _keep_layers(preset, only)
    if beds:
        preset = _with_beds(preset, beds)
    offset_db = VOICE_RMS_DB - NOMINAL_RMS_DB
    envelopes = {}
    in_scenes = {name for scene in preset.scenes.values() for name in scene.layers}
    cue_only = frozenset(c.layer for c in preset.cues if c.layer not in in_scenes)
    for name, spec in preset.layers.items():
        if name in cue_only:
            gain = 10 ** ((spec.level_db + offset_db) / 20)
            envelopes[name] = (np.array([0.0]), np.array([gain]))
        else:
            envelopes[name] = _envelope(preset, spec, timeline, offset_db)
    cues: dict[str, list[Cue]] = {}
    for cue in preset.cues:
        time_s = _cue_time(cue, timeline, preset)
        if time_s is None:
            continue
        time_s = min(max(0.0, time_s + cue.offset_s), timeline.duration_s)
        cues.setdefault(cue.layer, []).append(Cue(time_s, cue.action, dict(cue.params)))
    for name, spec in preset.layers.items():
        if getattr(spec.cls, "follows_scenes", False):
            # Such a layer (beats) sets itself per scene: tell it each scene's name and crossfade.
            for scene in timeline.scenes:
                fade = _scene_spec(preset, scene).fade_s
                cues.setdefault(name, []).append(Cue(scene.start / timeline.sample_rate, "scene", {"scene": scene.name, "fade_s": fade}))
    if only is not None:
        # A layer asked for by name that never sounds would give a silent track
        # (e.g. `ambient --soundscape dream --layers river`: no script, so only
        # the preset's default scene plays, and the river is not in it).
        silent = [n for n in preset.layers if not cues.get(n) and (n in cue_only or not np.any(envelopes[n][1] > 0))]
        if silent:
            where = sorted({scene for scene, spec in preset.scenes.items() if any(n in spec.layers for n in silent)} - {"default"})
            raise SoundscapeError(
                f"--layers: {', '.join(silent)} would be silent throughout this track in soundscape {preset.name!r}"
                + (f" (it plays only in the scenes: {', '.join(where)})" if where else "")
            )
    plan = AmbiencePlan(preset, timeline, envelopes, {k: tuple(v) for k, v in cues.items()}, seed, cue_only)
    return AmbiencePlan(preset, _with_layers(plan), envelopes, plan.cues, seed, cue_only)


def _with_beds(preset: Preset, beds: Sequence[tuple[str, float]]) -> Preset:
    """The preset with each bed recording as one more layer, playing at its level in every scene."""
    from dataclasses import replace

    layers = dict(preset.layers)
    added = []
    for i, (path, level_db) in enumerate(beds):
        name = "bed" if i == 0 else f"bed{i + 1}"
        while name in layers:
            name += "_"
        layers[name] = LayerSpec(name, float(level_db), {"file": str(path)}, "recording")
        added.append(name)
    scenes = {k: SceneSpec({**s.layers, **{n: 0.0 for n in added}}, s.fade_s) for k, s in preset.scenes.items()}
    return replace(preset, layers=layers, scenes=scenes)


def _keep_layers(preset: Preset, only: Sequence[str]) -> Preset:
    keep = set(only)
    return Preset(
        name=preset.name,
        description=preset.description,
        layers={k: v for k, v in preset.layers.items() if k in keep},
        scenes={k: SceneSpec({n: g for n, g in s.layers.items() if n in keep}, s.fade_s) for k, s in preset.scenes.items()},
        cues=tuple(c for c in preset.cues if c.layer in keep),
        fade_s=preset.fade_s,
        path=preset.path,
        voice=preset.voice,
    )


def _scene_spec(preset: Preset, scene: SceneSpan) -> SceneSpec:
    return preset.scenes.get(scene.name.lower(), preset.scenes["default"])


def _envelope(preset: Preset, spec: LayerSpec, timeline: Timeline, offset_db: float) -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints of a layer's linear gain: each scene's level, crossfaded from the scene's start."""
    sr = timeline.sample_rate
    xs: list[float] = []
    ys: list[float] = []
    previous = None
    for scene in timeline.scenes:
        scene_spec = _scene_spec(preset, scene)
        db = scene_spec.layers.get(spec.name)
        gain = 0.0 if db is None else 10 ** ((spec.level_db + db + offset_db) / 20)
        if previous is None:
            xs.append(float(scene.start))
            ys.append(gain)
        elif gain != previous:
            fade = scene_spec.fade_s * sr
            xs += [float(scene.start), float(scene.start) + max(1.0, fade)]
            ys += [previous, gain]
        previous = gain
    if not xs:
        xs, ys = [0.0], [0.0]
    return np.asarray(xs), np.asarray(ys)


def _cue_time(cue: CueSpec, timeline: Timeline, preset: Preset) -> float | None:
    sr = timeline.sample_rate
    if cue.at == "start":
        return 0.0
    if cue.at == "end":
        last = timeline.segments[-1].end if timeline.segments else timeline.length
        return last / sr
    if cue.at_scene is not None:
        for scene in timeline.scenes:
            if scene.name.lower() == cue.at_scene.lower():
                return scene.start / sr
        return None  # the script has no such scene: the cue simply does not play
    needle = " ".join(cue.at_text.lower().split())
    for seg in timeline.segments:
        text = " ".join(seg.text.lower().split())
        index = text.find(needle)
        if index >= 0:
            # Words are spread roughly evenly through a segment: estimate when these ones fall.
            return (seg.start + seg.length * index / max(1, len(text))) / sr
    return None


def _with_layers(plan: AmbiencePlan) -> Timeline:
    """The timeline with, per scene, the layers that sound in it (fading or ringing counts)."""
    from dataclasses import replace

    probe = {name: spec.cls(sample_rate=plan.timeline.sample_rate, rng=np.random.default_rng(0), params=spec.params, cues=plan.cues.get(name, ())) for name, spec in plan.preset.layers.items()}
    scenes = []
    for scene in plan.timeline.scenes:
        sounding = []
        for name in plan.preset.layers:
            xs, ys = plan.envelopes[name]
            level = np.interp(np.linspace(scene.start, max(scene.start, scene.end - 1), 256), xs, ys)
            # Also the exact breakpoints inside the scene, so short fades are not missed.
            inside = ys[(xs >= scene.start) & (xs < scene.end)]
            peak = max(float(level.max(initial=0.0)), float(inside.max(initial=0.0)))
            rings = any(
                cue.time_s * plan.timeline.sample_rate < scene.end
                and (cue.time_s + probe[name].cue_duration_s(cue)) * plan.timeline.sample_rate > scene.start
                for cue in plan.cues.get(name, ())
            )
            if name in plan.cue_only:
                peak = 0.0
            if (peak > 0 and 20 * np.log10(peak) > _SILENT_DB) or rings:
                sounding.append(name)
        scenes.append(replace(scene, layers=tuple(sounding)))
    return replace(plan.timeline, scenes=tuple(scenes))
