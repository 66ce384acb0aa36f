"""The true-peak estimator's fast paths (matrix products over gathered windows or whole
stretches, screening by the half-way point) against a plain 8x polyphase reading of the
whole signal with the same interpolators, and the limiter's mono shortcut."""

import os
import subprocess
import sys

import numpy as np
import pytest

from meditation.limiter import TruePeakLimiter
from meditation.loudness import (
    _FILTERS,
    HALF_TAPS,
    LoudnessMeter,
    TruePeakMeter,
    peaks_at,
    true_peak_db,
)


def _oversampled(x):
    """Every sample and the 7 points after it, ``(n, 8, channels)``: each phase a plain correlation."""
    x = np.asarray(x, dtype=np.float64)
    padded = np.pad(x, ((HALF_TAPS, HALF_TAPS), (0, 0)))
    points = [x]
    for h in _FILTERS:
        # The point after sample i reads samples i-15 .. i+16.
        points.append(
            np.stack(
                [
                    np.correlate(padded[:, c], h, mode="valid")[1 : len(x) + 1]
                    for c in range(x.shape[1])
                ],
                axis=1,
            )
        )
    return np.stack(points, axis=1)


def _reference_db(x):
    return float(20 * np.log10(np.abs(_oversampled(x)).max(initial=0.0) + 1e-20))


def _speech_like(rng, seconds, sr=44100):
    """Voiced bursts (a 120 Hz pulse train through two formant resonances) under a syllable
    envelope, then soft-clipped hard: many samples sit within a few dB of the peak, as in our
    limited voice."""
    from scipy import signal

    n = int(seconds * sr)
    pulses = np.zeros(n)
    pulses[:: sr // 120] = 1.0
    voiced = np.zeros(n)
    for f_hz, bw_hz in ((700, 120), (1200, 150)):
        b, a = signal.iirpeak(f_hz, f_hz / bw_hz, fs=sr)
        voiced += signal.lfilter(b, a, pulses)
    voiced += 0.05 * rng.standard_normal(n)  # breath and fricatives up to Nyquist
    syllables = np.clip(np.sin(2 * np.pi * 4 * np.arange(n) / sr), 0, None) ** 0.5
    speech = voiced * syllables
    speech = np.tanh(6 * speech / np.abs(speech).max()) * 0.9
    return np.stack([speech, 0.8 * np.roll(speech, 7)], axis=1)


@pytest.mark.parametrize("density", [0.002, 0.05, 0.3, 1.0])
@pytest.mark.parametrize("channels", [1, 2])
def test_peaks_at_every_position_equals_the_plain_8x_reading(rng, density, channels):
    # Sparse positions go through gathered windows, dense ones through whole stretches.
    x = _speech_like(rng, 0.5)[:, :channels]
    x[5000:5400] = rng.standard_normal((400, channels))  # white noise: loud points between samples
    positions = np.flatnonzero(rng.random(len(x)) < density)
    padded = np.pad(x, ((HALF_TAPS, HALF_TAPS), (0, 0)))
    fast = peaks_at(padded, positions + HALF_TAPS)  # no floor: all 7 points everywhere
    reference = np.abs(_oversampled(x)).max(axis=(1, 2))[positions]
    np.testing.assert_allclose(fast, reference, rtol=1e-12, atol=0)


def test_peaks_at_judges_the_other_six_points_only_near_the_floor(rng):
    x = rng.standard_normal((4000, 2))
    positions = np.arange(100, 3900)
    padded = np.pad(x, ((HALF_TAPS, HALF_TAPS), (0, 0)))
    floor = 3.0
    fast = peaks_at(padded, positions + HALF_TAPS, floor)
    points = np.abs(_oversampled(x)).max(axis=2)[positions]  # (n, 8): sample, then phases 1..7
    screened = np.maximum(points[:, 0], points[:, 4]) < floor * np.cos(np.pi / 4)
    assert 0 < screened.sum() < len(positions)
    np.testing.assert_allclose(fast[~screened], points[~screened].max(axis=1), rtol=1e-12)
    np.testing.assert_allclose(
        fast[screened], np.maximum(points[screened, 0], points[screened, 4]), rtol=1e-12
    )


def _signals(rng):
    sr = 44100
    t = np.arange(sr) / sr
    clicks = np.zeros((sr, 2))
    clicks[1000::4410, 0] = 0.9  # single-sample clicks: the overshoot is between samples
    clicks[1001::4410, 1] = -0.9
    nyquist = 0.5 * np.sin(2 * np.pi * (0.49 * sr) * t + 0.3)[:, None] * np.ones((1, 2))
    return {
        "white noise": 0.3 * rng.standard_normal((sr, 2)),
        "speech-like, peak-limited": _speech_like(rng, 3.0),
        "click train": clicks,
        "tone near Nyquist": nyquist,
        "short (20 samples)": 0.5 * rng.standard_normal((20, 2)),
        "one sample": np.array([[0.7, -0.2]]),
    }


@pytest.mark.parametrize(
    "name",
    [
        "white noise",
        "speech-like, peak-limited",
        "click train",
        "tone near Nyquist",
        "short (20 samples)",
        "one sample",
    ],
)
def test_true_peak_equals_the_plain_8x_reading(rng, name):
    x = _signals(rng)[name]
    reference = _reference_db(x)
    assert true_peak_db(x) == pytest.approx(reference, abs=1e-9)
    assert true_peak_db(x.astype(np.float32)) == pytest.approx(
        _reference_db(x.astype(np.float32)), abs=1e-9
    )
    # Streamed in odd blocks, as the measure pass and the decoded file's check feed it.
    meter = TruePeakMeter()
    for i in range(0, len(x), 1237):
        meter.feed(x[i : i + 1237].astype(np.float32))
    assert meter.finish_db() == pytest.approx(_reference_db(x.astype(np.float32)), abs=1e-9)


def test_silence_reads_the_floor():
    assert true_peak_db(np.zeros((44100, 2))) == pytest.approx(-400.0)
    assert true_peak_db(np.zeros((0, 2))) == float("-inf")


def test_limiter_reads_a_doubled_mono_voice_as_it_reads_two_channels(rng):
    # [x, x] takes the one-channel shortcut; [x, x/2] is judged on both channels, and the quieter
    # one's points are exactly half the louder's, so both must need the same gain everywhere.
    x = _speech_like(rng, 4.0)[:, :1].astype(np.float32)
    outs = []
    for pair in (np.hstack([x, x]), np.hstack([x, x / 2])):
        limiter = TruePeakLimiter(44100, ceiling_db=-6.0, attack_s=0.003, release_s=0.05)
        outs.append(
            np.concatenate(
                [limiter.process(pair[i : i + 8192]) for i in range(0, len(pair), 8192)]
                + [limiter.flush()]
            )
        )
        assert limiter.engaged
    assert np.array_equal(outs[0][:, 0], outs[1][:, 0])
    assert true_peak_db(outs[0]) <= -6.0 + 0.05


_DIGEST = """
import hashlib, numpy as np
from meditation.limiter import TruePeakLimiter
from meditation.loudness import true_peak_db
rng = np.random.default_rng(11)
x = np.tanh(4 * rng.standard_normal((200000, 2))).astype(np.float32) * 0.9
limiter = TruePeakLimiter(44100, ceiling_db=-1.0)
out = np.concatenate([limiter.process(x[:150000]), limiter.process(x[150000:]), limiter.flush()])
print(hashlib.sha256(out.tobytes() + np.float64(true_peak_db(x)).tobytes()).hexdigest())
"""


def test_true_peak_and_limiter_are_the_same_bits_whatever_blas_threads_the_process_has():
    """The products stay under OpenBLAS's threading size: a batch worker (one BLAS thread) and
    the CLI (several) must read the same peaks and write the same samples."""
    digests = set()
    for threads in ("1", "2"):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
        done = subprocess.run(
            [sys.executable, "-c", _DIGEST], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        digests.add(done.stdout.strip())
    assert len(digests) == 1, digests


def test_loudness_meter_reads_the_same_hops_bit_for_bit_in_any_chunks(rng):
    x = (rng.standard_normal((44100 * 3, 2)) * 0.1).astype(np.float32)
    whole = LoudnessMeter(44100)
    whole.feed(x)
    for sizes in ((1, 4409, 4411), (4410,), (100000, 3), (32768,)):
        chunked = LoudnessMeter(44100)
        i, k = 0, 0
        while i < len(x):
            step = sizes[k % len(sizes)]
            chunked.feed(x[i : i + step])
            i, k = i + step, k + 1
        assert np.array_equal(chunked.short_term_lufs(0.1), whole.short_term_lufs(0.1))
        assert chunked.integrated_lufs() == whole.integrated_lufs()
    assert len(whole.short_term_lufs(0.1)) == 30


def test_peaks_at_refuses_positions_without_their_context():
    padded = np.zeros((100, 2))
    for positions in ([14, 50], [50, 84]):
        with pytest.raises(IndexError, match="context"):
            peaks_at(padded, np.array(positions))
    assert peaks_at(padded, np.array([15, 83])).tolist() == [0.0, 0.0]
