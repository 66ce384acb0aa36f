"""The drone layer: what a listener hears, with explicit tolerances."""

import numpy as np
import pytest
from measure import (
    boundary_jump_ratio,
    envelope_db,
    max_click_ratio,
    rms_db,
    welch_db,
)
from scipy import signal

from meditation.errors import SoundscapeError
from meditation.soundscape.layers import BLOCK_SIZE, LAYERS, NOMINAL_RMS_DB, Cue
from meditation.soundscape.layers.drone import Drone, drone

SR = 44100


@pytest.fixture(scope="module")
def long_render():
    """Two minutes at default parameters (shared: the slow motion needs a long stretch)."""
    return drone(120 * SR, sample_rate=SR, rng=np.random.default_rng(7))


def sliding_db(x, sample_rate, window_s, hop_s):
    """Level in dB of overlapping windows (window_s long, every hop_s)."""
    c = np.concatenate([[0.0], np.cumsum(np.asarray(x, dtype=np.float64) ** 2)])
    w, h = int(window_s * sample_rate), int(hop_s * sample_rate)
    starts = np.arange(0, len(x) - w, h)
    return 10 * np.log10((c[starts + w] - c[starts]) / w + 1e-20)


def test_registered_with_description():
    assert LAYERS["drone"] is Drone
    assert Drone.description and "\n" not in Drone.description


def test_level_near_nominal(long_render):
    assert abs(rms_db(long_render) - NOMINAL_RMS_DB) < 3.0


def test_output_is_finite_in_range_and_without_dc(long_render):
    assert long_render.dtype == np.float32
    assert long_render.shape == (120 * SR, 2)
    assert np.all(np.isfinite(long_render))
    assert np.max(np.abs(long_render)) <= 1.0
    assert np.all(np.abs(long_render.mean(axis=0)) < 1e-3)


@pytest.mark.parametrize("root_hz", [110.0, 98.0])
def test_energy_sits_at_root_fifth_and_octave(root_hz, rng):
    x = drone(30 * SR, sample_rate=SR, rng=rng, root_hz=root_hz)
    f, p_db = welch_db(x[:, 0], SR, nperseg=2**15)  # 1.35 Hz bins
    for ratio in (1.0, 1.5, 2.0):
        target = root_hz * ratio
        window = np.abs(f - target) <= 8.0
        peak_hz = f[window][np.argmax(p_db[window])]
        assert abs(peak_hz - target) <= 2.0, (ratio, peak_hz)
        # A real peak: well above the spectrum between the partials.
        between = (f > target + 15) & (f < target + 35)
        assert p_db[window].max() - np.median(p_db[between]) > 25.0
    # Nearly all the energy is within a few hertz of the five partials.
    power = 10 ** (p_db / 10)
    near = np.zeros_like(f, dtype=bool)
    for ratio in (1.0, 1.5, 2.0, 3.0, 4.0):
        near |= np.abs(f - root_hz * ratio) <= 4.0
    assert power[near].sum() / power.sum() > 0.9


@pytest.mark.parametrize("detune_cents", [6.0, 12.0])
def test_root_beats_at_the_rate_its_detune_implies(detune_cents, rng):
    x = drone(90 * SR, sample_rate=SR, rng=rng, detune_cents=detune_cents)
    sos = signal.butter(4, [100, 120], btype="bandpass", fs=SR, output="sos")
    root = signal.sosfilt(sos, x[:, 0])
    env = 10 ** (envelope_db(root, SR, 0.05) / 20)
    env -= env.mean()
    spec = np.abs(np.fft.rfft(env * np.hanning(len(env))))
    freqs = np.fft.rfftfreq(len(env), 0.05)
    band = (freqs > 0.1) & (freqs < 2.0)
    beat_hz = freqs[band][np.argmax(spec[band])]
    # Side voices get detune_cents +-30 %; the beat follows.
    expected = 110.0 * (2 ** (detune_cents / 1200) - 1)
    assert 0.6 * expected <= beat_hz <= 1.4 * expected


def test_evolves_over_tens_of_seconds_but_is_smooth_at_10_ms(long_render):
    left = long_render[:, 0]
    per_second = envelope_db(left, SR, 1.0)
    # Averaged over 10 s (beats removed), the level still wanders: slow motion.
    slow = np.convolve(per_second, np.ones(10) / 10, mode="valid")
    assert np.ptp(slow) > 2.0
    # But it never jumps: a 100 ms level measured every 10 ms moves < 1.5 dB.
    fine = sliding_db(left, SR, 0.1, 0.01)
    assert np.abs(np.diff(fine)).max() < 1.5


def test_no_clicks_anywhere_including_block_boundaries(long_render):
    x = long_render[: 40 * SR]
    assert max_click_ratio(x) < 3.0
    assert boundary_jump_ratio(x) < 1.5


def test_left_and_right_differ(long_render):
    x = long_render[: 30 * SR]
    corr = np.corrcoef(x[:, 0], x[:, 1])[0, 1]
    assert abs(corr) < 0.9
    # Audibly different, not just inverted: their difference carries real energy.
    assert rms_db(x[:, 0] - x[:, 1]) > rms_db(x) - 6.0


def test_same_seed_same_sound_other_seed_other_sound():
    a = drone(3 * SR, sample_rate=SR, rng=np.random.default_rng(1))
    b = drone(3 * SR, sample_rate=SR, rng=np.random.default_rng(1))
    c = drone(3 * SR, sample_rate=SR, rng=np.random.default_rng(2))
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("sample_rate", [22050, 44100, 48000])
def test_sample_rates(sample_rate, rng):
    x = drone(20 * sample_rate, sample_rate=sample_rate, rng=rng)
    assert x.shape == (20 * sample_rate, 2)
    assert abs(rms_db(x) - NOMINAL_RMS_DB) < 3.0
    f, p_db = welch_db(x[:, 0], sample_rate, nperseg=2**15 if sample_rate > 30000 else 2**14)
    window = np.abs(f - 110.0) <= 8.0
    assert abs(f[window][np.argmax(p_db[window])] - 110.0) <= 2.5
    assert max_click_ratio(x) < 3.0


def test_low_sample_rate_keeps_partials_clear_of_nyquist(rng):
    # At 8 kHz a 950 Hz root has its 3rd partial at 2850 Hz (kept) and its 4th at
    # 3800 Hz, too close to Nyquist (4 kHz) to be clean: it must be left out.
    x = drone(10 * 8000, sample_rate=8000, rng=rng, root_hz=950.0)
    assert np.all(np.isfinite(x)) and np.max(np.abs(x)) <= 1.0
    f, p_db = welch_db(x[:, 0], 8000, nperseg=8192)
    at_2850 = p_db[np.abs(f - 2850) < 5].max()
    at_3800 = p_db[np.abs(f - 3800) < 5].max()
    assert at_2850 - at_3800 > 30.0


def test_brightness_moves_energy_up(rng):
    dark = drone(20 * SR, sample_rate=SR, rng=np.random.default_rng(5), brightness=0.0)
    bright = drone(20 * SR, sample_rate=SR, rng=np.random.default_rng(5), brightness=1.0)
    f, pd = welch_db(dark[:, 0], SR, nperseg=2**14)
    _, pb = welch_db(bright[:, 0], SR, nperseg=2**14)
    oct2 = np.abs(f - 440.0) < 6
    root = np.abs(f - 110.0) < 6
    assert (pb[oct2].max() - pb[root].max()) - (pd[oct2].max() - pd[root].max()) > 6.0


@pytest.mark.parametrize(
    "params",
    [
        {"root_hz": 5.0},
        {"root_hz": 5000.0},
        {"detune_cents": -1.0},
        {"brightness": 1.5},
        {"motion_s": 0.0},
        {"air_db": 3.0},
        {"root_hz": "low"},
        {"volume": 1.0},
    ],
)
def test_invalid_params_raise(params, rng):
    with pytest.raises(SoundscapeError):
        Drone(sample_rate=SR, rng=rng, params=params)


def test_cues_are_rejected(rng):
    with pytest.raises(SoundscapeError):
        Drone(sample_rate=SR, rng=rng, cues=[Cue(1.0, "strike")])
    with pytest.raises(SoundscapeError):
        Drone(sample_rate=SR, rng=rng).cue_duration_s(Cue(1.0, "strike"))


def test_skip_lands_on_the_same_absolute_time():
    # Without the (random) air, the drone is a pure function of the sample index.
    n_skip, n = 5 * BLOCK_SIZE + 1234, 3 * BLOCK_SIZE
    whole = drone(n_skip + n, sample_rate=SR, rng=np.random.default_rng(2), air_db=-120.0)
    layer = Drone(sample_rate=SR, rng=np.random.default_rng(2), params={"air_db": -120.0})
    layer.render(700)
    layer.skip(n_skip - 700)
    assert np.array_equal(layer.render(n), whole[n_skip:])
    # With the air on, a skip still resumes cleanly at the nominal level.
    layer = Drone(sample_rate=SR, rng=np.random.default_rng(2))
    layer.skip(40 * SR + 17)
    after = layer.render(5 * SR)
    assert abs(rms_db(after) - NOMINAL_RMS_DB) < 4.0 and max_click_ratio(after) < 3.0
