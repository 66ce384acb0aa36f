"""Pace as words per minute: ``--wpm`` turned into the voice's speaking rate for a script.

Pace is measured on the speech itself: words divided by the time inside
spoken segments (pauses excluded). Words per minute at a given rate vary
from text to text (the dream runs at 200 at rate 1.0, a plainer script at
230, same voice), so the rate is chosen per script: each voice's time to say
a segment at rate 1.0 is modelled from its syllables and clause marks
(measured over the dream, ``benchmarks/calibrate_wpm.py``; within 2 % on a
held-out script), and since spoken duration follows 1/rate for every voice
(tests/test_hibari.py), the rate is that predicted time over the time the
asked pace gives the script's words.

Without a rate or a pace, a neural voice speaks at ``DEFAULT_WPM`` (calm).
``base_pace`` is the one place a script's base pace is decided (a wind-down
multiplies its rate per segment); below a voice's ``NATURAL_FLOOR`` the
voice keeps the floor rate and the time goes into phrase breaks at clause
marks inside each sentence (``Pace.phrase_break_s``, spoken by
``speech.synthesize``), which count in the pace as a listener hears it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import SettingsError

__all__ = [
    "DEFAULT_WPM",
    "FALLBACK_RATE",
    "MAX_PHRASE_BREAK_S",
    "NATURAL_FLOOR",
    "Pace",
    "SECONDS_AT_RATE_1",
    "base_pace",
    "slowed",
    "count_words",
    "pace_label",
    "phrases",
    "refine_pace",
    "segment_features",
    "words_per_minute",
]

SECONDS_AT_RATE_1 = {
    "piper:joe": (0.1923, 0.1697, 0.0881),
    "hibari:heart": (0.2257, 0.0676, -0.3276),
    "pyttsx3": (0.1973, 0.1234, 0.0341),
}
"""Seconds per syllable, per clause mark and per segment at rate 1.0, by voice
(``pyttsx3``: every eSpeak voice, measured with ``gmw/en-us``)."""

PROBE_WORDS = 60
"""Words of the script spoken to check the model's rate (about 25 s of speech)."""

_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
_VOWELS = re.compile(r"[aeiouy]+")
_CLAUSE = re.compile(r"[,;:—–]")


def count_words(text: str) -> int:
    """Words as a listener counts them: runs of letters or digits (``don't`` is one)."""
    return len(_WORD.findall(text))


def _syllables(word: str) -> int:
    """Vowel groups, less a silent final e: an estimate good to a few per cent over a text."""
    w = word.lower()
    n = len(_VOWELS.findall(w))
    if n > 1 and w.endswith("e") and not w.endswith(("le", "ee", "ye")):
        n -= 1
    return max(1, n)


def segment_features(text: str) -> tuple[int, int, int]:
    """(syllables, clause marks, 1) of a segment: what its spoken length is modelled on."""
    return (sum(_syllables(w) for w in _WORD.findall(text)), len(_CLAUSE.findall(text)), 1)


def words_per_minute(texts: Sequence[str], seconds: float) -> float:
    """The pace of ``texts`` spoken in ``seconds`` of speech."""
    return 60.0 * sum(count_words(t) for t in texts) / seconds


DEFAULT_WPM = 135.0
"""The pace of a neural voice when a script gives neither rate nor wpm: calm
guided narration sits at 120-150 words per minute of speech."""

FALLBACK_RATE = 0.9
"""The rate of a voice without a pace model or not neural (eSpeak), when none is given."""

NATURAL_FLOOR = {"piper:joe": 0.62, "hibari:heart": 0.65}
"""The slowest rate at which each voice still sounds like someone speaking slowly.

Measured by ``benchmarks/pace_floor.py`` on six held-out sentences at rates
0.5-1.0: the speaking rate in syllables per second (pauses inside a sentence
included) and DNSMOS P.808. Unhurried human reading runs at about 3-4
syllables a second; below 3 each vowel is held audibly long (the "drugged"
stretch), and DNSMOS, flat above, starts to fall there too:

===========  ==============================  ==============================
rate         joe: syll/s, P.808              heart: syll/s, P.808
===========  ==============================  ==============================
0.75         3.66, 4.38                      3.50, 4.30
0.70         3.40, 4.32                      3.30, 4.33
0.65         3.14, 4.32                      2.98, 4.39
0.60         2.92, 4.27                      2.83, 4.32
0.55         2.66, 4.15                      2.56, 4.22
0.50         2.42, 4.04                      2.37, 4.19
===========  ==============================  ==============================

The line is where each voice crosses 3.0 syllables a second: joe at 0.62,
heart at 0.65 (P.808 peaks there and loses 0.2 by 0.5). Below it the voice
stays at the floor and the pace is slowed with phrase breaks
(``Pace.phrase_break_s``) rather than longer phonemes. At the same pace,
phrased speech at the floor scores as well or better than whole sentences
stretched (DNSMOS P.808 on the same six sentences, each way filling the
same time): joe at 113 wpm 4.17 against 4.04 at rate 0.5, at 124 wpm 4.20 against
4.15; heart at 111 wpm 4.22 against 4.19, at 120 wpm 4.22 against 4.22."""

MAX_PHRASE_BREAK_S = 2.0
"""Longest silence put at a clause boundary inside a sentence (a sentence gap is 1.8 s); past it
the rate goes under the floor."""

_PHRASE_END = re.compile(r"(?<=[,;:])\s+|(?<=[—–])\s*")


@dataclass(frozen=True)
class Pace:
    """How a voice speaks a script: its rate, and the silence at each clause boundary."""

    rate: float
    phrase_break_s: float = 0.0
    """Seconds of silence between the phrases of a segment (each spoken apart);
    0: segments are spoken whole, as the voice phrases them."""


def pace_label(rate: float | None, wpm: float | None, *, neural: bool) -> str:
    """The pace as a file name can carry it before any speech: ``0.9`` (a rate) or ``135wpm``."""
    if wpm is None and rate is not None:
        return f"{rate:g}"
    if wpm is None and not neural:
        return f"{FALLBACK_RATE:g}"
    return f"{wpm if wpm is not None else DEFAULT_WPM:g}wpm"


def phrases(text: str) -> list[str]:
    """``text`` cut after each comma, semicolon, colon or dash: where a phrase break goes."""
    out: list[str] = []
    for piece in _PHRASE_END.split(text.strip()):
        if not piece:
            continue
        if out and not _WORD.search(piece):
            out[-1] += piece  # a mark alone ("—") stays with the phrase before it
        else:
            out.append(piece)
    return out or [text]


def _model(voice: str) -> tuple[float, float, float] | None:
    engine = voice.partition(":")[0]
    return SECONDS_AT_RATE_1.get(voice) or SECONDS_AT_RATE_1.get(engine)


def _seconds_at_1(model: tuple[float, float, float], texts: Sequence[str]) -> float:
    return sum(sum(c * f for c, f in zip(model, segment_features(t), strict=True)) for t in texts)


def _breaks(texts: Sequence[str]) -> int:
    return sum(len(phrases(t)) - 1 for t in texts)


def _apart_at_1(model: tuple[float, float, float], texts: Sequence[str]) -> float:
    """Seconds at rate 1 with the phrases spoken apart: the voice's own clause pauses go."""
    return max(1e-3, _seconds_at_1(model, texts) - model[1] * _breaks(texts))


def _checked(rate: float, wpm: float, voice: str, low: float, high: float) -> float:
    if not low <= rate <= high:
        raise SettingsError(
            f"--wpm {wpm:g} needs rate {rate:.2f} for {voice} with this script, "
            f"outside {low:g} to {high:g}"
        )
    return round(rate, 4)


def _below_floor(
    seconds: float, apart_at_1: float, breaks: int, floor: float, *, strict: bool
) -> Pace:
    """The pace that fills ``seconds`` at the floor rate with phrase breaks (capped).

    Past the cap, ``strict`` (a pace the user asked for) goes under the floor;
    the default pace stays at the floor, a little faster than asked.
    """
    brk = (seconds - apart_at_1 / floor) / breaks if breaks else float("inf")
    if brk <= MAX_PHRASE_BREAK_S:
        return Pace(floor, round(max(0.0, brk), 4))
    most = MAX_PHRASE_BREAK_S if breaks else 0.0
    if not strict:
        return Pace(floor, most)
    return Pace(apart_at_1 / (seconds - breaks * most), most)


def base_pace(
    voice: str,
    texts: Sequence[str],
    *,
    rate: float | None = None,
    wpm: float | None = None,
    neural: bool = True,
    low: float = 0.5,
    high: float = 2.0,
) -> Pace:
    """The base pace of a script, before any per-segment change (a wind-down multiplies ``rate``).

    An explicit ``wpm`` sets it; else an explicit ``rate``; else a neural voice
    with a pace model speaks at ``DEFAULT_WPM`` and any other at
    ``FALLBACK_RATE``. A pace whose rate would fall under the voice's
    ``NATURAL_FLOOR`` keeps the floor rate and fills the time with phrase breaks
    at clause boundaries, at most ``MAX_PHRASE_BREAK_S`` each (a script without
    any goes under the floor instead). This is the model's first guess:
    ``refine_pace`` corrects it by speaking the script's start.
    """
    strict = wpm is not None
    if wpm is None:
        if rate is not None:
            return Pace(rate)
        if not neural or _model(voice) is None:
            return Pace(FALLBACK_RATE)
        wpm = DEFAULT_WPM
    model = _model(voice)
    if model is None:
        raise SettingsError(f"--wpm: the pace of {voice} is not measured; give --rate instead")
    words = sum(count_words(t) for t in texts)
    at_rate_1 = _seconds_at_1(model, texts)
    if words == 0 or at_rate_1 <= 0:
        return Pace(1.0)
    seconds = 60.0 * words / wpm
    whole = at_rate_1 / seconds
    floor, breaks = NATURAL_FLOOR.get(voice), _breaks(texts)
    if floor is None or whole >= floor or (breaks == 0 and strict):
        return Pace(_checked(whole, wpm, voice, low, high))
    pace = _below_floor(seconds, _apart_at_1(model, texts), breaks, floor, strict=strict)
    return Pace(_checked(pace.rate, wpm, voice, low, high), pace.phrase_break_s)


def slowed(
    voice: str, text: str, base: Pace, factor: float, *, low: float = 0.5, high: float = 2.0
) -> Pace:
    """One segment's pace: ``base`` with its time stretched by 1/``factor`` (a wind-down's).

    The rate follows the factor down to the voice's ``NATURAL_FLOOR``; below it
    the voice keeps the floor and the segment's phrase breaks grow to fill the
    time, as ``base_pace`` does for a whole script (at most
    ``MAX_PHRASE_BREAK_S`` each; a segment with no clause to pause at, or past
    the cap, goes under the floor), but never under ``low``, the engines' slowest:
    there the longer pauses between segments carry the wind-down.
    """
    rate = base.rate * factor
    floor, model = NATURAL_FLOOR.get(voice), _model(voice)
    breaks = _breaks([text])
    if factor >= 1 or floor is None or model is None or rate >= floor or breaks == 0:
        pace = Pace(rate, base.phrase_break_s)
    else:
        apart = _apart_at_1(model, [text])
        # The time the base pace gives the segment, stretched.
        speech = (apart if base.phrase_break_s > 0 else _seconds_at_1(model, [text])) / base.rate
        wanted = (speech + breaks * base.phrase_break_s) / factor
        pace = _below_floor(wanted, apart, breaks, floor, strict=True)
    return Pace(round(min(high, max(low, pace.rate)), 4), round(pace.phrase_break_s, 4))


def _probe(texts: Sequence[str]) -> list[str]:
    probe, words = [], 0
    for text in texts:
        if words >= PROBE_WORDS:
            break
        probe.append(text)
        words += count_words(text)
    return probe


def refine_pace(
    pace: Pace,
    voice: str,
    texts: Sequence[str],
    seconds_of: Callable[[Sequence[str], Pace], float],
    *,
    wpm: float,
    strict: bool = True,
    low: float = 0.5,
    high: float = 2.0,
) -> Pace:
    """``pace`` corrected by speaking the script's first ``PROBE_WORDS`` words at it.

    ``seconds_of(texts, pace)`` speaks texts and returns the seconds of speech
    (phrase breaks included). The model's error on this voice and text
    (syllable counts are estimates, and a voice's duration follows 1/rate only
    to a few per cent) shows on the probe: whole segments, the rate is scaled
    by the measured over the predicted time; with phrase breaks, the speech's
    share is scaled so and the breaks fill the rest of the script's time. The
    probe is spoken again until it lands within 1 % (at most three times).
    """
    model, probe = _model(voice), _probe(texts)
    if model is None or not probe:
        return pace
    seconds = 60.0 * sum(count_words(t) for t in texts) / wpm
    breaks, probe_breaks = _breaks(texts), _breaks(probe)
    floor = NATURAL_FLOOR.get(voice)
    if pace.phrase_break_s == 0:
        target = _seconds_at_1(model, probe) / pace.rate  # the probe at the pace asked
        rate = pace.rate
        for _ in range(_PROBES):
            measured = seconds_of(probe, Pace(rate))
            if target <= 0 or measured <= 0 or abs(measured / target - 1) < 0.01:
                return Pace(round(rate, 4))
            wanted = rate * measured / target
            if floor is not None and wanted < floor and breaks:
                break  # under the floor after all: the floor, and phrase breaks for the rest
            rate = _checked(wanted, wpm, voice, low, high)
        else:
            return Pace(round(rate, 4))
        # The model's error on the probe (wanted / asked) carried to the whole script.
        apart_at_1 = _apart_at_1(model, texts) * wanted / pace.rate
        pace = _below_floor(seconds, apart_at_1, breaks, floor, strict=strict)
    floor = floor if floor is not None else pace.rate
    for _ in range(_PROBES):
        predicted = _apart_at_1(model, probe) / pace.rate
        measured = seconds_of(probe, pace) - probe_breaks * pace.phrase_break_s
        if predicted <= 0 or measured <= 0 or abs(measured / predicted - 1) < 0.01:
            break
        # The speech of the whole script as the probe shows it, at rate 1.
        apart_at_1 = _apart_at_1(model, texts) * measured / predicted
        pace = _below_floor(seconds, apart_at_1, breaks, floor, strict=strict)
        pace = Pace(_checked(pace.rate, wpm, voice, low, high), pace.phrase_break_s)
    return pace


_PROBES = 3  # hibari's duration moves in steps: a second look lands where the first aimed
