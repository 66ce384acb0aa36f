"""The studio's view of the render settings: controls, resolution, commands, previews.

Every control is a render setting under its manifest key (``pause_scale``,
``lead_in``…); the page sends only the ones the user set, so the script's
front matter still applies under them, exactly as on the command line.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Mapping

from ..errors import MeditationError, SettingsError
from ..script import Paragraph, Script, parse_script
from ..settings import RenderSettings, resolve_settings

__all__ = ["controls", "resolve", "effective_preset", "command_line", "preview_text", "FORMATS", "SETTING_KEYS"]

FORMATS = ("mp3", "wav", "flac", "ogg")

_DEFAULTS = RenderSettings()

# key, CLI option, kind, default, help, extra attributes.
_CONTROLS: tuple[tuple[str, str, str, Any, str, dict], ...] = (
    ("voice", "--voice", "voice", _DEFAULTS.voice, "engine:name, see 'meditation voices'", {}),
    ("rate", "--rate", "number", _DEFAULTS.rate, "speaking rate, 0.8 = 20 % slower", {"min": 0.5, "max": 2.0, "step": 0.05}),
    ("pause_scale", "--pause-scale", "number", _DEFAULTS.pause_scale, "multiplies every pause", {"min": 0.0, "max": 10.0, "step": 0.1}),
    ("duration", "--duration", "duration", None, "target length, e.g. 10m: pauses stretch or shrink to fit", {}),
    ("lead_in", "--lead-in", "number", _DEFAULTS.lead_in_s, "seconds before the first word", {"min": 0.0, "max": 600.0, "step": 0.5}),
    ("tail", "--tail", "number", _DEFAULTS.tail_s, "seconds after the last word", {"min": 0.0, "max": 600.0, "step": 0.5}),
    ("soundscape", "--soundscape", "soundscape", _DEFAULTS.soundscape, "preset; 'auto' takes the script's, 'none' is narration alone", {}),
    ("layers", "--layers", "layers", None, "keep only these layers of the preset", {}),
    ("seed", "--seed", "integer", _DEFAULTS.seed, "same seed, same audio", {"min": 0, "max": 2**31 - 1, "step": 1}),
    ("loudness", "--loudness", "number", _DEFAULTS.loudness_lufs, "integrated loudness target in LUFS", {"min": -40.0, "max": -5.0, "step": 0.5}),
    ("sample_rate", "--sample-rate", "choice", _DEFAULTS.sample_rate, "mix and output sample rate", {"choices": [22050, 32000, 44100, 48000]}),
    ("title", "--title", "text", None, "title tag (default: the script's title)", {}),
    ("artist", "--artist", "text", _DEFAULTS.artist, "artist tag", {}),
)

SETTING_KEYS = tuple(c[0] for c in _CONTROLS)


def controls() -> list[dict]:
    """The Shape panel's controls, with the command line's defaults."""
    return [{"key": k, "option": o, "kind": kind, "default": d, "help": h, **extra} for k, o, kind, d, h, extra in _CONTROLS]


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
        out[key] = value
    return out


def resolve(text: str, values: Mapping[str, Any], *, name: str, output: Path) -> tuple[RenderSettings, Script]:
    """Parse the script and merge its front matter with the set controls, checked as the CLI checks them."""
    script = parse_script(text, path=name)
    explicit = {**clean_values(values), "script": Path(name), "output": output}
    settings = resolve_settings(explicit, script)
    from ..voices import resolve_voice

    settings = settings.replace(voice=resolve_voice(settings.voice))
    effective_preset(settings)
    return settings, script


def effective_preset(settings: RenderSettings):
    """The soundscape preset a render will play (None for narration alone); raises on an unknown one."""
    from ..soundscape import load_preset

    name = settings.soundscape
    if name == "none":
        return None
    preset = load_preset("default" if name == "auto" else name)
    if settings.layers is not None:
        unknown = [n for n in settings.layers if n not in preset.layers]
        if unknown:
            raise SettingsError(f"--layers: {', '.join(unknown)} not in soundscape {preset.name!r} (it has: {', '.join(preset.layers)})")
    return preset


def command_line(values: Mapping[str, Any], *, script: str, fmt: str = "mp3") -> str:
    """The ``meditation render …`` line that renders the same thing."""
    values = clean_values(values)
    words = ["meditation", "render", script, "-o", f"{Path(script).stem}.{fmt}"]
    for key, option, *_ in _CONTROLS:
        if key in values:
            words += [option, str(values[key])]
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
        index = max((i for i, start in enumerate(starts) if start <= max(line, starts[0])), default=0)
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
    kept = [raw if (i < body_start or first <= i + 1 <= last) else "" for i, raw in enumerate(lines)]
    return "\n".join(kept), label


def _body_start(lines: list[str]) -> int:
    """Index of the first line after the front matter (0 if there is none)."""
    if lines and lines[0].strip() == "---":
        for i in range(1, len(lines)):
            if lines[i].strip() == "---":
                return i + 1
    return 0


def one_line(exc: MeditationError) -> str:
    """The error as the CLI prints it, on one line."""
    return " ".join(str(exc).split())
