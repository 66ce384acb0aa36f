"""Render settings: the one schema every setting is declared in, once.

Each field of :class:`RenderSettings` is declared with :func:`setting`: its
default, one line of help, its unit and range, which commands and files it
applies to (``render`` / ``ambient`` options, script front matter, batch
manifests) and, for paths, whether it is an input or an output. Everything
else is derived from these declarations: the argparse options of each
command (``cli``), front-matter and manifest validation with one wording for
every error, the batch sidecar, and the README's option table
(``python -m meditation.settings_table --readme`` rewrites it; a test compares).
Reading single values (kinds, durations, ranges) is ``meditation.setting_values``.

Values come from three places, in rising priority: defaults, the script's
front matter, the command line (or a batch manifest). They are checked once,
here, where they enter; every later stage trusts them.

To add a setting: add one field below with ``setting(...)``, use it in its
stage, and regenerate the README table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ScriptError, SettingsError
from .formats import FORMATS, known_suffixes
from .levels import LOUDNESS_SCOPES
from .schema import (
    EVERYWHERE as _EVERYWHERE,
)
from .schema import (
    Kind,
    Role,
    Spec,
    Use,
    describe_range,
    format_duration,
    parse_duration_s,
    read_value,
    setting,
)
from .speakers import merge_speakers, parse_speakers
from .winddown import WindDownError, parse_wind_down

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
    "split_level",
    "resolve_settings",
    "breath_cue_words",
    "parse_duration_s",
    "format_duration",
    "describe_range",
    "settings_to_dict",
    "preset_name",
    "front_matter_keys",
]

DEFAULT_SCRIPT = Path(__file__).resolve().parent / "data" / "dream.md"


# What a timer session shares with an ambient track: the ambience, the master, the file.
_SESSION = Use.AMBIENT | Use.TIMER
_UNIT_SUFFIXES = ("_s", "_db", "_lufs", "_hz")


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
        uses=Use.RENDER | _SESSION,
        role=Role.OUTPUT,
        audio=False,
        short="-o",
    )
    voice: str = setting(
        "piper:joe",
        "voice as engine:name (see 'meditation voices')",
        timer_help="voice of the --open and --close lines, as engine:name (see 'meditation voices')",
        uses=_EVERYWHERE | Use.TIMER,
    )
    voice_fx: str = setting(
        "auto",
        "voice chain: auto (gentle, tuned by the soundscape's [voice]), none, gentle, room, hall, dry; tune with ,key=value",
        uses=_EVERYWHERE | Use.TIMER,
    )
    speakers: str | None = setting(
        None,
        "named voices for marked paragraphs: 'guide: piper:joe, echo: hibari:heart level=-3 pan=0.4' "
        "(also rate=, chain=); for speakers the script declares, replacing what it gives",
        kind=Kind.TEXT,
        optional=True,
    )
    rate: float | None = setting(
        None,
        "speaking rate applied by the voice engine; 0.8 = 20 % slower (default: the --wpm pace)",
        timer_help="speaking rate of the --open and --close lines; 0.8 = 20 % slower",
        kind=Kind.NUMBER,
        unit="×",
        low=0.5,
        high=2.0,
        uses=_EVERYWHERE | Use.TIMER,
        optional=True,
    )
    wpm: float | None = setting(
        None,
        "pace in words per minute of speech, calibrated per voice; sets the rate (default: 135 for a neural voice without --rate, else rate 0.9)",
        kind=Kind.NUMBER,
        low=60.0,
        high=400.0,
        optional=True,
    )
    pause_scale: float = setting(1.0, "multiplies every pause", unit="×", low=0.0, high=10.0)
    wind_down: str | None = setting(
        None,
        "wind the narration down over the session: rate=0.75,level=-4dB,pauses=1.6 "
        "(by the last scene; lists give points, by=time follows time), or on",
        kind=Kind.TABLE,
        optional=True,
    )
    breath_cues: str = setting(
        "In,Hold,Out",
        "what the voice says on each breathing phase of [breathe … cues]: in,hold,out",
    )
    lexicon: Path | None = setting(
        None,
        "pronunciation lexicon: a TOML file whose [lexicon] table maps words to respellings or /IPA/",
        kind=Kind.PATH,
        role=Role.INPUT,
        optional=True,
    )
    duration_s: float | None = setting(
        None,
        "target length: pauses stretch or shrink to fit (ambient: the track's length)",
        ambient_help="the track's length (required)",
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
        ambient_help="equal-power fade-in of the whole track (default: 10 s, at most a quarter of the track)",
        kind=Kind.DURATION,
        low=0.0,
        high=12 * 3600.0,
        uses=_EVERYWHERE | Use.AMBIENT,
        optional=True,
    )
    fade_out_s: float | None = setting(
        None,
        "equal-power fade-out ending exactly at the last sample (default: ⅘ of the tail; ambient 10 s)",
        ambient_help="equal-power fade-out ending exactly at the last sample (default: 10 s, at most a quarter of the track)",
        kind=Kind.DURATION,
        low=0.0,
        high=12 * 3600.0,
        uses=_EVERYWHERE | Use.AMBIENT,
        optional=True,
    )
    soundscape: str = setting(
        "auto",
        "preset name or .toml path; 'none' for narration alone; 'auto': the script's words choose (see --explain)",
        ambient_help="preset name or .toml path; 'none' for the --bed recording alone; 'auto' is 'default'",
        timer_help="a preset name or .toml path to sit with under the bells (its own bell gives way); "
        "'auto' or 'none': a silent sit, or the --bed alone",
        uses=_EVERYWHERE | _SESSION,
    )
    words: Path | None = setting(
        None,
        "more words for --soundscape auto: a TOML file of [places] and [cues] merged over soundscapes/auto/words.toml",
        kind=Kind.PATH,
        role=Role.INPUT,
        optional=True,
    )
    layers: tuple[str, ...] | None = setting(
        None,
        "keep only these soundscape layers, e.g. river,wind",
        timer_help="keep only these layers of the --soundscape, e.g. river,wind",
        kind=Kind.NAMES,
        uses=_EVERYWHERE | _SESSION,
        optional=True,
    )
    bed: Path | None = setting(
        None,
        "a recording FILE[:LEVEL_DB] looped under the soundscape (WAV, FLAC, Ogg, MP3); LEVEL_DB sets --bed-level",
        kind=Kind.PATH,
        uses=_EVERYWHERE | _SESSION,
        role=Role.INPUT,
        optional=True,
        level="bed_level",
    )
    bed_level_db: float = setting(
        -12.0,
        "level of the --bed recording, relative to the narration like a layer's level_db",
        ambient_help="level of the --bed recording, like a layer's level_db",
        timer_help="level of the --bed recording, like a layer's level_db",
        unit="dB",
        low=-60.0,
        high=12.0,
        uses=_EVERYWHERE | _SESSION,
    )
    seed: int = setting(
        1,
        "seed of every random choice; same seed, same audio",
        kind=Kind.INTEGER,
        low=0,
        high=2**63 - 1,
        uses=_EVERYWHERE | _SESSION,
    )
    loudness_lufs: float = setting(
        -16.0,
        "integrated loudness target (ITU-R BS.1770)",
        unit="LUFS",
        low=-40.0,
        high=-5.0,
        uses=_EVERYWHERE | _SESSION,
    )
    loudness_scope: str = setting(
        "auto",
        "what meets the loudness target: auto (the track, at most 30 s past the last word), track, speech",
        kind=Kind.CHOICE,
        choices=LOUDNESS_SCOPES,
    )
    true_peak_db: float = setting(
        -1.0,
        "true-peak ceiling of the limiter",
        unit="dBTP",
        low=-12.0,
        high=0.0,
        uses=_EVERYWHERE | _SESSION,
    )
    sample_rate: int = setting(
        44100,
        "sample rate of the mix and the output",
        kind=Kind.INTEGER,
        unit="Hz",
        low=8000,
        high=192000,
        uses=Use.RENDER | _SESSION | Use.MANIFEST,
    )
    title: str | None = setting(
        None,
        "title tag (default: the script's title)",
        ambient_help="title tag (default: Ambience)",
        timer_help="title tag (default: Timer and the sit's length, e.g. Timer 20:00)",
        kind=Kind.TEXT,
        uses=_EVERYWHERE | _SESSION,
        audio=False,
        optional=True,
    )
    artist: str = setting("meditation", "artist tag", uses=_EVERYWHERE | _SESSION, audio=False)
    timings: Path | None = setting(
        None,
        "write the timeline as JSON here",
        kind=Kind.PATH,
        uses=Use.RENDER | Use.TIMER,
        role=Role.OUTPUT,
        audio=False,
        optional=True,
    )
    stems: Path | None = setting(
        None,
        "write the voice and each layer as WAV stems into this folder",
        ambient_help="write each layer as WAV stems into this folder",
        timer_help="write the bells, each layer and any spoken line as WAV stems into this folder",
        kind=Kind.PATH,
        uses=Use.RENDER | _SESSION,
        role=Role.OUTPUT_FOLDER,
        audio=False,
        optional=True,
    )
    cache: bool = setting(
        True, "reuse speech from the on-disk cache", uses=Use.RENDER | Use.TIMER, audio=False
    )
    speech_jobs: int | None = setting(
        None,
        "sentences spoken at once (default: by cores and memory; 1: one at a time); same audio for any number",
        kind=Kind.INTEGER,
        low=1,
        high=64,
        audio=False,
        optional=True,
    )
    mp3_quality: int = setting(
        2,
        "MP3 VBR quality, as LAME's -V: 0 best and largest, 9 smallest (a river: 250, 190 at 2, 80 kb/s at 9)",
        kind=Kind.INTEGER,
        low=0,
        high=9,
        uses=_EVERYWHERE | _SESSION,
    )
    force: bool = setting(
        False,
        "replace output files that already exist even if meditation did not write them "
        "(never an input of the run; still written whole, then renamed)",
        uses=Use.RENDER | Use.AMBIENT,
        audio=False,
    )
    album: str | None = setting(
        None,
        "album tag (default: the title)",
        kind=Kind.TEXT,
        uses=_EVERYWHERE | _SESSION,
        optional=True,
    )
    cover: Path | None = setting(
        None,
        "PNG or JPEG cover art, embedded in MP3, M4A/M4B, FLAC, Ogg and Opus",
        kind=Kind.PATH,
        uses=_EVERYWHERE | _SESSION,
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
        True,
        "put a chapter per scene in MP3, M4A/M4B, FLAC, Ogg and Opus",
        timer_help="put a chapter at each bell in MP3, M4A/M4B, FLAC, Ogg and Opus",
        uses=_EVERYWHERE | Use.TIMER,
    )
    plot: Path | None = setting(
        None,
        "draw the plan and the track's loudness into this picture (.png .svg .pdf); 'png' alone: beside the output",
        kind=Kind.PATH,
        uses=Use.RENDER | _SESSION | Use.MANIFEST,
        role=Role.OUTPUT,
        audio=False,
        optional=True,
    )

    vary: str | None = setting(
        None,
        "a new night every night: nightly (from today's date), a night's date YYYY-MM-DD, or seed (vary by --seed)",
        kind=Kind.TEXT,
        uses=_EVERYWHERE | Use.AMBIENT,
        optional=True,
    )
    # --- a night in movements (issue 22; ``meditation.soundscape.schedule``) ---
    schedule: str | None = setting(
        None,
        "ambient: places over the hours, e.g. night-wind@0,stream@2h,drone@6h30m, or a .toml file",
        kind=Kind.TEXT,
        uses=Use.AMBIENT | Use.MANIFEST,
        optional=True,
    )
    crossfade_s: float | None = setting(
        None,
        "ambient: length of each change of place in a --schedule (default 5 min)",
        kind=Kind.DURATION,
        low=1.0,
        high=3600.0,
        uses=Use.AMBIENT | Use.MANIFEST,
        optional=True,
    )
    wake_s: float | None = setting(
        None,
        "ambient: a wake-up ramp over the track's last DUR (the last place rises, a bell grows)",
        kind=Kind.DURATION,
        key="wake",
        low=10.0,
        high=12 * 3600.0,
        uses=Use.AMBIENT | Use.MANIFEST,
        optional=True,
    )
    # --- timer sessions (issue 22; ``meditation.timer``) ---
    interval_s: float | None = setting(
        None,
        "timer: a bell every DUR of the sit (or --at)",
        kind=Kind.DURATION,
        key="interval",
        low=10.0,
        high=24 * 3600.0,
        uses=Use.TIMER,
        optional=True,
    )
    bell_at_s: tuple[float, ...] | None = setting(
        None,
        "timer: a bell at these times into the sit, e.g. 5m,12m (or --interval)",
        kind=Kind.DURATIONS,
        key="at",
        uses=Use.TIMER,
        optional=True,
    )
    bell: str = setting(
        "bowl",
        "timer: the sound of its bells",
        kind=Kind.CHOICE,
        choices=("bowl", "bell", "chime"),
        uses=Use.TIMER,
    )
    closing_strikes: int = setting(
        3, "timer: strikes of the closing bell", low=1, high=9, uses=Use.TIMER
    )
    opening_line: str | None = setting(
        None,
        "timer: a line spoken before the first bell",
        kind=Kind.TEXT,
        key="open",
        uses=Use.TIMER,
        optional=True,
    )
    closing_line: str | None = setting(
        None,
        "timer: a line spoken after the closing bell",
        kind=Kind.TEXT,
        key="close",
        uses=Use.TIMER,
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


def coerce(name: str, value: Any, *, label: str | None = None) -> Any:
    """Read one raw value into the setting's type (see ``setting_values.read_value``).

    Raises SettingsError naming the setting as ``label`` (default: its key).
    """
    spec = spec_of(name)
    if spec.name == "speakers" and isinstance(value, Mapping):
        # A manifest's table ``speakers = {echo = "hibari:heart level=-3"}``: the entries' text.
        value = ", ".join(f"{k}: {v}" for k, v in value.items())
    return read_value(spec, value, label or spec.key)


# --- whole settings ---------------------------------------------------------------


def validate(settings: RenderSettings) -> RenderSettings:
    """Check what single values cannot: the output's format, the voice's form. Returns ``settings``.

    Pure: no file is opened and no later stage is asked; what needs either is
    checked by ``meditation.preflight`` before any speech.
    """
    suffix = settings.output.suffix.lower()
    if suffix not in FORMATS:
        raise SettingsError(
            f"unknown output format {settings.output.suffix or '(no suffix)'!r} for {settings.output} "
            f"(known: {known_suffixes()})"
        )
    if not settings.voice.strip():
        raise SettingsError("voice must be engine:name, not ''")
    breath_cue_words(settings.breath_cues)
    if settings.speakers is not None:
        try:
            parse_speakers(settings.speakers)
        except SettingsError as exc:
            raise SettingsError(f"speakers: {exc.message}") from None
    parse_wind_down(settings.wind_down)
    if settings.vary is not None:
        from .vary import resolve_vary  # noqa: PLC0415 - start-up: vary loads numpy, settings must not

        settings = resolve_vary(settings)
    return settings


_MAX_CUE_CHARS = 60


def breath_cue_words(text: str) -> dict[str, str]:
    """``breath_cues`` (``In,Hold,Out``) as the words said on each phase; SettingsError if malformed."""
    words = [" ".join(w.split()) for w in str(text).split(",")]
    if len(words) != 3 or not all(any(ch.isalnum() for ch in w) for w in words):
        raise SettingsError(
            f"breath_cues {str(text)!r} must be three words or phrases joined by commas, "
            "for in, hold and out, e.g. Breathe in,Hold,Let go"
        )
    if any(len(w) > _MAX_CUE_CHARS for w in words):
        raise SettingsError(f"breath_cues: a cue is longer than {_MAX_CUE_CHARS} characters")
    return dict(zip(("in", "hold", "out"), words))


def split_level(raw: Any) -> tuple[Any, str | None]:
    """``FILE[:LEVEL_DB]`` as (FILE, LEVEL_DB text or None); a tail that is not a number stays in FILE."""
    if isinstance(raw, (str, Path)):
        head, sep, tail = str(raw).rpartition(":")
        if sep and head:
            try:
                float(tail)
            except ValueError:
                return raw, None
            return head, tail
    return raw, None


def _read_source(values: dict[str, Any], given: Mapping[str, Any], label_of: Any) -> None:
    """Coerce one source's raw values into ``values`` (by field name).

    A path declared with a ``level`` (``bed``) may carry ``:LEVEL_DB``; that
    level is read as the level setting itself (its range and unit, declared
    once) and wins over a separate level given in the same source.
    """
    levels: dict[str, Any] = {}
    for key, raw in given.items():
        spec = spec_of(key)
        label = label_of(key, spec)
        if spec.level is not None:
            raw, level = split_level(raw)
            if level is not None:
                levels[spec.level] = coerce(
                    spec.level, level, label=f"{label} {str(given[key])!r}: level"
                )
        values[spec.name] = coerce(key, raw, label=label)
    for key, level in levels.items():
        values[spec_of(key).name] = level


def resolve_settings(
    explicit: Mapping[str, Any],
    script=None,
    *,
    labels: Mapping[str, str] | None = None,
    relative_to: Path | None = None,
) -> RenderSettings:
    """Merge defaults, the script's front matter and explicit values; validate once.

    ``explicit`` holds only the settings the user actually gave, by key or
    field name, as raw values; ``labels`` names them in messages (the CLI
    passes ``--rate`` for ``rate``). A bad front-matter value is reported at
    its line in the script. ``relative_to``: the folder a relative file named
    in the front matter (``cover:``, ``bed:``) lies in — the script's own on
    the command line and in a batch, as manifests and presets do; the studio
    resolves them inside its folder itself.
    """
    values: dict[str, Any] = {}
    if script is not None:
        # A FILE:LEVEL path after the keys it may override, as in _read_source.
        keys = sorted(
            script.settings, key=lambda k: getattr(SCHEMA.get(k), "level", None) is not None
        )
        for key in keys:
            try:
                _read_source(values, {key: script.settings[key]}, lambda k, spec: spec.key)
                if key == "breath_cues":  # checked here too, so the error names its line
                    breath_cue_words(values["breath_cues"])
                if key == "wind_down":  # here too, so the error names its line and column
                    parse_wind_down(values["wind_down"])
                spec = SCHEMA.get(key)
                if relative_to is not None and spec is not None and spec.role is Role.INPUT:
                    path = values.get(spec.name)
                    if isinstance(path, Path) and not path.expanduser().is_absolute():
                        values[spec.name] = Path(relative_to) / path
            except SettingsError as exc:
                col = 1
                if isinstance(exc, WindDownError):
                    col = getattr(script, "setting_cols", {}).get(key, 1) + exc.offset
                raise ScriptError(
                    str(exc), path=script.path, line=script.setting_lines.get(key, 0), col=col
                ) from None
    declared = values.get("speakers")
    given_keys = {getattr(SCHEMA.get(k), "name", k) for k in explicit}
    if given_keys & {"rate", "wpm"} and not given_keys >= {"rate", "wpm"}:
        # rate and wpm are two ways to give one pace: the one given last wins.
        values.pop("wpm" if "rate" in given_keys else "rate", None)
    _read_source(values, explicit, lambda key, spec: (labels or {}).get(key, spec.key))
    if script is not None and ("speakers" in explicit or "speakers" in values):
        # Given speakers replace the script's of the same name; only declared names mark text.
        given = values.get("speakers") if "speakers" in explicit else None
        if given is not None and declared is None:
            raise SettingsError(
                "speakers: the script declares no speakers, so no text is marked for them "
                "(declare them in its front matter, e.g. speakers: {guide: piper:joe})"
            )
        values["speakers"] = merge_speakers(declared, given)
    if script is not None and values.get("title") is None:
        values["title"] = script.title
    return validate(RenderSettings(**values))


def preset_name(settings: RenderSettings, script: Any = None) -> str | None:
    """The soundscape preset a render plays: ``auto`` (the script's words choose; ``default``
    without a script), a name or path; None for ``none``. A script's front matter ``soundscape:``
    is already in ``settings`` (``resolve_settings``)."""
    name = settings.soundscape
    if name == "auto" and script is None:
        name = "default"
    return None if name == "none" else name


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
