"""--wpm: a pace in words per minute of speech, as measured on the speech itself."""

import json

import pytest

from meditation.cli import main
from meditation.pace import count_words, words_per_minute

# Held out: not the dream the pace model was measured on.
HELD_OUT = """---
lead_in: 0.5
tail: 1
soundscape: none
---

# Arriving

Allow your breathing to find its natural rhythm, gentle and unhurried. Gradually become aware of the places where tension gathers, the shoulders, the forehead, the jaw, and invite each of them to soften.

# Opening

Imagine a warm light settling at the centre of your chest. With every exhalation it expands a little further, illuminating your arms, your hands, and everything around you with quiet kindness.
"""


def _pace(tmp_path, voice, wpm):
    script = tmp_path / "held.md"
    script.write_text(HELD_OUT, encoding="utf-8")
    timings = tmp_path / f"{wpm}.json"
    args = ["render", str(script), "--voice", voice, "--wpm", str(wpm), "--no-cache"]
    code = main([*args, "-o", str(tmp_path / f"{wpm}.wav"), "--timings", str(timings)])
    assert code == 0
    segments = [
        s
        for s in json.loads(timings.read_text(encoding="utf-8"))["segments"]
        if s["end"] > s["start"]
    ]
    return words_per_minute(
        [s["text"] for s in segments], sum(s["end"] - s["start"] for s in segments)
    )


@pytest.mark.parametrize("voice", ["piper:joe", "hibari:heart", "pyttsx3"])
def test_wpm_lands_within_5_percent_of_the_pace_asked(tmp_path, voice):
    for wpm in (110, 150):
        pace = _pace(tmp_path, voice, wpm)
        assert abs(pace / wpm - 1) < 0.05, (voice, wpm, pace)


def test_words_are_counted_as_a_listener_counts_them():
    assert count_words("Don't rush — breathe in, two, 3 times; well-being.") == 8
