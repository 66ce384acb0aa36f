"""Stage 2: plan what is spoken, in order, with the silence planned before each piece.

``plan_segments`` turns a parsed script into segments. Segments are
sentences; a sentence longer than ``max_chars`` (about 15 s of speech) is
split at the clause boundary nearest its middle (semicolon, colon, dash,
comma, and the CJK 、，；：), failing that between words, and for text
written without spaces (Chinese, Japanese) between characters, until every
piece fits. CJK characters count three times towards the length: each takes
about as long to say as a short Latin word's syllable or two. Abbreviations,
decimal numbers, initials and ellipses followed by lower case do not end a
sentence; the full-width ends 。！？ do, with or without a space after them.
Emoji and other pictographs are dropped from the spoken text (voices would
read out their names); a segment left with nothing speakable is dropped.

Gaps follow the structure of the text (see ``Gaps``), and written pauses
combine with them by one rule a reader can apply to the script:

* between the sentences of a paragraph, a written pause replaces the natural
  gap when it is longer (``Sit. [pause 4s] Rest.``: 4 s);
* where a written pause stands between paragraphs or scenes, before the first
  sentence or after the last, it is added to the natural gap (a ``[breathe]``
  at the end of a scene lengthens the scene gap by 6 s; one after the last
  sentence lengthens the tail; one before the first lengthens the lead-in).

A guided breathing exercise (``[breathe 4-7-8 x4]``) is a fixed block of time:
it starts one natural gap after the words before it (a sentence gap inside a
paragraph, a paragraph or scene gap where it stands alone), the words after it
follow one natural gap after it ends, and its phases are never scaled by
``pause_scale``. Its spoken cues are segments of their own, placed at the
phases' starts.

Everything here runs in time linear in the text (a script is user input).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from .script import Pause, Script
from .settings import SCHEMA, breath_cue_words

__all__ = [
    "Gaps",
    "Segment",
    "CUE_WORDS",
    "MAX_SEGMENT_S",
    "plan_segments",
    "max_chars_for",
    "split_sentences",
    "split_long",
    "speakable",
    "spoken_length",
    "segment_paragraph",
]

MAX_SEGMENT_S = 15.0
_CHARS_PER_S = 14.0  # measured speaking speed of the default voice at rate 1.0

CUE_WORDS = breath_cue_words(SCHEMA["breath_cues"].default)
"""What the voice says at the start of each breathing phase, by default (the ``breath_cues`` setting)."""


@dataclass(frozen=True)
class Gaps:
    """Silence between spoken pieces, in seconds, before ``pause_scale``."""

    clause_s: float = 0.5
    """Between the pieces of a long sentence split at a comma or dash."""
    sentence_s: float = 1.8
    """Between sentences: time to take the sentence in."""
    paragraph_s: float = 4.0
    """Between paragraphs: a breath or two."""
    scene_s: float = 8.0
    """Between scenes: time for the soundscape to change."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One piece of the track: spoken text, or silence the plan holds (a breathing exercise, a final pause).

    Planning fills ``text``, ``scene``, ``gap_before_s`` and, for breathing,
    ``breaths`` or ``cue_at_s``; layout fills ``start`` and ``length``.
    """

    text: str
    """What is spoken; empty for silence (``breaths`` set: an exercise; else a final written pause)."""
    scene: str
    start: int = 0
    """First sample on the final track."""
    length: int = 0
    """Number of samples of speech."""
    gap_before_s: float = 0.0
    """Planned silence before this segment, before ``pause_scale``."""
    breaths: tuple[tuple[str, float], ...] = ()
    """A breathing exercise's phases (``("in" | "hold" | "out", seconds)``), laid out exactly, never scaled."""
    cue_at_s: float | None = None
    """A spoken breathing cue: seconds from the start of the exercise planned before it."""
    breathe_s: tuple[float, ...] = ()
    """Each plain ``[breathe]`` written in ``gap_before_s`` (seconds, before ``pause_scale``):
    layout paces one in-out breath over each, at the end of the gap."""
    speaker: str = ""
    """The declared speaker who says it (``script.Paragraph.speaker``); empty: the narrator."""
    rate: float | None = None
    """The speaking rate of this segment (a wind-down bends it, see ``winddown``); None: the render's."""
    level_db: float = 0.0
    """The voice's level here, dB relative to its normal level (a wind-down lowers it)."""
    phrase_break_s: float = 0.0
    """Silence between this segment's phrases, spoken apart (``pace.Pace``); 0: spoken whole."""

    @property
    def end(self) -> int:
        return self.start + self.length

    @property
    def spoken(self) -> bool:
        """True if the voice says something here (silent plan entries are not synthesized)."""
        return bool(self.text)


def max_chars_for(rate: float) -> int:
    """Longest segment, in characters (``spoken_length``), that stays under MAX_SEGMENT_S at this rate."""
    return max(40, int(_CHARS_PER_S * rate * (MAX_SEGMENT_S - 3.0)))


def plan_segments(
    script: Script,
    *,
    rate: float,
    gaps: Gaps = Gaps(),
    cue_words: Mapping[str, str] = CUE_WORDS,
) -> list[Segment]:
    """The script as segments in speaking order, each with the silence planned before it (unscaled).

    Spoken segments have ``text``; silent entries (a breathing exercise, a
    written pause after the last sentence) have none and are not synthesized.
    ``cue_words``: said on each breathing phase (an exercise's own ``cues=`` wins).
    """
    planned: list[Segment] = []
    max_chars = max_chars_for(rate)
    pending_gap = 0.0  # structural gap before the next segment (a scene's)
    written = 0.0  # written pauses since the last segment
    breathed: list[float] = []  # the plain [breathe]s among them

    def gap(structural: float, boundary: bool) -> float:
        if not planned:
            return written  # before the first words: the lead-in grows
        return structural + written if boundary else max(structural, written)

    for scene_index, scene in enumerate(script.scenes):
        if scene_index > 0 and planned:
            pending_gap = max(pending_gap, gaps.scene_s)
        for item in scene.items:
            if isinstance(item, Pause):
                if not item.phases:
                    written += item.seconds
                    if item.kind == "breathe":
                        breathed.append(item.seconds)
                    continue
                if pending_gap:
                    before = gap(pending_gap, True)
                elif item.in_paragraph:
                    before = gap(gaps.sentence_s, False)
                else:
                    before = gap(gaps.paragraph_s, True)
                planned.append(
                    Segment(
                        text="",
                        scene=scene.name,
                        gap_before_s=before,
                        breaths=item.phases,
                        breathe_s=tuple(breathed),  # plain [breathe]s written just before it
                    )
                )
                if item.cues:
                    offset = 0.0
                    said = {**cue_words, **dict(item.cue_words)}
                    for phase, seconds in item.phases:
                        planned.append(
                            Segment(
                                text=said[phase],
                                scene=scene.name,
                                cue_at_s=offset,
                                speaker=item.speaker,
                            )
                        )
                        offset += seconds
                pending_gap, written, breathed = 0.0, 0.0, []
                continue
            for s_index, pieces in enumerate(segment_paragraph(item.text, max_chars=max_chars)):
                for p_index, piece in enumerate(pieces):
                    if p_index > 0:
                        before = gap(gaps.clause_s, False)
                    elif s_index > 0 or (item.continues and not pending_gap):
                        before = gap(gaps.sentence_s, False)
                    else:
                        before = gap(max(pending_gap, gaps.paragraph_s), True)
                    planned.append(
                        Segment(
                            text=piece,
                            scene=scene.name,
                            gap_before_s=before,
                            breathe_s=tuple(breathed),
                            speaker=item.speaker,
                        )
                    )
                    pending_gap, written, breathed = 0.0, 0.0, []
    if written > 0 and planned:
        # A pause after the last sentence: silence before the tail begins.
        planned.append(
            Segment(
                text="", scene=planned[-1].scene, gap_before_s=written, breathe_s=tuple(breathed)
            )
        )
    return planned


_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "sr",
    "jr",
    "st",
    "mt",
    "vs",
    "etc",
    "e.g",
    "i.e",
    "eg",
    "ie",
    "a.m",
    "p.m",
    "am",
    "pm",
    "no",
    "vol",
    "fig",
    "approx",
    "ca",
    "cf",
    "inc",
    "ltd",
    "co",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "u.s",
    "u.k",
    "ave",
}
_CLOSERS = "\"'”’»)]」』"
_WIDE_ENDS = "。！？｡"
# A sentence ends at . ! ? … (or runs of them), optional closing quotes, then space.
_END = re.compile(r"([.!?…]++|[" + _WIDE_ENDS + r"]++)([" + re.escape(_CLOSERS) + r"]*+)(\s*+)")
_CLAUSE = re.compile(r"(?<=[;:,])\s++|\s*+[—–]\s*+|\s+-\s++|(?<=[、，；：])\s*+")
_INITIALS = re.compile(r"[a-z]|(?:[a-z]\.)+[a-z]")
# Scripts written without spaces between words, and spoken slower per character.
_WIDE = re.compile(r"[\u1100-\u11ff\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003ffff]")


def split_sentences(text: str) -> list[str]:
    """Split a paragraph into sentences, keeping abbreviations and numbers whole.

    Runs of whitespace become one space. Linear in the text: each end
    mark is looked at once, and only the word just before it is examined.
    """
    text = " ".join(text.split())
    sentences: list[str] = []
    start = 0
    for match in _END.finditer(text):
        after = match.end()
        if after >= len(text):
            continue  # the paragraph's end: the tail below
        punct = match.group(1)
        if punct[0] not in _WIDE_ENDS:  # 。！？ end a sentence whatever follows
            if text[after].islower():
                continue  # "“Really?” she asked", "late… and", "e.g. this": one sentence
            if not match.group(3):
                continue  # "3.5", "U.S.A": no space, no sentence end
        if punct == ".":
            word_start = max(text.rfind(" ", start, match.start(1)) + 1, start)
            token = text[word_start : match.start(1)].lower().lstrip("(\"'“‘")
            if token in _ABBREVIATIONS or _INITIALS.fullmatch(token):
                continue
        sentences.append(text[start : match.end(2)].strip())
        start = after
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return [s for s in sentences if s]


def spoken_length(text: str) -> int:
    """Length in Latin-character equivalents: a CJK character counts three."""
    if text.isascii():
        return len(text)
    return len(text) + 2 * len(_WIDE.findall(text))


def split_long(sentence: str, max_chars: int) -> list[str]:
    """Split a sentence until each piece's ``spoken_length`` fits ``max_chars``.

    Cuts at the clause boundary nearest the middle, else between words,
    else (text without spaces, such as Chinese or Japanese) between characters.
    """
    # A piece has a clause mark or a space only if the whole sentence has:
    # look once, not again at every level of the recursion.
    patterns = [p for p in (_CLAUSE, _SPACES) if p.search(sentence)]
    return _split(sentence, max_chars, patterns)


def _split(sentence: str, max_chars: int, patterns: list[re.Pattern]) -> list[str]:
    if spoken_length(sentence) <= max_chars:
        return [sentence]
    middle = len(sentence) // 2
    cut = next(filter(None, (_nearest_cut(sentence, p, middle) for p in patterns)), None)
    start, end = cut or (middle, middle)
    left, right = sentence[:start].strip(), sentence[end:].strip()
    if not left or not right:
        start = end = middle  # a cut at the very edge would not shorten anything
        left, right = sentence[:start].strip(), sentence[end:].strip()
        if not left or not right:
            return [sentence]
    return _split(left, max_chars, patterns) + _split(right, max_chars, patterns)


_SPACES = re.compile(r"\s++")
_ALNUM = re.compile(r"[A-Za-z0-9]")


def _nearest_cut(text: str, pattern: re.Pattern, middle: int) -> tuple[int, int] | None:
    """(start, end) of the match of ``pattern`` nearest ``middle``, not at the text's edges.

    Looks outwards from the middle in doubling windows, so the cost grows
    with the distance to the cut, not with the length of the text.
    """
    usable = lambda m: 0 < m.start() < len(text) - 1  # noqa: E731
    after = next((m for m in pattern.finditer(text, middle) if usable(m)), None)
    reach = (after.start() - middle) if after else middle
    before = None
    width = 64
    low = middle
    while low > 0 and before is None:
        low = max(0, middle - width)
        for m in pattern.finditer(text, low, middle):
            if usable(m):
                before = m
        if middle - low >= reach:
            break  # nothing further back can be nearer than ``after``
        width *= 2
    best = min(
        (m for m in (before, after) if m is not None),
        key=lambda m: abs(m.start() - middle),
        default=None,
    )
    return (best.start(), best.end()) if best is not None else None


def speakable(text: str) -> str:
    """The text with emoji and pictographs removed and spaces tidied; '' if nothing is left to say."""
    if text.isascii():  # the common case: nothing to remove, one C-speed pass
        cleaned = " ".join(text.split())
        return cleaned if _ALNUM.search(cleaned) else ""
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat in ("So", "Cs", "Co", "Cn") or ch in "\ufe0f\u200d":
            continue
        kept.append(ch)
    cleaned = " ".join("".join(kept).split())
    if not any(unicodedata.category(ch)[0] in "LN" for ch in cleaned):
        return ""
    return cleaned


def segment_paragraph(text: str, *, max_chars: int) -> list[list[str]]:
    """Sentences of a paragraph, each as its list of clause pieces (all speakable)."""
    result = []
    for sentence in split_sentences(text):
        pieces = [p for p in (speakable(piece) for piece in split_long(sentence, max_chars)) if p]
        if pieces:
            result.append(pieces)
    return result
