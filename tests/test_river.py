"""River layer: measured the way a listener would notice problems."""

import numpy as np
import pytest
from measure import band_energy_db, envelope_db, max_click_ratio, rms_db, welch_db
from scipy import signal, stats

from meditation.errors import SoundscapeError
from meditation.soundscape.layers import BLOCK_SIZE, NOMINAL_RMS_DB, render_layer
from meditation.soundscape.layers.river import River, river

FS = 44100


def _band_kurtosis(x, sample_rate, low_hz=1000.0, high_hz=3000.0):
    """Excess kurtosis of one channel band-passed to the bubble band (0 for Gaussian noise)."""
    sos = signal.butter(4, [low_hz, high_hz], btype="bandpass", fs=sample_rate, output="sos")
    return float(stats.kurtosis(signal.sosfilt(sos, x[:, 0].astype(np.float64))))


@pytest.fixture(scope="module")
def default_20s():
    return river(20 * FS, sample_rate=FS, rng=np.random.default_rng(20261125))


def test_level_near_nominal_and_bounded(default_20s):
    x = default_20s
    assert x.dtype == np.float32 and x.shape == (20 * FS, 2)
    assert np.isfinite(x).all()
    assert np.abs(x).max() <= 1.0
    # The bed's level wander is slow but small (~1.5 dB): 20 s averages it well.
    assert abs(rms_db(x) - NOMINAL_RMS_DB) < 1.5
    # Neither channel is left quiet.
    assert abs(rms_db(x[:, 0]) - rms_db(x[:, 1])) < 1.0


def test_flow_controls_activity(rng):
    quiet = river(10 * FS, sample_rate=FS, rng=np.random.default_rng(1), flow=0.0)
    busy = river(10 * FS, sample_rate=FS, rng=np.random.default_rng(1), flow=1.0)
    # flow spans -4..+4 dB of rush plus 0.2x..1.8x bubbles: clearly audible.
    assert rms_db(busy) - rms_db(quiet) > 5.0


def test_energy_spread_broadly_not_a_tone(default_20s):
    x = default_20s
    bands = [band_energy_db(x, FS, lo, hi) for lo, hi in [(200, 800), (800, 3000), (3000, 8000)]]
    # A stream is broadband: low rumble, mid babble and high hiss within a few dB.
    assert max(bands) - min(bands) < 8.0, bands
    # ...and little below 100 Hz (no rumble or DC drift).
    assert band_energy_db(x, FS, 20, 100) < min(bands) - 15.0
    # No single spectral line dominates: the strongest Welch bin holds a tiny share.
    f, p_db = welch_db(x, FS)
    p = 10 ** (p_db / 10)
    assert p.max() / p.sum() < 0.01


def test_bubbles_make_the_mid_band_impulsive(default_20s):
    without = river(
        20 * FS, sample_rate=FS, rng=np.random.default_rng(20261125), bubble_rate_hz=0.0
    )
    k_with = _band_kurtosis(default_20s, FS)
    k_without = _band_kurtosis(without, FS)
    # Gaussian noise has excess kurtosis 0; the rush alone only churns slowly.
    # Bubbles are short ringing bursts, so the 1-3 kHz band gets heavy tails.
    assert k_without < 0.5, k_without
    assert k_with > 0.6, k_with
    assert k_with > k_without + 0.4
    # ...and its short-term level (10 ms) fluctuates more than without them.
    sos = signal.butter(4, [1000, 3000], btype="bandpass", fs=FS, output="sos")
    env_with = envelope_db(signal.sosfilt(sos, default_20s[:, 0]), FS, 0.01)
    env_without = envelope_db(signal.sosfilt(sos, without[:, 0]), FS, 0.01)
    assert env_with.std() > env_without.std() + 0.3


def test_determinism(rng):
    a = river(50000, sample_rate=FS, rng=np.random.default_rng(7))
    b = river(50000, sample_rate=FS, rng=np.random.default_rng(7))
    c = river(50000, sample_rate=FS, rng=np.random.default_rng(8))
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_pure_function_matches_layer():
    a = river(20000, sample_rate=FS, rng=np.random.default_rng(4), flow=0.7)
    b = render_layer(
        "river", 20000, sample_rate=FS, rng=np.random.default_rng(4), params={"flow": 0.7}
    )
    assert np.array_equal(a, b)


def test_no_dc(default_20s):
    assert np.all(np.abs(default_20s.mean(axis=0)) < 1e-3)


def test_no_clicks_anywhere_or_at_block_boundaries(default_20s):
    x = default_20s
    # max_click_ratio compares the largest sample-to-sample jump with the 99th
    # percentile jump. The river's hiss makes typical jumps about as big as
    # its RMS, so the largest of ~900k jumps is only ~2x the 99th percentile;
    # a pop that would be heard over that hiss (a jump of the order of the
    # signal's peak) scores well above 4, as the injected one below shows.
    assert max_click_ratio(x) < 4.0
    d = np.abs(np.diff(x.astype(np.float64), axis=0))
    typical = np.percentile(d, 99, axis=0)
    boundaries = np.arange(BLOCK_SIZE, len(x), BLOCK_SIZE) - 1
    # ~100 boundary jumps: their max should look like any ~100 random jumps
    # (the max of 100 draws sits near the 99th percentile).
    assert np.all(d[boundaries].max(axis=0) < 2.5 * typical)

    clicked = x.copy()
    clicked[len(x) // 2 :] += np.abs(x).max()
    assert max_click_ratio(clicked) > 4.0


def test_left_right_decorrelated(default_20s):
    corr = np.corrcoef(default_20s[:, 0], default_20s[:, 1])[0, 1]
    assert abs(corr) < 0.3


def test_stereo_width_zero_centres_bubbles():
    wide = river(10 * FS, sample_rate=FS, rng=np.random.default_rng(2), bubble_level_db=5.0)
    narrow = river(
        10 * FS, sample_rate=FS, rng=np.random.default_rng(2), bubble_level_db=5.0, stereo_width=0.0
    )
    c_wide = np.corrcoef(wide.T)[0, 1]
    c_narrow = np.corrcoef(narrow.T)[0, 1]
    assert c_narrow > c_wide + 0.3


@pytest.mark.parametrize("sample_rate", [22050, 44100, 48000])
def test_sample_rates(sample_rate):
    x = river(8 * sample_rate, sample_rate=sample_rate, rng=np.random.default_rng(11))
    assert x.shape == (8 * sample_rate, 2) and x.dtype == np.float32
    assert np.isfinite(x).all() and np.abs(x).max() <= 1.0
    assert abs(rms_db(x) - NOMINAL_RMS_DB) < 2.0
    assert np.all(np.abs(x.mean(axis=0)) < 1e-3)
    assert max_click_ratio(x) < 4.0
    assert _band_kurtosis(x, sample_rate) > 0.4
    # The band stays put in hertz whatever the rate.
    assert band_energy_db(x, sample_rate, 200, 3000) > band_energy_db(x, sample_rate, 20, 150) + 15


@pytest.mark.parametrize(
    "params",
    [
        {"speed": 1.0},
        {"flow": 1.5},
        {"flow": -0.1},
        {"bubble_rate_hz": -1.0},
        {"bed_center_hz": 20.0},
        {"brightness": 2.0},
        {"stereo_width": -0.5},
        {"bubble_min_radius_mm": 5.0, "bubble_max_radius_mm": 2.0},
        {"flow": "fast"},
    ],
)
def test_invalid_params_raise(params):
    with pytest.raises(SoundscapeError):
        River(sample_rate=FS, rng=np.random.default_rng(0), params=params)
