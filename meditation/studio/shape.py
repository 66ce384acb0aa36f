"""The studio's view of the render settings: controls, resolution, commands, previews.

Every control is a render setting under its manifest key (``pause_scale``,
``lead_in``…); the page sends only the ones the user set, so the script's
front matter still applies under them, exactly as on the command line.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import SettingsError
from ..formats import FORMATS
from ..preflight import check_soundscape, check_values
from ..script import Paragraph, Script, parse_script
from ..settings import (
    SCHEMA,
    Kind,
    RenderSettings,
    Role,
    Use,
    coerce,
    describe_range,
    format_duration,
    resolve_settings,
    specs_for,
)
from ..soundscape import list_presets
from .files import RECORDING_SUFFIXES, load_folder_preset, safe_path

__all__ = [
    "controls",
    "resolve",
    "effective_preset",
    "command_line",
    "checked_values",
    "preview_text",
    "formats",
    "SETTING_KEYS",
]

# The settings the Shape panel offers: every render setting that shapes the sound or its tags.
# Files the render writes besides the track (timings, stems, captions, a plot) are the studio's
# business, the output is a download, the script is the editor, and the speech cache is always
# used. Files a render reads (a cover, a recorded bed) are chosen among the folder's files.
_NOT_SHAPE = ("script", "output", "cache")

INPUT_SUFFIXES = {"cover": (".png", ".jpg", ".jpeg"), "bed": RECORDING_SUFFIXES}
"""Files each input setting may name, inside the studio's folder."""


def _specs():
    return [
        spec
        for spec in specs_for(Use.RENDER)
        if spec.key not in _NOT_SHAPE
        and (spec.role is None or (spec.role is Role.INPUT and spec.key in INPUT_SUFFIXES))
    ]


def formats() -> tuple[str, ...]:
    """Output formats (file FORMATS without the dot), MP3 first."""
    ordered = sorted(
        (s.lstrip(".") for s in FORMATS), key=lambda f: (f != "mp3", f)
    )  # MP3 first: the default
    return tuple(ordered)


SETTING_KEYS = tuple(spec.key for spec in _specs())


def controls() -> list[dict]:
    """The Shape panel's controls, from the settings schema, with the command line's defaults."""
    out = []
    for spec in _specs():
        kind = {
            "voice": "voice",
            "speakers": "speakers",  # the Speakers box: a voice for each speaker the script declares
            "soundscape": "soundscape",
            **{k: "file" for k in INPUT_SUFFIXES},
        }.get(spec.key) or {
            Kind.NAMES: "layers",
            Kind.DURATION: "duration",
            Kind.NUMBER: "number",
            Kind.INTEGER: "integer",
            Kind.CHOICE: "choice",
            Kind.BOOL: "bool",
        }.get(spec.kind, "text")
        default = spec.default
        shown = (
            format_duration(default)
            if spec.kind is Kind.DURATION and default is not None
            else default
        )
        control = {
            "key": spec.key,
            "label": spec.key.replace("_", "-"),
            "option": spec.option,
            "kind": kind,
            "default": default,
            "shown": shown,
            "help": spec.help,
            "unit": spec.unit,
        }
        if spec.low is not None and kind in ("number", "integer"):
            control.update(min=spec.low, max=spec.high, range=describe_range(spec))
        if spec.choices:
            control["choices"] = list(spec.choices)
        if kind == "file":
            control["FORMATS"] = list(INPUT_SUFFIXES[spec.key])
        out.append(control)
    return out


def clean_values(values: Mapping[str, Any]) -> dict:
    """Keep the known, set keys of ``values``; refuse unknown ones."""
    if not isinstance(values, Mapping):
        raise SettingsError("settings must be an object of key: value")
    unknown = [k for k in values if k not in SETTING_KEYS]
    if unknown:
        raise SettingsError(f"unknown setting {unknown[0]!r} (known: {', '.join(SETTING_KEYS)})")
    out = {}
    for key, value in values.items():
        if value is None or value == "":
            continue
        if key == "layers" and isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        if key == "speakers" and isinstance(value, Mapping):
            value = _speaker_voices(value)
            if not value:
                continue
        out[key] = value
    return out


def _speaker_voices(voices: Mapping[str, Any]) -> str:
    """The Speakers box's {speaker: voice} as the setting's text (``guide: piper:joe, echo: …``):
    each speaker the script declares keeps its level, pan, rate and chain."""
    entries = []
    for name, voice in voices.items():
        if not isinstance(voice, str) or not isinstance(name, str):
            raise SettingsError("speakers must map each speaker's name to a voice")
        if voice.strip():
            entries.append(f"{name}: {voice.strip()}")
    return ", ".join(entries)


def resolve(
    text: str, values: Mapping[str, Any], *, name: str, output: Path, folder: Path | None = None
) -> tuple[RenderSettings, Script]:
    """Parse the script and merge its front matter with the set controls, checked as the CLI checks them.

    With ``folder``, a soundscape given as a ``.toml`` file must lie inside it
    (and is made absolute); shipped presets are named, never reached by path.
    """
    script = parse_script(text, path=name)
    cleaned = clean_values(values)
    labels = {
        key: SCHEMA[key].option for key in cleaned
    }  # messages name options, as on the command line
    settings = resolve_settings(
        {**cleaned, "script": Path(name), "output": output}, script, labels=labels
    )
    if folder is not None:
        settings = settings.replace(
            soundscape=soundscape_in(folder, settings.soundscape), **inputs_in(folder, settings)
        )
    return check_values(settings, script), script


def checked_values(
    values: Mapping[str, Any], *, script: str, fmt: str, folder: Path
) -> dict[str, Any]:
    """The set controls, checked as ``meditation batch`` checks a manifest's values (coerced, files
    inside the folder, voice, soundscape and layers), before they are saved to one; raises on a bad one."""
    cleaned = clean_values(values)
    # Messages name manifest keys (rate, lead_in), as batch's would.
    settings = resolve_settings(
        {**cleaned, "script": Path(script), "output": Path(f"{Path(script).stem}.{fmt}")}
    )
    settings = settings.replace(
        soundscape=soundscape_in(folder, settings.soundscape), **inputs_in(folder, settings)
    )
    check_values(settings)
    return cleaned


def inputs_in(folder: Path, settings: RenderSettings) -> dict[str, Path]:
    """The files a render would read (cover, bed), each made absolute and checked to lie inside ``folder``.

    Whether set on the page or in the script's front matter: nothing outside the folder is read.
    """
    inside = {}
    for spec in SCHEMA.values():
        value = getattr(settings, spec.name)
        if spec.role is not Role.INPUT or spec.key == "script" or value is None:
            continue
        if spec.key not in INPUT_SUFFIXES:
            raise SettingsError(f"{spec.key} cannot be used in the studio yet")
        inside[spec.name] = safe_path(folder, str(value), INPUT_SUFFIXES[spec.key]).resolve()
    return inside


def soundscape_in(folder: Path, value: str) -> str:
    """A shipped preset's name, ``auto``/``none``, or the absolute path of a ``.toml`` preset inside ``folder``."""
    if value in ("auto", "none") or value in {p.name for p in list_presets()}:
        return value
    if value.lower().endswith(".toml"):
        load_folder_preset(folder, value)  # its recordings, too, lie inside the folder
        return str(safe_path(folder, value, (".toml",)).resolve())
    known = ", ".join(p.name for p in list_presets())
    raise SettingsError(
        f"unknown soundscape {value!r} (known: {known}, none, or a .toml preset in the studio's folder)"
    )


def effective_preset(settings: RenderSettings, script: Script | None = None):
    """The soundscape preset a render will play (None for narration alone); raises on an unknown one."""
    return check_soundscape(settings, script)


def command_line(values: Mapping[str, Any], *, script: str, fmt: str = "mp3") -> str:
    """The ``meditation render …`` line that renders the same thing."""
    values = clean_values(values)
    words = ["meditation", "render", script, "-o", f"{Path(script).stem}.{fmt}"]
    for key in SETTING_KEYS:
        if key not in values:
            continue
        spec = SCHEMA[key]
        if spec.kind is Kind.BOOL:
            # A flag: --no-chapters turns a default-on setting off; the default needs no word.
            if coerce(key, values[key]) != spec.default:
                words.append(spec.option)
            continue
        words += [spec.option, str(values[key])]
    return " ".join(shlex.quote(w) for w in words)


_PREVIEW_S = 60.0
_CHARS_PER_S = 14.0  # speaking speed at rate 1.0, as the segment planner assumes


def preview_text(text: str, *, line: int, name: str = "<script>") -> tuple[str, str]:
    """The part of the script to preview: the scene holding ``line``, or about the first minute.

    Returns the text (front matter kept, so settings still apply; other lines
    blanked, so errors keep their line numbers) and a label for the page.
    """
    script = parse_script(text, path=name)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    body_start = _body_start(lines)
    if script.has_scenes:
        starts = [max(s.line, body_start + 1) if s.name else body_start + 1 for s in script.scenes]
        index = max(
            (i for i, start in enumerate(starts) if start <= max(line, starts[0])), default=0
        )
        first = starts[index]
        last = starts[index + 1] - 1 if index + 1 < len(starts) else len(lines)
        label = script.scenes[index].name or "opening"
    else:
        first, last, budget = body_start + 1, len(lines), _PREVIEW_S * _CHARS_PER_S
        for item in script.scenes[0].items:
            if isinstance(item, Paragraph):
                if budget <= 0:
                    last = item.line - 1
                    break
                budget -= len(item.text)
        label = "the first minute"
    kept = [
        raw if (i < body_start or first <= i + 1 <= last) else "" for i, raw in enumerate(lines)
    ]
    return "\n".join(kept), label


def _body_start(lines: list[str]) -> int:
    """Index of the first line after the front matter (0 if there is none)."""
    if lines and lines[0].strip() == "---":
        for i in range(1, len(lines)):
            if lines[i].strip() == "---":
                return i + 1
    return 0
