"""Speakers: named voices a script gives its paragraphs (issue 19 §3).

A script declares them in its front matter, inline or as a block::

    speakers: {guide: piper:joe, echo: hibari:heart level=-3 pan=0.4}

    speakers:
      guide: piper:joe
      echo: hibari:heart rate=0.85 chain=room level=-3 pan=0.4

and marks a paragraph with a declared name and a colon at the start of a line,
play-script style (``Echo: Breathe with me.``); see ``meditation.script``.
Each entry is ``NAME: VOICE`` and, optionally, ``rate=`` (the engine's rate,
as ``--rate``), ``chain=`` (a voice-chain style, as ``--voice-fx``), ``level=``
(dB against the other speakers) and ``pan=`` (-1 left … 1 right). Unmarked
text is the narrator's: the render's ``--voice``. A manifest, ``--speakers`` or
the studio gives entries the same way, for names the script declares: what an
entry gives (its voice, and any of rate, chain, level, pan) replaces the
script's, the rest stays as the script wrote it.

Pure parsing, no numpy: the settings read these at start-up.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from .errors import SettingsError

__all__ = [
    "NARRATOR",
    "Speaker",
    "SpeakerError",
    "parse_speakers",
    "parse_entry",
    "format_speakers",
    "merge_speakers",
    "display_name",
    "stem_name",
    "RATE_RANGE",
    "LEVEL_RANGE_DB",
    "PAN_RANGE",
]

NARRATOR = "narrator"
"""The name of the default speaker (unmarked text, the render's ``--voice``); reserved."""

RATE_RANGE = (0.5, 2.0)
LEVEL_RANGE_DB = (-30.0, 12.0)
PAN_RANGE = (-1.0, 1.0)
MAX_SPEAKERS = 16

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")


class SpeakerError(SettingsError):
    """A bad speaker entry; ``offset`` is where in the text it went wrong (0-based)."""

    def __init__(self, message: str, offset: int = 0):
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True)
class Speaker:
    """One declared speaker."""

    name: str
    """As declared (``guide``); matched without regard to case."""
    voice: str
    """``engine:name`` or an engine alone (resolved in preflight)."""
    rate: float | None = None
    """The engine's rate; None: the render's ``--rate``."""
    chain: str | None = None
    """A voice-chain style (``gentle``, ``room``…); None: the render's ``--voice-fx``."""
    level_db: float = 0.0
    """Gain after the chain, against the other speakers (each is first set to the same speech level)."""
    pan: float = 0.0
    """Stereo balance, -1 (left) to 1 (right): the far side fades, the near side stays."""
    given: frozenset[str] = dataclasses.field(default=frozenset(), compare=False)
    """The fields the entry wrote (besides name and voice): what it replaces in a merge."""

    @property
    def key(self) -> str:
        return self.name.lower()

    def entry(self) -> str:
        """The entry as it would be written (``echo: hibari:heart level=-3``)."""
        parts = [f"{self.name}: {self.voice}"]
        if self.rate is not None:
            parts.append(f"rate={self.rate:g}")
        if self.chain is not None:
            parts.append(f"chain={self.chain}")
        if self.level_db:
            parts.append(f"level={self.level_db:g}")
        if self.pan:
            parts.append(f"pan={self.pan:g}")
        return " ".join(parts)


def display_name(name: str) -> str:
    """The name captions show: ``guide`` → ``Guide`` (the narrator for unmarked text)."""
    name = name or NARRATOR
    return name[:1].upper() + name[1:]


def stem_name(name: str) -> str:
    """The stem file (without ``.wav``) of a speaker: ``voice`` for the narrator, ``voice-echo`` else."""
    return "voice" if not name else f"voice-{name.lower()}"


def _number(text: str, what: str, low: float, high: float, unit: str, offset: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SpeakerError(f"{what} {text!r} is not a number", offset) from None
    if not low <= value <= high:  # also refuses nan
        raise SpeakerError(f"{what}={text} is out of range ({low:g} to {high:g}{unit})", offset)
    return value


def parse_entry(entry: str, offset: int = 0) -> Speaker:
    """One ``NAME: VOICE [rate=R] [chain=STYLE] [level=DB] [pan=P]``; SpeakerError at its offset."""
    lead = len(entry) - len(entry.lstrip())
    name, sep, rest = entry.strip().partition(":")
    name = name.strip()
    if not sep or not _NAME.fullmatch(name):
        raise SpeakerError(
            f"expected 'name: voice' for a speaker, got {entry.strip()[:60]!r} "
            "(a name is a letter then letters, digits, - or _)",
            offset + lead,
        )
    if name.lower() == NARRATOR:
        raise SpeakerError(
            f"{name!r} is the default speaker (unmarked text, spoken with --voice); "
            "give your speakers other names",
            offset + lead,
        )
    at = offset + lead + entry.strip().index(":") + 1
    words = [(m.group(), at + m.start()) for m in re.finditer(r"\S+", rest)]
    if not words:
        raise SpeakerError(f"speaker {name!r} has no voice (e.g. {name}: piper:joe)", at)
    voice, _ = words[0]
    fields: dict[str, object] = {}
    for word, where in words[1:]:
        key, eq, value = word.partition("=")
        key = key.lower()
        if not eq or key not in ("rate", "chain", "level", "pan") or not value:
            raise SpeakerError(
                f"unexpected {word!r} for speaker {name!r} (give rate=, chain=, level=, pan=)",
                where,
            )
        if key in fields:
            raise SpeakerError(f"{key}= is given twice for speaker {name!r}", where)
        if key == "rate":
            fields[key] = _number(value, "rate", *RATE_RANGE, "×", where)
        elif key == "level":
            fields["level_db"] = _number(
                value.removesuffix("dB"), "level", *LEVEL_RANGE_DB, " dB", where
            )
        elif key == "pan":
            fields[key] = _number(value, "pan", *PAN_RANGE, "", where)
        else:
            fields[key] = value
    return Speaker(name, voice, **fields, given=frozenset(fields))  # type: ignore[arg-type]


def parse_speakers(text: str) -> tuple[Speaker, ...]:
    """Entries joined by commas (or on lines of their own), optionally in ``{…}``; SpeakerError at an offset."""
    body, start = text, 0
    stripped = text.strip()
    if stripped.startswith("{"):
        if not stripped.endswith("}"):
            raise SpeakerError("speakers: '{' is never closed with '}'", text.index("{"))
        start = text.index("{") + 1
        body = text[start : text.rindex("}")]
    speakers: list[Speaker] = []
    seen: dict[str, str] = {}
    at = start
    for piece in re.split(r"[,\n]", body):
        if piece.strip():
            speaker = parse_entry(piece, at)
            if speaker.key in seen:
                raise SpeakerError(f"speaker {speaker.name!r} is declared twice", at)
            seen[speaker.key] = speaker.name
            speakers.append(speaker)
        at += len(piece) + 1
    if not speakers:
        raise SpeakerError("speakers: give at least one 'name: voice'", 0)
    if len(speakers) > MAX_SPEAKERS:
        raise SpeakerError(f"speakers: at most {MAX_SPEAKERS} speakers", 0)
    return tuple(speakers)


def format_speakers(speakers: tuple[Speaker, ...]) -> str:
    """The canonical text of a speaker table (what the setting holds)."""
    return ", ".join(s.entry() for s in speakers)


def merge_speakers(declared: str | None, given: str | None) -> str | None:
    """The script's speakers, each with what ``given`` (a manifest, ``--speakers``, the studio) says of it.

    A name given that the script does not declare is refused: its text could not be marked.
    """
    if given is None or declared is None:
        return given if declared is None else declared
    base = {s.key: s for s in parse_speakers(declared)}
    for speaker in parse_speakers(given):
        if speaker.key not in base:
            raise SettingsError(
                f"speaker {speaker.name!r} is not declared in the script's speakers "
                f"(it declares: {', '.join(s.name for s in base.values())})"
            )
        kept = base[speaker.key]
        base[speaker.key] = dataclasses.replace(
            kept, voice=speaker.voice, **{f: getattr(speaker, f) for f in speaker.given}
        )
    return format_speakers(tuple(base.values()))
