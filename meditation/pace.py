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
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .errors import SettingsError

__all__ = [
    "SECONDS_AT_RATE_1",
    "count_words",
    "segment_features",
    "rate_for_wpm",
    "refine_rate",
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


def rate_for_wpm(
    wpm: float, voice: str, texts: Sequence[str], *, low: float = 0.5, high: float = 2.0
) -> float:
    """The speaking rate at which ``voice`` (``engine:name``) says ``texts`` at ``wpm``."""
    engine = voice.partition(":")[0]
    model = SECONDS_AT_RATE_1.get(voice) or SECONDS_AT_RATE_1.get(engine)
    if model is None:
        raise SettingsError(f"--wpm: the pace of {voice} is not measured; give --rate instead")
    at_rate_1 = sum(
        sum(c * f for c, f in zip(model, segment_features(t), strict=True)) for t in texts
    )
    words = sum(count_words(t) for t in texts)
    if words == 0 or at_rate_1 <= 0:
        return 1.0
    rate = at_rate_1 / (60.0 * words / wpm)
    if not low <= rate <= high:
        raise SettingsError(
            f"--wpm {wpm:g} needs rate {rate:.2f} for {voice} with this script, "
            f"outside {low:g} to {high:g}"
        )
    return round(rate, 4)


def refine_rate(
    rate: float,
    voice: str,
    texts: Sequence[str],
    seconds_of,
    *,
    wpm: float,
    low: float = 0.5,
    high: float = 2.0,
) -> float:
    """``rate`` corrected by speaking the script's first ``PROBE_WORDS`` words at it.

    ``seconds_of(texts, rate)`` speaks texts and returns the seconds of speech.
    The model's error on this voice and text (syllable counts are estimates,
    and a voice's duration follows 1/rate only to a few per cent) shows on the
    probe; the rate is scaled by the measured over the predicted time, and
    the probe spoken again until it lands within 1 % (at most three times).
    """
    engine = voice.partition(":")[0]
    model = SECONDS_AT_RATE_1.get(voice) or SECONDS_AT_RATE_1.get(engine)
    probe, words = [], 0
    for text in texts:
        if words >= PROBE_WORDS:
            break
        probe.append(text)
        words += count_words(text)
    if model is None or not probe:
        return rate
    at_rate_1 = sum(
        sum(c * f for c, f in zip(model, segment_features(t), strict=True)) for t in probe
    )
    target = at_rate_1 / rate  # the probe's length at the pace asked, as the model sees it
    for _ in range(_PROBES):
        measured = seconds_of(probe, rate)
        if target <= 0 or measured <= 0 or abs(measured / target - 1) < 0.01:
            break
        wanted = rate * measured / target
        if not low <= wanted <= high:
            raise SettingsError(
                f"--wpm {wpm:g} needs rate {wanted:.2f} for {voice} with this script, "
                f"outside {low:g} to {high:g}"
            )
        rate = wanted
    return round(rate, 4)


_PROBES = 3  # hibari's duration moves in steps: a second look lands where the first aimed
