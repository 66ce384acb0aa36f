"""Render settings: the one schema every setting is declared in, once.

Each field of :class:`RenderSettings` is declared with :func:`setting`: its
default, one line of help, its unit and range, which commands and files it
applies to (``render`` / ``ambient`` options, script front matter, batch
manifests) and, for paths, whether it is an input or an output. Everything
else is derived from these declarations: the argparse options of each
command (``cli``), front-matter and manifest validation with one wording for
every error, the batch sidecar, and the README's option table
(``python -m meditation.settings --readme`` rewrites it; a test compares).

Values come from three places, in rising priority: defaults, the script's
front matter, the command line (or a batch manifest). They are checked once,
here, where they enter; every later stage trusts them.

To add a setting: add one field below with ``setting(...)``, use it in its
stage, and regenerate the README table.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ScriptError, SettingsError

__all__ = [
    "RenderSettings",
    "Spec",
    "Kind",
    "Role",
    "Use",
    "SCHEMA",
    "DEFAULT_SCRIPT",
    "setting",
    "specs_for",
    "coerce",
    "validate",
    "resolve_settings",
    "parse_duration_s",
    "format_duration",
    "settings_to_dict",
    "readme_table",
    "front_matter_keys",
]

DEFAULT_SCRIPT = Path(__file__).resolve().parent / "data" / "dream.md"


class Kind(str, enum.Enum):
    """How a setting's raw text or TOML value is read."""

    NUMBER = "number"
    INTEGER = "integer"
    BOOL = "bool"
    TEXT = "text"
    DURATION = "duration"
    PATH = "path"
    NAMES = "names"
    """A comma-separated list (or TOML array) of names."""
    CHOICE = "choice"


class Role(str, enum.Enum):
    """What a path setting is to the file-safety check (see ``meditation.files``)."""

    INPUT = "input"
    OUTPUT = "output"
    OUTPUT_FOLDER = "output folder"


class Use(enum.Flag):
    """Where a setting can be given."""

    RENDER = enum.auto()
    """An option of ``meditation render``."""
    AMBIENT = enum.auto()
    """An option of ``meditation ambient``."""
    FRONT_MATTER = enum.auto()
    """A key of a script's front matter."""
    MANIFEST = enum.auto()
    """A key of a batch manifest (``[defaults]``, ``[matrix]``, ``[[variants]]``)."""


_EVERYWHERE = Use.RENDER | Use.FRONT_MATTER | Use.MANIFEST
_UNIT_SUFFIXES = ("_s", "_db", "_lufs", "_hz")


@dataclass(frozen=True)
class Spec:
    """One setting's declaration: everything the CLI, the files and the README need to know."""

    name: str
    """Field name in RenderSettings (``lead_in_s``)."""
    key: str
    """Name users write in front matter and manifests (``lead_in``); the option is ``--lead-in``."""
    kind: Kind
    default: Any
    help: str
    """One line, for ``--help`` and the README table."""
    unit: str = ""
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    uses: Use = _EVERYWHERE
    role: Role | None = None
    audio: bool = True
    """False when the setting does not change the rendered audio (batch resume ignores it)."""
    optional: bool = False
    """Accepts ``none`` (and None) for 'not set'."""
    short: str | None = None
    """A short option as well (``-o``)."""

    @property
    def option(self) -> str:
        """The long command-line option (``--lead-in``), or ``--no-cache`` style for flags that default on."""
        if self.kind is Kind.BOOL and self.default is True:
            return "--no-" + self.key.replace("_", "-")
        return "--" + self.key.replace("_", "-")


def setting(
    default: Any,
    help: str,
    *,
    kind: Kind | None = None,
    key: str | None = None,
    unit: str = "",
    low: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] = (),
    uses: Use = _EVERYWHERE,
    role: Role | None = None,
    audio: bool = True,
    optional: bool = False,
    short: str | None = None,
) -> Any:
    """Declare one field of RenderSettings (a ``dataclasses.field`` carrying its Spec's parts)."""
    meta = dict(
        kind=kind,
        key=key,
        help=help,
        unit=unit,
        low=low,
        high=high,
        choices=choices,
        uses=uses,
        role=role,
        audio=audio,
        optional=optional,
        short=short,
    )
    return field(default=default, metadata={"setting": meta})


@dataclass(frozen=True)
class RenderSettings:
    """Everything that decides what a render sounds like and where it goes.

    Each field's declaration (see :func:`setting`) is its documentation:
    ``python -m meditation.settings --readme`` prints them as a table.
    """

    script: Path = setting(
        DEFAULT_SCRIPT,
        "meditation script (.md markup or plain .txt)",
        kind=Kind.PATH,
        uses=Use.RENDER | Use.MANIFEST,
        role=Role.INPUT,
    )
    output: Path = setting(
        Path("dream.mp3"),
        "output file; its suffix picks the format",
        kind=Kind.PATH,
        uses=Use.RENDER | Use.AMBIENT,
        role=Role.OUTPUT,
        audio=False,
        short="-o",
    )
    voice: str = setting("piper:joe", "voice as engine:name (see 'meditation voices')")
    voice_fx: str = setting(
        "auto",
        "voice chain: auto (gentle, tuned by the soundscape's [voice]), none, gentle, room, hall, dry; tune with ,key=value",
    )
    rate: float = setting(
        0.9,
        "speaking rate applied by the voice engine; 0.8 = 20 % slower",
        unit="×",
        low=0.5,
        high=2.0,
    )
    pause_scale: float = setting(1.0, "multiplies every pause", unit="×", low=0.0, high=10.0)
    duration_s: float | None = setting(
        None,
        "target length: pauses stretch or shrink to fit (ambient: the track's length)",
        kind=Kind.DURATION,
        low=1.0,
        high=24 * 3600.0,
        uses=_EVERYWHERE | Use.AMBIENT,
        optional=True,
    )
    lead_in_s: float = setting(
        4.0, "time before the first word", kind=Kind.DURATION, low=0.0, high=3600.0
    )
    tail_s: float = setting(
        10.0, "time after the last word", kind=Kind.DURATION, low=0.0, high=12 * 3600.0
    )
    fade_in_s: float | None = setting(
        None,
        "equal-power fade-in of the whole track (default: ¾ of the lead-in, at most 3 s; ambient 10 s)",
        kind=Kind.DURATION,
        low=0.0,
        high=12 * 3600.0,
        uses=_EVERYWHERE | Use.AMBIENT,
        optional=True,
    )
    fade_out_s: float | None = setting(
        None,
        "equal-power fade-out ending exactly at the last sample (default: ⅘ of the tail; ambient 10 s)",
        kind=Kind.DURATION,
        low=0.0,
        high=12 * 3600.0,
        uses=_EVERYWHERE | Use.AMBIENT,
        optional=True,
    )
    soundscape: str = setting(
        "auto",
        "preset name or .toml path; 'none' for narration alone; 'auto' takes the script's or 'default'",
        uses=_EVERYWHERE | Use.AMBIENT,
    )
    layers: tuple[str, ...] | None = setting(
        None,
        "keep only these soundscape layers, e.g. river,wind",
        kind=Kind.NAMES,
        uses=_EVERYWHERE | Use.AMBIENT,
        optional=True,
    )
    bed: Path | None = setting(
        None,
        "a recording FILE[:LEVEL_DB] looped under the soundscape (WAV, FLAC, Ogg, MP3; level default -12 dB)",
        kind=Kind.PATH,
        uses=_EVERYWHERE | Use.AMBIENT,
        role=Role.INPUT,
        optional=True,
    )
    bed_level_db: float = setting(
        -12.0,
        "level of the --bed recording, relative to the narration like a layer's level_db",
        unit="dB",
        low=-60.0,
        high=12.0,
        uses=_EVERYWHERE | Use.AMBIENT,
    )
    seed: int = setting(
        1,
        "seed of every random choice; same seed, same audio",
        kind=Kind.INTEGER,
        low=0,
        high=2**63 - 1,
        uses=_EVERYWHERE | Use.AMBIENT,
    )
    loudness_lufs: float = setting(
        -16.0,
        "integrated loudness target (ITU-R BS.1770)",
        unit="LUFS",
        low=-40.0,
        high=-5.0,
        uses=_EVERYWHERE | Use.AMBIENT,
    )
    loudness_scope: str = setting(
        "auto",
        "what meets the loudness target: auto (the track, at most 30 s past the last word), track, speech",
        kind=Kind.CHOICE,
        choices=("auto", "track", "speech"),
    )
    true_peak_db: float = setting(
        -1.0,
        "true-peak ceiling of the limiter",
        unit="dBTP",
        low=-12.0,
        high=0.0,
        uses=_EVERYWHERE | Use.AMBIENT,
    )
    sample_rate: int = setting(
        44100,
        "sample rate of the mix and the output",
        kind=Kind.INTEGER,
        unit="Hz",
        low=8000,
        high=192000,
        uses=Use.RENDER | Use.AMBIENT | Use.MANIFEST,
    )
    title: str | None = setting(
        None,
        "title tag (default: the script's title)",
        kind=Kind.TEXT,
        uses=_EVERYWHERE | Use.AMBIENT,
        audio=False,
        optional=True,
    )
    artist: str = setting("meditation", "artist tag", uses=_EVERYWHERE | Use.AMBIENT, audio=False)
    timings: Path | None = setting(
        None,
        "write the timeline as JSON here",
        kind=Kind.PATH,
        uses=Use.RENDER,
        role=Role.OUTPUT,
        audio=False,
        optional=True,
    )
    stems: Path | None = setting(
        None,
        "write the voice and each layer as WAV stems into this folder",
        kind=Kind.PATH,
        uses=Use.RENDER | Use.AMBIENT,
        role=Role.OUTPUT_FOLDER,
        audio=False,
        optional=True,
    )
    cache: bool = setting(True, "reuse speech from the on-disk cache", uses=Use.RENDER, audio=False)
    speech_jobs: int | None = setting(
        None,
        "sentences spoken at once (default: by cores and memory; 1: one at a time); same audio for any number",
        kind=Kind.INTEGER,
        low=1,
        high=64,
        audio=False,
        optional=True,
    )
    album: str | None = setting(
        None,
        "album tag (default: the title)",
        kind=Kind.TEXT,
        uses=_EVERYWHERE | Use.AMBIENT,
        optional=True,
    )
    cover: Path | None = setting(
        None,
        "PNG or JPEG cover art, embedded in MP3, M4A/M4B, FLAC, Ogg and Opus",
        kind=Kind.PATH,
        uses=_EVERYWHERE | Use.AMBIENT,
        role=Role.INPUT,
        optional=True,
    )
    captions: Path | None = setting(
        None,
        "write captions here: .vtt (WebVTT) or .srt (SubRip); 'vtt' or 'srt' alone: beside the output",
        kind=Kind.PATH,
        uses=Use.RENDER | Use.MANIFEST,
        role=Role.OUTPUT,
        optional=True,
    )
    chapters: bool = setting(
        True, "put a chapter per scene in MP3, M4A/M4B, FLAC, Ogg and Opus", uses=_EVERYWHERE
    )
    plot: Path | None = setting(
        None,
        "draw the plan and the track's loudness into this picture (.png .svg .pdf); 'png' alone: beside the output",
        kind=Kind.PATH,
        uses=Use.RENDER | Use.AMBIENT | Use.MANIFEST,
        role=Role.OUTPUT,
        audio=False,
        optional=True,
    )

    def replace(self, **changes: Any) -> RenderSettings:
        """A validated copy with some fields changed."""
        return validate(dataclasses.replace(self, **changes))


def _build_schema() -> dict[str, Spec]:
    schema: dict[str, Spec] = {}
    for f in dataclasses.fields(RenderSettings):
        meta = dict(f.metadata["setting"])
        key = meta.pop("key") or _strip_unit(f.name)
        kind = meta.pop("kind") or _kind_of(f.default)
        schema[key] = Spec(name=f.name, key=key, kind=kind, default=f.default, **meta)
    return schema


def _strip_unit(name: str) -> str:
    for suffix in _UNIT_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _kind_of(default: Any) -> Kind:
    if isinstance(default, bool):
        return Kind.BOOL
    if isinstance(default, int):
        return Kind.INTEGER
    if isinstance(default, float):
        return Kind.NUMBER
    return Kind.TEXT


SCHEMA: dict[str, Spec] = _build_schema()
"""Every setting by its user-facing key, in declaration order."""
_BY_FIELD = {spec.name: spec for spec in SCHEMA.values()}


def specs_for(use: Use) -> Iterator[Spec]:
    """The settings that can be given in ``use`` (a command, front matter or a manifest)."""
    return (spec for spec in SCHEMA.values() if use & spec.uses)


def spec_of(name: str) -> Spec:
    """A setting's Spec by its key (``lead_in``) or field name (``lead_in_s``)."""
    spec = SCHEMA.get(name) or _BY_FIELD.get(name)
    if spec is None:
        raise SettingsError(f"unknown setting {name!r} (known: {', '.join(SCHEMA)})")
    return spec


# --- reading values -------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(h|min|m|s|ms)")
_DURATION_UNIT_S = {"h": 3600.0, "m": 60.0, "min": 60.0, "s": 1.0, "ms": 0.001}


def parse_duration_s(text: Any) -> float:
    """Seconds from 90, '90', '90s', '2.5m', '8h', '1h30m' or '500ms'."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        raw = str(text).strip().lower()
        if re.fullmatch(r"\d+(\.\d+)?", raw):
            value = float(raw)
        else:
            parts = _DURATION_PART.findall(raw)
            if not parts or _DURATION_PART.sub("", raw).strip():
                raise ValueError(text)
            value = sum(float(v) * _DURATION_UNIT_S[u] for v, u in parts)
    if not math.isfinite(value) or value < 0:
        raise ValueError(text)
    return value


def format_duration(seconds: float) -> str:
    """'45 s', '10 min', '6 h', '1 h 30 min' — for messages and the README."""
    if seconds < 60 or seconds % 60:
        return f"{seconds:g} s"
    if seconds < 3600 or seconds % 3600:
        h, m = divmod(int(seconds) // 60, 60)
        return f"{h} h {m} min" if h else f"{m} min"
    return f"{int(seconds) // 3600} h"


_WRITE_AS = {
    Kind.NUMBER: "a number",
    Kind.INTEGER: "a whole number",
    Kind.BOOL: "true or false",
    Kind.TEXT: "text",
    Kind.DURATION: "a duration such as 90s, 20m or 8h",
    Kind.PATH: "a file path",
    Kind.NAMES: "a list of names such as river,wind",
    Kind.CHOICE: "one of the listed choices",
}


def coerce(name: str, value: Any, *, label: str | None = None) -> Any:
    """Read one raw value (command-line text, front-matter text or a TOML value) into the setting's type.

    Raises SettingsError naming the setting as ``label`` (default: its key) and
    quoting the value as written: ``rate 3 is out of range (0.5 to 2 ×)``.
    """
    spec = spec_of(name)
    label = label or spec.key
    if value is None or (
        spec.optional and isinstance(value, str) and value.strip().lower() == "none"
    ):
        if spec.optional:
            return None
        raise SettingsError(f"{label} needs a value ({_WRITE_AS[spec.kind]})")
    try:
        typed = _READERS[spec.kind](value, spec)
    except (TypeError, ValueError, OverflowError):
        choices = f" ({', '.join(spec.choices)})" if spec.choices else ""
        raise SettingsError(
            f"{label} must be {_WRITE_AS[spec.kind]}{choices}, not {_shown(value)}"
        ) from None
    _check_range(spec, typed, value, label)
    return typed


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _read_number(value: Any, spec: Spec) -> float:
    if isinstance(value, bool):
        raise ValueError(value)
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _read_integer(value: Any, spec: Spec) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(value)
    if isinstance(value, str):
        if not re.fullmatch(r"\s*[+-]?\d+\s*", value):
            raise ValueError(value)
    return int(value)


def _read_bool(value: Any, spec: Spec) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValueError(value)


def _read_text(value: Any, spec: Spec) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def _read_path(value: Any, spec: Spec) -> Path | None:
    if isinstance(value, bool) and spec.optional and spec.role is Role.OUTPUT:
        # `plot = true` in a manifest: the default file beside the output (see publish.beside_output).
        return Path("true") if value else None
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise TypeError(value)
    return Path(str(value))


def _read_names(value: Any, spec: Spec) -> tuple[str, ...]:
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    if not all(isinstance(v, str) for v in items):
        raise TypeError(value)
    names = tuple(dict.fromkeys(v.strip() for v in items if v.strip()))
    if not names:
        raise ValueError(value)
    return names


def _read_choice(value: Any, spec: Spec) -> str:
    text = str(value).strip().lower()
    if text not in spec.choices:
        raise ValueError(value)
    return text


_READERS = {
    Kind.NUMBER: _read_number,
    Kind.INTEGER: _read_integer,
    Kind.BOOL: _read_bool,
    Kind.TEXT: _read_text,
    Kind.DURATION: lambda value, spec: parse_duration_s(value),
    Kind.PATH: _read_path,
    Kind.NAMES: _read_names,
    Kind.CHOICE: _read_choice,
}


def _check_range(spec: Spec, typed: Any, raw: Any, label: str) -> None:
    if spec.low is None and spec.high is None:
        return
    low = -math.inf if spec.low is None else spec.low
    high = math.inf if spec.high is None else spec.high
    if not (low <= typed <= high):
        raise SettingsError(f"{label} {_raw_text(raw)} is out of range ({describe_range(spec)})")


def _raw_text(raw: Any) -> str:
    """The value as the user wrote it (``7h`` stays ``7h``)."""
    return (
        raw.strip() if isinstance(raw, str) else f"{raw:g}" if isinstance(raw, float) else str(raw)
    )


def describe_range(spec: Spec) -> str:
    """'0.5 to 2 ×', '1 s to 24 h', 'at least 0'."""
    show = format_duration if spec.kind is Kind.DURATION else (lambda v: f"{v:g}")
    unit = f" {spec.unit}" if spec.unit and spec.kind is not Kind.DURATION else ""
    if spec.high is None or (spec.kind is Kind.INTEGER and spec.high >= 2**62):
        return f"at least {show(spec.low)}{unit}"
    return f"{show(spec.low)} to {show(spec.high)}{unit}"


# --- whole settings ---------------------------------------------------------------


def validate(settings: RenderSettings) -> RenderSettings:
    """Check what single values cannot: the output's format, the voice's form. Returns ``settings``."""
    from .export import ENCODERS  # the encoder registry decides which suffixes are formats

    suffix = settings.output.suffix.lower()
    if suffix not in ENCODERS:
        raise SettingsError(
            f"unknown output format {settings.output.suffix or '(no suffix)'!r} for {settings.output} "
            f"(known: {', '.join(sorted(ENCODERS))})"
        )
    if not settings.voice.strip():
        raise SettingsError("voice must be engine:name, not ''")
    from .voicefx import parse_voice_fx

    parse_voice_fx(settings.voice_fx)
    if settings.bed is not None:
        # FILE:LEVEL_DB splits here, and the file is checked now, before any speech.
        from .soundscape import parse_bed

        path, level_db = parse_bed(str(settings.bed))
        settings = dataclasses.replace(settings, bed=Path(path), bed_level_db=level_db)
    return settings


def resolve_settings(
    explicit: Mapping[str, Any], script=None, *, labels: Mapping[str, str] | None = None
) -> RenderSettings:
    """Merge defaults, the script's front matter and explicit values; validate once.

    ``explicit`` holds only the settings the user actually gave, by key or
    field name, as raw values; ``labels`` names them in messages (the CLI
    passes ``--rate`` for ``rate``). A bad front-matter value is reported at
    its line in the script.
    """
    values: dict[str, Any] = {}
    if script is not None:
        for key, raw in script.settings.items():
            spec = spec_of(key)
            try:
                values[spec.name] = coerce(key, raw)
            except SettingsError as exc:
                raise ScriptError(
                    str(exc), path=script.path, line=script.setting_lines.get(key, 0), col=1
                ) from None
    for key, raw in explicit.items():
        spec = spec_of(key)
        label = (labels or {}).get(key, spec.key)
        values[spec.name] = coerce(key, raw, label=label)
    if script is not None and values.get("title") is None:
        values["title"] = script.title
    return validate(RenderSettings(**values))


def settings_to_dict(settings: RenderSettings) -> dict[str, Any]:
    """The settings as JSON-ready values by key (paths as text, tuples as lists) — the sidecar's ``settings``."""
    out: dict[str, Any] = {}
    for spec in SCHEMA.values():
        value = getattr(settings, spec.name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[spec.key] = value
    return out


def front_matter_keys() -> tuple[str, ...]:
    """Keys a script's front matter may set."""
    return tuple(spec.key for spec in specs_for(Use.FRONT_MATTER))


# --- the README table ------------------------------------------------------------------

_README_START = "<!-- settings table: generated by `python -m meditation.settings --readme` -->"
_README_END = "<!-- end of settings table -->"


def readme_table() -> str:
    """The option table the README shows, from the schema."""
    rows = [
        "| option | front matter / manifest key | meaning | default | range | render | ambient |",
        "|---|---|---|---|---|---|---|",
    ]
    for spec in SCHEMA.values():
        if not spec.uses & (Use.RENDER | Use.AMBIENT):
            continue
        option = f"`{spec.short}`, `{spec.option}`" if spec.short else f"`{spec.option}`"
        meaning = ("don't " if spec.kind is Kind.BOOL and spec.default else "") + spec.help
        if spec.key == "script":
            option = "`SCRIPT` (argument)"
        key = f"`{spec.key}`" if spec.uses & (Use.FRONT_MATTER | Use.MANIFEST) else ""
        where = "/".join(
            w for w, u in (("fm", Use.FRONT_MATTER), ("manifest", Use.MANIFEST)) if spec.uses & u
        )
        key = f"{key} ({where})" if key else "—"
        rng = describe_range(spec) if spec.low is not None else ""
        rows.append(
            f"| {option} | {key} | {meaning} | {_default_text(spec)} | {rng} | "
            f"{'✓' if spec.uses & Use.RENDER else ''} | {'✓' if spec.uses & Use.AMBIENT else ''} |"
        )
    return "\n".join(rows)


def _default_text(spec: Spec) -> str:
    if spec.key == "script":
        return "the dream"
    if spec.key == "output":
        return "`SCRIPT.mp3`, `ambient.mp3`"
    if spec.default is None:
        return ""
    if spec.kind is Kind.BOOL:
        return "on" if spec.default else "off"
    if spec.kind is Kind.DURATION:
        return format_duration(spec.default)
    return f"`{spec.default}`"


def readme_with_table(readme: str) -> str:
    """``readme`` with the text between the table markers replaced by the current table."""
    start, end = readme.find(_README_START), readme.find(_README_END)
    if start < 0 or end < start:
        raise SettingsError("README.md has no settings-table markers")
    return readme[: start + len(_README_START)] + "\n" + readme_table() + "\n" + readme[end:]


def _main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m meditation.settings",
        description="Print or update the README's settings table.",
    )
    parser.add_argument(
        "--readme",
        nargs="?",
        const="README.md",
        help="rewrite the table in this README (default README.md)",
    )
    args = parser.parse_args(argv)
    if args.readme:
        path = Path(args.readme)
        path.write_text(readme_with_table(path.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        sys.stdout.write(readme_table() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())


def __getattr__(name: str) -> Any:
    # FORMATS follows the encoder registry, so a new encoder needs no edit here.
    if name == "FORMATS":
        from .export import ENCODERS

        return {suffix: suffix[1:].upper() for suffix in sorted(ENCODERS)}
    raise AttributeError(name)
