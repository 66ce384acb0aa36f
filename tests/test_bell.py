import hashlib
import os
import subprocess
import sys

"""The bell (singing bowl) layer: what a listener hears, with explicit tolerances."""

import numpy as np
import pytest
from measure import (
    boundary_jump_ratio,
    envelope_db,
    max_click_ratio,
    peak_db,
    spectral_centroid_hz,
    welch_db,
)
from scipy import signal

from meditation.errors import SoundscapeError
from meditation.soundscape.layers import LAYERS, Cue
from meditation.soundscape.layers.bell import Bell, bell

SR = 44100
RATIOS = (1.0, 2.71, 5.12, 8.21)  # singing-bowl partials the layer promises


@pytest.fixture(scope="module")
def strike():
    """One default strike at 1 s, 16 s long."""
    return bell(16 * SR, sample_rate=SR, rng=np.random.default_rng(5), cues=[Cue(1.0, "strike")])


def band_level_db(x, sample_rate, centre_hz, rel_width=0.06, window_s=0.25):
    """Level (dB, both channels' power) of a narrow band around centre_hz, per window."""
    sos = signal.butter(
        4,
        [centre_hz * (1 - rel_width), centre_hz * (1 + rel_width)],
        btype="bandpass",
        fs=sample_rate,
        output="sos",
    )
    y = signal.sosfilt(sos, x.astype(np.float64), axis=0)
    power = (y**2).sum(axis=1)
    n = int(window_s * sample_rate)
    frames = len(power) // n
    return 10 * np.log10(power[: frames * n].reshape(frames, n).mean(axis=1) + 1e-30)


def t60_s(x, sample_rate, centre_hz, start_s, drop_db=35.0):
    """T60 of a partial from the slope of its band level, from start_s until it fell drop_db."""
    level = band_level_db(x, sample_rate, centre_hz)
    t = (np.arange(len(level)) + 0.5) * 0.25
    first = int(start_s / 0.25)
    top = level[first:].max()
    below = np.flatnonzero(level[first:] < top - drop_db)
    last = first + (below[0] if len(below) else len(level) - first)
    slope = np.polyfit(t[first:last], level[first:last], 1)[0]  # dB per second
    return -60.0 / slope


def test_registered_with_description():
    assert LAYERS["bell"] is Bell
    assert Bell.description and "\n" not in Bell.description
    assert Bell.cue_actions == frozenset({"strike"})


def test_silent_without_cues(rng):
    x = bell(5 * SR, sample_rate=SR, rng=rng)
    assert x.shape == (5 * SR, 2) and x.dtype == np.float32
    assert not np.any(x)


def test_silence_before_the_strike_and_onset_on_time(strike):
    assert not np.any(strike[:SR])
    env = envelope_db(strike, SR, 0.002)
    onset_s = np.argmax(env > env.max() - 30.0) * 0.002
    assert 1.0 <= onset_s <= 1.01
    # A soft mallet: the peak comes within a few ms of the onset, not at once.
    peak_s = np.argmax(np.abs(strike).max(axis=1)) / SR
    assert 1.0015 < peak_s < 1.1


def test_strike_peak_near_minus_6_dbfs(strike):
    assert abs(peak_db(strike) - -6.0) < 1.0
    assert np.all(np.isfinite(strike))
    assert np.all(np.abs(strike.mean(axis=0)) < 1e-3)


def test_strength_scales_level_and_brightness():
    def hit(strength):
        return bell(
            6 * SR,
            sample_rate=SR,
            rng=np.random.default_rng(5),
            cues=[Cue(0.1, "strike", {"strength": strength})],
        )

    hard, soft = hit(1.0), hit(0.3)
    assert abs((peak_db(hard) - peak_db(soft)) - 20 * np.log10(1 / 0.3)) < 3.0

    # A harder strike brings out the upper partials: the third partial rises
    # against the fundamental, and the spectral centroid (level-free) goes up.
    def third_over_first_db(x):
        f, p_db = welch_db(x[: 2 * SR], SR, nperseg=2**15)
        return p_db[np.abs(f - 220 * 5.12) < 10].max() - p_db[np.abs(f - 220) < 5].max()

    assert third_over_first_db(hard) - third_over_first_db(soft) > 6.0
    assert spectral_centroid_hz(hard[: 2 * SR], SR) > spectral_centroid_hz(soft[: 2 * SR], SR)


@pytest.mark.parametrize("fundamental_hz", [220.0, 150.0])
def test_partials_at_singing_bowl_ratios(fundamental_hz):
    x = bell(
        8 * SR,
        sample_rate=SR,
        rng=np.random.default_rng(9),
        cues=[Cue(0.5, "strike")],
        fundamental_hz=fundamental_hz,
    )
    f, p_db = welch_db(x[SR // 2 : 4 * SR], SR, nperseg=2**15)
    peaks, _ = signal.find_peaks(p_db, prominence=15.0)
    found = f[peaks]
    for ratio in RATIOS:
        target = fundamental_hz * ratio
        nearest = found[np.argmin(np.abs(found - target))]
        assert abs(nearest - target) / target < 0.015, (ratio, nearest)
    # And nothing strong between the fundamental and the second partial:
    # the spectrum is the bowl's, not harmonic (no 2x partial).
    at_2x = p_db[np.abs(f - 2 * fundamental_hz) < 3].max()
    at_1x = p_db[np.abs(f - fundamental_hz) < 3].max()
    assert at_1x - at_2x > 30.0


@pytest.mark.parametrize("decay_s", [12.0, 6.0])
def test_fundamental_decays_in_decay_s(decay_s):
    x = bell(
        int((decay_s + 2) * SR),
        sample_rate=SR,
        rng=np.random.default_rng(3),
        cues=[Cue(0.5, "strike")],
        decay_s=decay_s,
    )
    measured = t60_s(x, SR, 220.0, start_s=0.75)
    assert abs(measured - decay_s) < 0.25 * decay_s


def test_higher_partials_decay_faster(strike):
    t1 = t60_s(strike, SR, 220.0, start_s=1.25)
    t2 = t60_s(strike, SR, 220.0 * 2.71, start_s=1.25)
    t3 = t60_s(strike, SR, 220.0 * 5.12, start_s=1.25, drop_db=30.0)
    assert t2 < 0.75 * t1
    assert t3 < 0.85 * t2


def test_fundamental_wobbles_at_wobble_hz():
    for wobble_hz in (0.7, 1.5):
        x = bell(
            14 * SR,
            sample_rate=SR,
            rng=np.random.default_rng(2),
            cues=[Cue(0.5, "strike")],
            wobble_hz=wobble_hz,
            decay_s=20.0,
        )
        sos = signal.butter(4, [200, 240], btype="bandpass", fs=SR, output="sos")
        y = signal.sosfilt(sos, x[:, 0].astype(np.float64))[SR : 13 * SR]
        env = 10 ** (envelope_db(y, SR, 0.02) / 20)
        # Remove the decay, keep the beating.
        t = np.arange(len(env))
        env = env / np.exp(np.polyval(np.polyfit(t, np.log(env + 1e-12), 1), t)) - 1.0
        spec = np.abs(np.fft.rfft(env * np.hanning(len(env)), n=8 * len(env)))
        freqs = np.fft.rfftfreq(8 * len(env), 0.02)
        band = (freqs > 0.2) & (freqs < 5.0)
        beat = freqs[band][np.argmax(spec[band])]
        # The pair's split is wobble_hz +-25 % (bowls are irregular).
        assert 0.7 * wobble_hz < beat < 1.35 * wobble_hz


def test_left_and_right_differ(strike):
    ring = strike[SR : 11 * SR]
    assert abs(np.corrcoef(ring[:, 0], ring[:, 1])[0, 1]) < 0.9


def test_no_clicks_including_block_boundaries(strike):
    # Skip the first 20 ms after the strike: the attack itself holds the largest
    # legitimate steps; after it, the ring is a smooth sum of sines.
    # A second of ring: a 99th-percentile step over a long decay would be
    # dominated by the quiet tail and flag the loud start as a "click".
    ring = strike[int(1.02 * SR) : 2 * SR]
    assert max_click_ratio(ring) < 3.0
    assert boundary_jump_ratio(strike[SR:]) < 1.5
    # The strike fades in from zero (soft mallet), without a step.
    first = np.flatnonzero(np.any(strike != 0, axis=1))[0]
    assert np.max(np.abs(strike[first : first + 5])) < 1e-3


def test_same_seed_same_sound_other_seed_other_sound():
    cues = [Cue(0.2, "strike")]
    a = bell(2 * SR, sample_rate=SR, rng=np.random.default_rng(1), cues=cues)
    b = bell(2 * SR, sample_rate=SR, rng=np.random.default_rng(1), cues=cues)
    c = bell(2 * SR, sample_rate=SR, rng=np.random.default_rng(2), cues=cues)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)  # another bowl: other splits and ear weights


def test_overlapping_strikes_stay_in_range(rng):
    cues = [Cue(0.1 * k, "strike") for k in range(6)]
    x = bell(3 * SR, sample_rate=SR, rng=rng, cues=cues)
    assert np.all(np.isfinite(x)) and np.max(np.abs(x)) <= 1.0


@pytest.mark.parametrize("sample_rate", [22050, 44100, 48000])
def test_sample_rates(sample_rate):
    x = bell(
        6 * sample_rate,
        sample_rate=sample_rate,
        rng=np.random.default_rng(6),
        cues=[Cue(0.5, "strike")],
    )
    assert abs(peak_db(x) - -6.0) < 1.0
    f, p_db = welch_db(x[sample_rate // 2 :], sample_rate, nperseg=2**14)
    for ratio in RATIOS[:3]:
        window = np.abs(f - 220.0 * ratio) < 12.0
        assert abs(f[window][np.argmax(p_db[window])] - 220.0 * ratio) < 0.015 * 220.0 * ratio + 3.0
    assert abs(t60_s(x, sample_rate, 220.0, start_s=0.75, drop_db=25.0) - 12.0) < 3.0


@pytest.mark.parametrize(
    "params",
    [
        {"fundamental_hz": 10.0},
        {"fundamental_hz": 9000.0},
        {"decay_s": 0.0},
        {"decay_s": 100.0},
        {"brightness": -0.5},
        {"wobble_hz": 10.0},
        {"decay_s": "long"},
        {"size_cm": 20.0},
    ],
)
def test_invalid_params_raise(params, rng):
    with pytest.raises(SoundscapeError):
        Bell(sample_rate=SR, rng=rng, params=params)


@pytest.mark.parametrize(
    "cue",
    [
        Cue(1.0, "ring"),
        Cue(1.0, "strike", {"strength": 1.5}),
        Cue(1.0, "strike", {"strength": "hard"}),
        Cue(1.0, "strike", {"mallet": "felt"}),
        Cue(-2.0, "strike"),
    ],
)
def test_invalid_cues_raise(cue, rng):
    with pytest.raises(SoundscapeError):
        Bell(sample_rate=SR, rng=rng, cues=[cue])


def test_skip_lands_on_the_same_absolute_time():
    cues = [Cue(1.0, "strike"), Cue(3.0, "strike", {"strength": 0.4})]
    n_skip, n = int(2.3 * SR), 3 * SR
    whole = bell(n_skip + n, sample_rate=SR, rng=np.random.default_rng(6), cues=cues)
    layer = Bell(sample_rate=SR, rng=np.random.default_rng(6), cues=cues)
    layer.skip(n_skip)
    assert np.array_equal(layer.render(n), whole[n_skip:])


def test_cue_duration_is_the_audible_ring(rng):
    cue = Cue(0.5, "strike")
    layer = Bell(sample_rate=SR, rng=rng, params={"decay_s": 4.0}, cues=[cue])
    duration = layer.cue_duration_s(cue)
    x = layer.render(int((0.5 + duration + 0.5) * SR))
    tail = x[int((0.5 + duration - 0.25) * SR) : int((0.5 + duration) * SR)]
    assert peak_db(tail) < peak_db(x) - 45.0  # about gone by then
    with pytest.raises(SoundscapeError):
        layer.cue_duration_s(Cue(1.0, "strike", {"strength": 3.0}))


def test_struck_sounds_are_the_same_bits_whatever_blas_threads_the_process_has(tmp_path):
    """A batch worker holds BLAS to one thread and the CLI does not: a strike built with a
    threaded matrix product rounded apart between them (a scheduled night differed by an LSB)."""
    digests = set()
    for threads in ("1", "2"):
        out = tmp_path / f"t{threads}.wav"
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
        args = ["ambient", "--duration", "2m", "--sample-rate", "8000", "--seed", "3"]
        args += ["--schedule", "night-wind@0,stream@40s,drone@80s", "--crossfade", "20s"]
        args += ["--wake", "30s"]  # the wake-up's rising bell
        done = subprocess.run(
            [sys.executable, "-m", "meditation", *args, "-o", str(out), "--progress", "off"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        digests.add(hashlib.sha256(out.read_bytes()).hexdigest())
    assert len(digests) == 1, digests
