"""Render settings: one frozen, validated object per render.

Values come from three places, in rising priority: defaults, the script's
front matter, the command line (or a batch manifest). They are checked once,
here, where they enter; every later stage trusts them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .errors import ScriptError, SettingsError

__all__ = ["RenderSettings", "FORMATS", "DEFAULT_SCRIPT", "parse_duration_s", "resolve_settings"]

FORMATS = {".mp3": "MP3", ".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".opus": "Opus", ".m4a": "M4A", ".m4b": "M4B"}

DEFAULT_SCRIPT = Path(__file__).resolve().parent / "data" / "dream.md"


@dataclass(frozen=True)
class RenderSettings:
    """Everything that decides what a render sounds like and where it goes."""

    script: Path = DEFAULT_SCRIPT
    """The meditation script (``.md`` markup or plain ``.txt``)."""
    output: Path = Path("dream.mp3")
    """Output file; its suffix picks the format (.mp3, .wav, .flac, .ogg)."""
    voice: str = "piper:joe"
    """Voice as ``engine:name`` (see ``meditation voices``)."""
    rate: float = 0.9
    """Speaking rate applied by the voice engine; 0.8 is 20 % slower than the voice's natural pace."""
    pause_scale: float = 1.0
    """Multiplies every pause: between sentences, paragraphs, scenes, and written pauses."""
    duration_s: float | None = None
    """Target track length; when set, pauses are scaled to fit it (instead of ``pause_scale``)."""
    lead_in_s: float = 4.0
    """Silence (ambience only) before the first word."""
    tail_s: float = 10.0
    """Time after the last word before the track ends (ambience fades out)."""
    soundscape: str = "auto"
    """Preset name or path; ``auto`` takes the script's choice or a calm default, ``none`` is narration alone."""
    layers: tuple[str, ...] | None = None
    """Keep only these soundscape layers (None keeps all)."""
    seed: int = 1
    """Seed of every random choice in the soundscape; same seed, same audio."""
    loudness_lufs: float = -16.0
    """Integrated loudness target (ITU-R BS.1770)."""
    true_peak_db: float = -1.0
    """Ceiling for the true-peak limiter, in dBTP."""
    sample_rate: int = 44100
    """Sample rate of the mix and the output file."""
    title: str | None = None
    """Title tag (defaults to the script's title)."""
    artist: str = "meditation"
    """Artist tag."""
    timings: Path | None = None
    """Where to write the timeline JSON, if anywhere."""
    stems: Path | None = None
    """Folder to write the voice and each layer as aligned WAV stems, if any."""
    cache: bool = True
    """Reuse synthesized speech from the on-disk cache."""
    album: str | None = None
    """Album tag (defaults to the title)."""
    cover: Path | None = None
    """PNG or JPEG cover art to embed (MP3, M4A/M4B, FLAC, Ogg, Opus)."""
    captions: Path | None = None
    """Write captions here: ``.vtt`` (WebVTT) or ``.srt`` (SubRip)."""
    chapters: bool = True
    """A chapter per scene in formats that carry chapters."""
    plot: Path | None = None
    """Draw the plan and the track's loudness into this picture (.png, .svg, .pdf)."""

    def replace(self, **changes: Any) -> "RenderSettings":
        """A validated copy with some fields changed."""
        return validate(dataclasses.replace(self, **changes))


_RANGES = {
    "rate": (0.5, 2.0),
    "pause_scale": (0.0, 10.0),
    "lead_in_s": (0.0, 600.0),
    "tail_s": (0.0, 600.0),
    "loudness_lufs": (-40.0, -5.0),
    "true_peak_db": (-12.0, 0.0),
    "sample_rate": (8000, 192000),
}


def validate(settings: RenderSettings) -> RenderSettings:
    """Check every field; raise SettingsError naming the first bad one."""
    for name, (low, high) in _RANGES.items():
        value = getattr(settings, name)
        if not (low <= value <= high):
            raise SettingsError(f"{_option(name)} {value:g} is out of range ({low:g} to {high:g})")
    suffix = settings.output.suffix.lower()
    if suffix not in FORMATS:
        raise SettingsError(
            f"unknown output format {settings.output.suffix or '(no suffix)'!r} for {settings.output} "
            f"(known: {', '.join(FORMATS)})"
        )
    folder = settings.output.parent
    if not folder.is_dir():
        raise SettingsError(f"output folder {str(folder)!r} does not exist")
    if settings.output.is_dir():
        raise SettingsError(f"output {str(settings.output)!r} is a folder")
    if settings.stems is not None and settings.stems.exists() and not settings.stems.is_dir():
        raise SettingsError(f"stems path {str(settings.stems)!r} exists and is not a folder")
    if settings.timings is not None and not settings.timings.parent.is_dir():
        raise SettingsError(f"timings folder {str(settings.timings.parent)!r} does not exist")
    if settings.duration_s is not None and not (10.0 <= settings.duration_s <= 6 * 3600):
        raise SettingsError(f"--duration {settings.duration_s:g}s is out of range (10 s to 6 h)")
    if not isinstance(settings.seed, int) or settings.seed < 0:
        raise SettingsError(f"seed must be a whole number ≥ 0, not {settings.seed!r}")
    return settings


def _option(name: str) -> str:
    return "--" + {"lead_in_s": "lead-in", "tail_s": "tail", "loudness_lufs": "loudness", "true_peak_db": "true-peak"}.get(
        name, name
    ).replace("_", "-")


# Front matter (and manifests) say these with plain names.
_ALIASES = {"duration": "duration_s", "lead_in": "lead_in_s", "tail": "tail_s", "loudness": "loudness_lufs", "true_peak": "true_peak_db"}


def parse_duration_s(text: str) -> float:
    """Seconds from '90', '90s', '2.5m', '8h', '1h30m'."""
    import re

    raw = str(text).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", raw):
        return float(raw)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(h|m|min|s|ms)", raw)
    if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*(h|m|min|s|ms)", "", raw).strip():
        raise SettingsError(f"bad duration {text!r} (write e.g. 90s, 20m or 8h)")
    scale = {"h": 3600.0, "m": 60.0, "min": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(v) * scale[u] for v, u in parts)


def coerce(name: str, value: Any) -> Any:
    """Turn a raw value (string from front matter, TOML value) into the field's type."""
    name = _ALIASES.get(name, name)
    fields = {f.name: f for f in dataclasses.fields(RenderSettings)}
    if name not in fields:
        raise SettingsError(f"unknown setting {name!r}")
    default = getattr(RenderSettings(), name)
    try:
        if name == "duration_s":
            return None if value is None else parse_duration_s(value)
        if name in ("script", "output", "timings", "stems", "cover", "captions", "plot"):
            return None if value is None else Path(str(value))
        if name == "layers":
            if value is None:
                return None
            items = value if isinstance(value, (list, tuple)) else str(value).split(",")
            return tuple(str(v).strip() for v in items if str(v).strip())
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "yes", "1", "on"):
                return True
            if str(value).lower() in ("false", "no", "0", "off"):
                return False
            raise ValueError
        if name == "seed":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(str(value)) if not isinstance(value, (int, float)) else int(value)
        if name == "sample_rate":
            return int(str(value)) if not isinstance(value, int) else value
        if isinstance(default, float):
            if isinstance(value, bool):
                raise ValueError
            if name in ("lead_in_s", "tail_s") and isinstance(value, str):
                return parse_duration_s(value)
            return float(value)
        if value is None:
            return None
        return str(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{name.replace('_s', '').replace('_', '-')} must be {_kind(default)}, not {value!r}") from None


def _kind(default: Any) -> str:
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "a whole number"
    if isinstance(default, float):
        return "a number"
    return "text"


def resolve_settings(explicit: Mapping[str, Any], script=None) -> RenderSettings:
    """Merge defaults, the script's front matter and explicit options; validate once.

    ``explicit`` holds only the options the user actually gave.
    """
    values: dict[str, Any] = {}
    if script is not None:
        for key, raw in script.settings.items():
            if key in ("title", "artist"):
                values[key] = raw
                continue
            try:
                values[_ALIASES.get(key, key)] = coerce(key, raw)
            except SettingsError as exc:
                raise ScriptError(str(exc), path=script.path, line=script.setting_lines.get(key, 0), col=1) from None
    for key, raw in explicit.items():
        values[_ALIASES.get(key, key)] = coerce(key, raw)
    if script is not None and values.get("title") is None:
        values["title"] = script.title
    try:
        settings = RenderSettings(**values)
    except TypeError as exc:  # pragma: no cover - programming error
        raise SettingsError(str(exc)) from None
    if script is not None:
        # A bad value written in the front matter is the script's fault: say where.
        try:
            validate(dataclasses.replace(settings, **{k: v for k, v in values.items() if k not in explicit}))
        except SettingsError as exc:
            bad = next((k for k in script.settings if _option(_ALIASES.get(k, k)) in str(exc)), None)
            if bad is not None and _ALIASES.get(bad, bad) not in explicit:
                raise ScriptError(str(exc), path=script.path, line=script.setting_lines[bad], col=1) from None
    return validate(settings)
