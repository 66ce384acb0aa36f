"""End-to-end renders of short scripts with the real voices and encoder."""

import json

import numpy as np
import pytest
import soundfile as sf
from measure import rms_db

from meditation.cli import main

SCRIPT = """---
title: Short test
---
# Arrive

Breathe in slowly. [pause 2s] And let it go.

# Rest

The river flows on, and on.
"""


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "short.md"
    path.write_text(SCRIPT, encoding="utf-8")
    return path


def _render(script, out, *extra):
    timings = out.with_suffix(".json")
    code = main(
        [
            "render",
            str(script),
            "-o",
            str(out),
            "--timings",
            str(timings),
            "--progress",
            "off",
            "--no-cache",
            *extra,
        ]
    )
    assert code == 0
    audio, sr = sf.read(out, dtype="float32", always_2d=True)
    return audio, sr, json.loads(timings.read_text())


def _speech_and_gaps(audio, sr, timings):
    mono = audio.mean(axis=1)
    segs = timings["segments"]
    inside = [rms_db(mono[int(s["start"] * sr) : int(s["end"] * sr)]) for s in segs]
    gaps = []
    edges = [0.0] + [x for s in segs for x in (s["start"], s["end"])] + [timings["duration"]]
    for a, b in zip(edges[0::2], edges[1::2]):
        lo, hi = int((a + 0.15) * sr), int((b - 0.15) * sr)
        if hi - lo > sr // 10:
            gaps.append(float(np.max(np.abs(mono[lo:hi]))))
    return inside, gaps


@pytest.mark.slow
@pytest.mark.parametrize("voice", ["piper:joe", "pyttsx3"])
def test_each_engine_speaks_where_the_timeline_says_and_is_silent_between(voice, script, tmp_path):
    # Dry voice (no voice chain): its reverb would rightly ring into the pauses.
    audio, sr, timings = _render(
        script, tmp_path / "out.wav", "--voice", voice, "--soundscape", "none", "--voice-fx", "none"
    )
    assert sr == 44100 and audio.shape[1] == 2
    assert abs(len(audio) / sr - timings["duration"]) < 0.01
    assert [s["text"] for s in timings["segments"]] == [
        "Breathe in slowly.",
        "And let it go.",
        "The river flows on, and on.",
    ]
    assert [s["scene"] for s in timings["segments"]] == ["Arrive", "Arrive", "Rest"]
    starts = [s["start"] for s in timings["segments"]]
    ends = [s["end"] for s in timings["segments"]]
    assert starts == sorted(starts) and all(e <= s for e, s in zip(ends, starts[1:]))
    assert starts[0] == pytest.approx(4.0, abs=0.01)  # default lead-in
    assert starts[1] - ends[0] == pytest.approx(2.0, abs=0.01)  # the written pause
    inside, gaps = _speech_and_gaps(audio, sr, timings)
    assert all(level > -35 for level in inside), inside
    assert all(peak < 1e-4 for peak in gaps), gaps  # narration alone: true silence in the pauses
    scenes = timings["scenes"]
    assert [s["name"] for s in scenes] == ["Arrive", "Rest"]
    assert scenes[0]["start"] == 0 and scenes[-1]["end"] == timings["duration"]
    assert scenes[0]["end"] == scenes[1]["start"]
    assert ends[1] < scenes[1]["start"] < starts[2]


def _speech_s(timings):
    return sum(s["end"] - s["start"] for s in timings["segments"])


@pytest.mark.slow
def test_slower_rate_lengthens_speech_by_the_engine(script, tmp_path):
    _, _, fast = _render(script, tmp_path / "a.wav", "--rate", "1.0", "--soundscape", "none")
    _, _, slow = _render(script, tmp_path / "b.wav", "--rate", "0.8", "--soundscape", "none")
    assert _speech_s(slow) >= 1.15 * _speech_s(fast)


@pytest.mark.slow
def test_pause_scale_lengthens_total_silence(script, tmp_path):
    # Lead-in and tail have options of their own; keep them short so the pauses dominate, as in a real script.
    common = ("--soundscape", "none", "--voice", "pyttsx3", "--lead-in", "1", "--tail", "1")
    _, _, one = _render(script, tmp_path / "a.wav", "--pause-scale", "1", *common)
    _, _, two = _render(script, tmp_path / "b.wav", "--pause-scale", "2", *common)
    silence = lambda t: t["duration"] - _speech_s(t)  # noqa: E731
    assert silence(two) >= 1.6 * silence(one)


@pytest.mark.slow
def test_same_inputs_give_identical_wav_bytes(script, tmp_path):
    _render(script, tmp_path / "a.wav", "--voice", "pyttsx3", "--seed", "5")
    _render(script, tmp_path / "b.wav", "--voice", "pyttsx3", "--seed", "5")
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


@pytest.mark.slow
def test_piper_speech_is_reproducible(script, tmp_path):
    _render(script, tmp_path / "a.wav", "--soundscape", "none")
    _render(script, tmp_path / "b.wav", "--soundscape", "none")
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


def test_narration_meets_loudness_target(script, tmp_path):
    import pyloudnorm

    audio, sr, _ = _render(script, tmp_path / "a.flac", "--soundscape", "none", "--loudness", "-18")
    assert pyloudnorm.Meter(sr).integrated_loudness(audio.astype(np.float64)) == pytest.approx(
        -18, abs=0.7
    )


@pytest.mark.slow
def test_stems_are_float_never_clip_and_sum_to_the_mix_the_limiter_saw(script, tmp_path):
    from meditation.limiter import TruePeakLimiter
    from meditation.master import _INTERSAMPLE_MARGIN_DB

    # A loud target: the voice goes past full scale before the master limiter.
    stems = tmp_path / "stems"
    mix, sr, _ = _render(
        script,
        tmp_path / "out.wav",
        "--voice",
        "pyttsx3",
        "--soundscape",
        "stream",
        "--loudness",
        "-11",
        "--stems",
        str(stems),
    )
    names = sorted(p.name for p in stems.iterdir())
    assert names == ["river.wav", "voice.wav"]  # the stream preset has one layer
    parts = {}
    for path in stems.iterdir():
        assert sf.info(path).subtype == "FLOAT"
        parts[path.stem], stem_sr = sf.read(path, dtype="float32", always_2d=True)
        assert stem_sr == sr and len(parts[path.stem]) == len(mix)
        assert not np.any(np.abs(parts[path.stem]) == 1.0)  # nothing pinned at full scale
    assert np.abs(parts["voice"]).max() > 1.0  # 16- or 24-bit PCM would have clipped this
    total = sum(parts.values())
    limiter = TruePeakLimiter(
        sr, ceiling_db=-1.0 - _INTERSAMPLE_MARGIN_DB
    )  # the master's ceiling for WAV
    relimited = np.concatenate(
        [limiter.process(total[i : i + 32768]) for i in range(0, len(total), 32768)]
        + [limiter.flush()]
    )
    # The stems' sum through the same limiter is the output, up to float and 24-bit rounding.
    assert np.max(np.abs(relimited - mix)) < 1e-5
