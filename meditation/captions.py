"""Captions: WebVTT or SubRip cues that follow the voice, for deaf and hard-of-hearing listeners and for video.

Every spoken segment gets one or more cues. A cue holds at most two lines
of at most 42 characters (the usual broadcast limit), lies inside its
segment's speech — never over a pause, so the screen is empty while nothing
is said — and never overlaps the next. A long segment is split at word
boundaries into cues of similar length, preferring breaks after punctuation;
each split is timed where the text falls proportionally, then moved to the
quietest moment of the voice nearby (the gap between two words), so a cue
changes between words rather than in the middle of one.

Times are on the finished track, which every format decodes gaplessly.
The files are written with ``webvtt-py`` and ``srt`` and replace their
target atomically.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import srt
import webvtt

from .errors import SettingsError
from .files import atomic_write_text
from .speakers import display_name
from .timeline import Timeline

__all__ = [
    "Caption",
    "CAPTION_FORMATS",
    "MAX_LINE_CHARS",
    "MAX_LINES",
    "plan_cues",
    "write_captions",
    "check_captions_path",
]

MAX_LINE_CHARS = 42
MAX_LINES = 2
CAPTION_FORMATS = {".vtt": "WebVTT", ".srt": "SubRip"}

_SNAP_WINDOW_S = (
    0.35  # how far from the proportional estimate a split may move to find a gap between words
)
_FRAME_S = 0.01
_MIN_CUE_S = 0.3


@dataclass(frozen=True)
class Caption:
    """One caption on screen: its time span in milliseconds and its lines."""

    start_ms: int
    end_ms: int
    lines: tuple[str, ...]
    speaker: str = ""
    """Who says it (``Guide``), shown when the script has more than one speaker; else empty."""

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def check_captions_path(path: Path) -> None:
    """Refuse an unknown suffix or a missing folder before any synthesis."""
    path = Path(path)
    if path.suffix.lower() not in CAPTION_FORMATS:
        raise SettingsError(
            f"unknown captions format {path.suffix or '(no suffix)'!r} for {path} (known: {', '.join(CAPTION_FORMATS)})"
        )
    if not path.parent.is_dir():
        raise SettingsError(f"captions folder {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise SettingsError(f"captions path {str(path)!r} is a folder")


def plan_cues(timeline: Timeline, voice: Sequence[np.ndarray] | None = None) -> list[Caption]:
    """The cues of a whole track, in reading order.

    Parameters
    ----------
    timeline : Timeline
        Where each segment's speech starts and ends.
    voice : sequence of ndarray, optional
        Each segment's speech (mono, at the timeline's sample rate), used to
        move splits into the gaps between words; without it splits stay
        where the text falls proportionally.
    """
    sr = timeline.sample_rate
    cues: list[Caption] = []
    # Speakers are named only where there is more than one to tell apart.
    named = len({s.speaker.lower() for s in timeline.segments}) > 1
    for index, segment in enumerate(timeline.segments):
        groups = split_text(segment.text)
        if not groups or segment.length <= 0:
            continue
        audio = voice[index] if voice is not None and index < len(voice) else None
        bounds = _split_times(groups, segment.length, sr, audio)
        first_ms = math.ceil(segment.start * 1000 / sr)
        if audio is not None and len(audio):
            # The caption appears with the first sound: rounded down to the
            # millisecond (at most 1 ms before the segment's first, silent,
            # sample), so that no speech ever plays before its caption.
            first_ms = math.floor((segment.start + _onset(audio)) * 1000 / sr)
        for k, lines in enumerate(groups):
            # Splits and ends round inwards to whole milliseconds: a cue never
            # ends after its speech or reaches into the next cue.
            start_ms = first_ms if k == 0 else math.ceil((segment.start + bounds[k]) * 1000 / sr)
            end_ms = math.floor((segment.start + bounds[k + 1]) * 1000 / sr)
            if cues and start_ms < cues[-1].end_ms:
                start_ms = cues[-1].end_ms
            if end_ms > start_ms:
                speaker = display_name(segment.speaker) if named else ""
                cues.append(Caption(start_ms, end_ms, tuple(lines), speaker))
    return cues


def split_text(text: str) -> list[list[str]]:
    """Words of a segment as cues of at most two lines of at most 42 characters, balanced in length."""
    words = " ".join(text.split())
    if not words:
        return []
    lines = _wrap(words)
    count = math.ceil(len(lines) / MAX_LINES)
    while True:
        groups = _balanced(words.split(" "), count)
        wrapped = [_wrap(" ".join(g)) for g in groups]
        if all(len(w) <= MAX_LINES for w in wrapped):
            return wrapped
        count += 1


def _wrap(text: str) -> list[str]:
    """One line if it fits; else two lines of similar length (a break after punctuation preferred); else more."""
    if len(text) <= MAX_LINE_CHARS:
        return [text]
    words = text.split(" ")
    best = None
    for i in range(1, len(words)):
        first, second = " ".join(words[:i]), " ".join(words[i:])
        if len(first) <= MAX_LINE_CHARS and len(second) <= MAX_LINE_CHARS:
            score = abs(len(first) - len(second)) / len(text) - _break_bonus(words[i - 1])
            if best is None or score < best[0]:
                best = (score, [first, second])
    if best is not None:
        return best[1]
    return textwrap.wrap(text, MAX_LINE_CHARS, break_long_words=True, break_on_hyphens=False)


def _break_bonus(word: str) -> float:
    """How much a break after this word is worth: most after a sentence, some after a clause, less than nothing after 'the'."""
    end = word[-1:]
    if end in ".!?;:":
        return 0.5
    if end in ",—–)":
        return 0.3
    if word.lower() in _BINDING_WORDS:
        return -0.3  # a line should not end on a word that leans on the next one
    return 0.0


_BINDING_WORDS = frozenset(
    "a an the and or but nor of to in on at by for with from into onto upon as than that "
    "my your his her its our their this these those i we you he she they it is am are was were be".split()
)


def _balanced(words: list[str], count: int) -> list[list[str]]:
    """Words in ``count`` runs of similar length, each break moved to a nearby punctuation mark if there is one."""
    if count <= 1:
        return [words]
    total = sum(len(w) + 1 for w in words)
    ends = []  # index after the last word of each run but the last
    position = 0
    lengths = np.cumsum([len(w) + 1 for w in words])
    for k in range(1, count):
        target = total * k / count
        candidates = range(max(position + 1, 1), len(words) - (count - k) + 1)
        if not candidates:
            break

        def cost(i: int, target: float = target) -> float:
            return abs(lengths[i - 1] - target) / (total / count) - _break_bonus(words[i - 1])

        best = min(candidates, key=cost)
        ends.append(best)
        position = best
    runs, begin = [], 0
    for end in ends + [len(words)]:
        if end > begin:
            runs.append(words[begin:end])
        begin = end
    return runs


def _onset(audio: np.ndarray) -> int:
    """First sample within 55 dB of the segment's peak: where the sound of speech begins."""
    level = np.abs(np.asarray(audio, dtype=np.float32).reshape(len(audio), -1)).max(axis=1)
    peak = float(level.max())
    if peak <= 0:
        return 0
    return int(np.argmax(level > peak * _ONSET_RATIO))


_ONSET_RATIO = 10 ** (-55 / 20)


def _split_times(
    groups: list[list[str]], length: int, sample_rate: int, audio: np.ndarray | None
) -> list[int]:
    """Sample offsets in the segment where each cue starts, plus its end."""
    chars = [sum(len(line) for line in g) + len(g) for g in groups]
    total = sum(chars)
    bounds = [0]
    acc = 0
    frame = max(1, int(_FRAME_S * sample_rate))
    energy = None
    if audio is not None and len(audio) >= frame:
        mono = np.asarray(audio, dtype=np.float64).reshape(len(audio), -1).mean(axis=1)[:length]
        n = len(mono) // frame
        energy = (mono[: n * frame].reshape(n, frame) ** 2).mean(axis=1)
    min_gap = int(_MIN_CUE_S * sample_rate)
    for k in range(len(groups) - 1):
        acc += chars[k]
        estimate = int(length * acc / total)
        if energy is not None:
            reach = int(_SNAP_WINDOW_S * sample_rate) // frame
            centre = estimate // frame
            low, high = max(0, centre - reach), min(len(energy), centre + reach + 1)
            if high > low:
                estimate = (low + int(np.argmin(energy[low:high]))) * frame + frame // 2
        # Keep every cue at least a moment long and in order.
        remaining = len(groups) - 1 - k
        estimate = min(max(estimate, bounds[-1] + min_gap), length - remaining * min_gap)
        bounds.append(max(estimate, bounds[-1] + 1))
    bounds.append(length)
    return bounds


def format_captions(cues: Sequence[Caption], suffix: str) -> str:
    """The text of a ``.vtt`` or ``.srt`` file."""
    suffix = suffix.lower()
    if suffix == ".vtt":
        # WebVTT treats & and < as markup; the spoken text is plain.
        def plain(line: str) -> str:
            return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

        document = webvtt.WebVTT(
            captions=[
                webvtt.Caption(
                    start=_vtt_time(c.start_ms),
                    end=_vtt_time(c.end_ms),
                    # A voice span names the speaker: <v Guide>Sit comfortably.
                    text=[
                        (f"<v {c.speaker}>" if c.speaker and i == 0 else "") + plain(line)
                        for i, line in enumerate(c.lines)
                    ],
                )
                for c in cues
            ]
        )
        return document.content
    if suffix == ".srt":
        return srt.compose(
            [
                srt.Subtitle(
                    i + 1,
                    timedelta(milliseconds=c.start_ms),
                    timedelta(milliseconds=c.end_ms),
                    f"{c.speaker}: {c.text}" if c.speaker else c.text,
                )
                for i, c in enumerate(cues)
            ],
            reindex=False,
        )
    raise SettingsError(f"unknown captions format {suffix!r} (known: {', '.join(CAPTION_FORMATS)})")


def write_captions(
    path: Path, timeline: Timeline, voice: Sequence[np.ndarray] | None = None
) -> list[Caption]:
    """Plan the cues of a track and write them to ``path`` (format by suffix), atomically; returns the cues."""
    path = Path(path)
    check_captions_path(path)
    cues = plan_cues(timeline, voice)
    atomic_write_text(path, format_captions(cues, path.suffix))
    return cues


def _vtt_time(ms: int) -> str:
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    seconds, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{ms:03d}"
