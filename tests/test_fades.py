"""Track fades and sleep endings: equal-power, sample-exact, and a long tail that keeps the voice at its level."""

import json

import numpy as np
import pytest
import soundfile as sf

from meditation.cli import main
from meditation.loudness import integrated_loudness
from meditation.mix import fade_gain, loudness_range, track_fades_s
from meditation.timeline import SceneSpan, Segment, Timeline

SR = 16000


def _window_db(x, sample_rate, window_s=1.0):
    n = int(window_s * sample_rate)
    frames = len(x) // n
    x = np.asarray(x[: frames * n], dtype=np.float64).reshape(frames, -1)
    return 10 * np.log10(np.mean(x * x, axis=1) + 1e-20)


def test_fade_curves_are_equal_power_and_exact_to_the_sample():
    total, fade_in, fade_out = 10000, 1000, 3000
    g = fade_gain(0, total, total, fade_in, fade_out)
    assert g[0] == 0.0 and g[fade_in] == 1.0
    assert g[total - 1] == 0.0 and g[total - 1 - fade_out] == 1.0
    assert np.all(g[fade_in : total - 1 - fade_out] == 1.0)
    # Equal power: the fade-in and a fade-out of the same length are quarter sines whose powers sum to 1.
    rise = g[:fade_in]
    fall = fade_gain(0, fade_in + 1, fade_in + 1, 0, fade_in)[:fade_in]
    assert np.allclose(rise**2 + fall**2, 1.0, atol=1e-12)
    assert np.all(np.diff(g[:fade_in]) > 0) and np.all(np.diff(g[total - 1 - fade_out :]) < 0)
    # Random access: any chunking gives the same curve; flat chunks are reported as None.
    parts = [
        fade_gain(s, min(777, total - s), total, fade_in, fade_out) for s in range(0, total, 777)
    ]
    joined = np.concatenate(
        [
            np.ones(min(777, total - s)) if p is None else p
            for s, p in zip(range(0, total, 777), parts)
        ]
    )
    assert np.array_equal(joined, g)
    assert fade_gain(2000, 1000, total, fade_in, fade_out) is None


def test_default_fades_stay_clear_of_the_words():
    assert track_fades_s(4.0, 10.0) == (3.0, 8.0)
    assert track_fades_s(2.0, 0.5) == (1.5, 1.0)
    assert track_fades_s(4.0, 10.0, 0.0, 600.0) == (0.0, 600.0)


def test_loudness_scope_ranges():
    sr = 1000
    segs = (Segment("a", "", start=4000, length=2000), Segment("b", "", start=9000, length=1000))
    short = Timeline(sr, 20000, segs, (SceneSpan("", 0, 20000),))
    long = Timeline(sr, 600000, segs, (SceneSpan("", 0, 600000),))
    assert loudness_range(short, "auto") is None  # 10 s tail: the whole track, as always
    assert loudness_range(long, "auto") == (0, 40000)  # a long tail counts for 30 s only
    assert loudness_range(long, "track") is None
    assert loudness_range(long, "speech") == (4000, 10000)
    with pytest.raises(ValueError):
        loudness_range(long, "loud")


def test_ambient_fade_out_falls_every_second_to_silence_at_the_last_sample(tmp_path):
    # A steady bed (the focus preset's pulsing tone) so every change of level is the fade's.
    out = tmp_path / "focus.wav"
    args = [
        "ambient",
        "--soundscape",
        "focus",
        "--layers",
        "beats",
        "--duration",
        "40",
        "--fade-in",
        "4",
        "--fade-out",
        "20",
    ]
    assert main([*args, "-o", str(out), "--sample-rate", str(SR), "--progress", "off"]) == 0
    x, sr = sf.read(out, dtype="float64", always_2d=True)
    assert len(x) == 40 * SR  # exact length
    mono = x.mean(axis=1)
    assert (
        abs(mono[-1]) < 1e-3
        and 20 * np.log10(np.sqrt(np.mean(mono[-sr // 100 :] ** 2)) + 1e-20) < -60
    )
    assert mono[0] == 0.0
    levels = _window_db(mono, sr)
    assert np.all(np.diff(levels[20:]) < 0), np.diff(
        levels[20:]
    )  # the last 20 s: monotone, second by second
    assert np.all(np.diff(levels[:4]) > 0)  # the fade-in rises
    assert np.ptp(levels[5:19]) < 0.5  # in between, the bed is untouched
    # The fade follows the equal-power curve: 1 s windows vs sin(pi/2 * time left / 20 s).
    t_left = 20.0 - (np.arange(20) + 0.5)
    expected = 20 * np.log10(np.sin(0.5 * np.pi * t_left / 20.0))
    assert np.allclose(levels[20:39] - levels[10], expected[:19], atol=0.4)


SCRIPT = """---
title: Sleep test
---
# Rest

Let the day go. Sleep now.
"""


@pytest.mark.slow
def test_sleep_story_long_tail_keeps_the_spoken_part_at_the_target(tmp_path):
    script = tmp_path / "sleep.md"
    script.write_text(SCRIPT, encoding="utf-8")
    out = tmp_path / "sleep.flac"
    timings = tmp_path / "sleep.json"
    args = [
        "render",
        str(script),
        "-o",
        str(out),
        "--timings",
        str(timings),
        "--voice",
        "pyttsx3",
        "--no-cache",
        "--progress",
        "off",
    ]
    assert (
        main(
            [
                *args,
                "--soundscape",
                "sleep",
                "--tail",
                "30m",
                "--fade-out",
                "10m",
                "--sample-rate",
                str(SR),
                "--lead-in",
                "3",
            ]
        )
        == 0
    )
    x, sr = sf.read(out, dtype="float32", always_2d=True)
    t = json.loads(timings.read_text())
    last = t["segments"][-1]["end"]
    assert len(x) / sr == pytest.approx(last + 30 * 60, abs=0.01)
    # The default scope measures the track up to 30 s past the last word: that part meets the target.
    assert integrated_loudness(x[: int((last + 30) * sr)], sr) == pytest.approx(-16.0, abs=0.5)
    # The tail goes on at the bed's level, then the ten-minute fade takes it to silence at the last sample.
    levels = _window_db(x.mean(axis=1), sr, 10.0)
    start_tail = int(last // 10) + 2
    assert (
        levels[start_tail : start_tail + 100].max() - levels[start_tail : start_tail + 100].min()
        < 10
    )
    assert levels[-2] < levels[-61] - 20 and levels[-61] < levels[start_tail] + 1
    assert abs(float(x[-1].max())) < 1e-4
