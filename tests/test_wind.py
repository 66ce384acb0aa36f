"""Wind layer: measured the way a listener would notice problems."""

import numpy as np
import pytest
from measure import band_energy_db, envelope_db, max_click_ratio, rms_db, welch_db
from scipy import signal

from meditation.errors import SoundscapeError
from meditation.soundscape.layers import BLOCK_SIZE, NOMINAL_RMS_DB, render_layer
from meditation.soundscape.layers.wind import Wind, wind

FS = 44100


@pytest.fixture(scope="module")
def default_60s():
    return wind(60 * FS, sample_rate=FS, rng=np.random.default_rng(20261125))


def _envelope_lag_s(x, sample_rate, window_s=0.1, max_lag_s=3.0):
    """Delay of the right channel's level contour behind the left's, in seconds."""
    left = envelope_db(x[:, 0], sample_rate, window_s)
    right = envelope_db(x[:, 1], sample_rate, window_s)
    left = left - left.mean()
    right = right - right.mean()
    lags = np.arange(-int(max_lag_s / window_s), int(max_lag_s / window_s) + 1)
    n = len(left)
    score = [
        np.dot(left[max(0, -k) : n - max(0, k)], right[max(0, k) : n - max(0, -k)]) for k in lags
    ]
    return lags[int(np.argmax(score))] * window_s


def test_level_near_nominal_and_bounded(default_60s):
    x = default_60s
    assert x.dtype == np.float32 and x.shape == (60 * FS, 2)
    assert np.isfinite(x).all() and np.abs(x).max() <= 1.0
    # One minute holds only ~15 gusts plus part of a slower drift, so its
    # level can sit a couple of dB off; longer runs converge (next test).
    assert abs(rms_db(x) - NOMINAL_RMS_DB) < 3.0


def test_long_term_level_calibrated():
    steady = wind(30 * 22050, sample_rate=22050, rng=np.random.default_rng(5), gustiness=0.0)
    assert abs(rms_db(steady) - NOMINAL_RMS_DB) < 0.5
    gusty = wind(300 * 22050, sample_rate=22050, rng=np.random.default_rng(5))
    assert abs(rms_db(gusty) - NOMINAL_RMS_DB) < 1.5


def test_slow_level_drift_but_no_flutter(default_60s):
    x = default_60s
    slow = envelope_db(x, FS, 0.5)
    # Gusts: the half-second level wanders by several dB over the minute.
    assert slow.std() > 2.5, slow.std()
    assert slow.max() - slow.min() > 8.0
    # Flutter: 20 ms levels around their own 0.5 s running mean stay within
    # what the noise itself gives (~0.8 dB): the drift is slow, not a tremolo.
    fast = envelope_db(x, FS, 0.02)
    trend = np.convolve(fast, np.ones(25) / 25, mode="valid")
    flutter = fast[12 : 12 + len(trend)] - trend
    assert flutter.std() < 1.5, flutter.std()

    calm = wind(60 * FS, sample_rate=FS, rng=np.random.default_rng(20261125), gustiness=0.0)
    assert envelope_db(calm, FS, 0.5).std() < 0.6


def test_gusts_travel_from_left_to_right():
    x = wind(60 * FS, sample_rate=FS, rng=np.random.default_rng(9), travel_s=1.0, gust_s=2.0)
    assert abs(_envelope_lag_s(x, FS) - 1.0) <= 0.2
    y = wind(60 * FS, sample_rate=FS, rng=np.random.default_rng(9), travel_s=0.0, gust_s=2.0)
    assert abs(_envelope_lag_s(y, FS)) <= 0.1


@pytest.mark.slow
def test_whistle_adds_narrow_band_energy_in_gusts():
    seed = 20261125
    plain = wind(60 * FS, sample_rate=FS, rng=np.random.default_rng(seed), whistle=0.0)
    whistly = wind(60 * FS, sample_rate=FS, rng=np.random.default_rng(seed), whistle=1.0)
    # Long term: energy appears in the whistle range and nowhere else.
    f, p_plain = welch_db(plain, FS)
    _, p_whistly = welch_db(whistly, FS)
    excess = p_whistly - p_plain
    # The layer trims its body by the whistles' expected power to stay at the
    # nominal level: a uniform offset, measured away from the whistle range.
    outside = ((f >= 100) & (f < 600)) | ((f >= 4000) & (f < 10000))
    offset = np.median(excess[outside])
    assert -1.5 < offset <= 0.0
    assert np.abs(excess[outside] - offset).max() < 0.3
    in_range = (f >= 1000) & (f < 2600)
    assert excess[in_range].max() - offset > 6.0

    # Short term, what the whistle adds is narrow: in the frames where it is
    # loud, a handful of spectral bins carry most of its power.
    added = (whistly - plain).mean(axis=1).astype(np.float64)
    _, _, spec = signal.spectrogram(added, fs=FS, nperseg=4096, noverlap=0)
    power = spec.sum(axis=0)
    loud = power > 0.1 * power.max()
    assert loud.sum() >= 5
    top = np.sort(spec[:, loud], axis=0)[-8:].sum(axis=0) / power[loud]
    assert np.median(top) > 0.6, np.median(top)

    # ...and it sounds in the gusts: the frames with whistle are louder ones.
    level = envelope_db(plain, FS, 4096 / FS)[: len(power)]
    whistle_frames = power > 0.01 * power.max()
    assert 0.05 < whistle_frames.mean() < 0.8
    assert level[whistle_frames].mean() > level[~whistle_frames].mean() + 3.0


def test_determinism():
    a = wind(50000, sample_rate=FS, rng=np.random.default_rng(7))
    b = wind(50000, sample_rate=FS, rng=np.random.default_rng(7))
    c = wind(50000, sample_rate=FS, rng=np.random.default_rng(8))
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_pure_function_matches_layer():
    a = wind(20000, sample_rate=FS, rng=np.random.default_rng(4), whistle=0.5)
    b = render_layer(
        "wind", 20000, sample_rate=FS, rng=np.random.default_rng(4), params={"whistle": 0.5}
    )
    assert np.array_equal(a, b)


def test_no_dc(default_60s):
    assert np.all(np.abs(default_60s.mean(axis=0)) < 1e-3)
    # No energy piles up below the body's band either.
    assert band_energy_db(default_60s, FS, 5, 60) < band_energy_db(default_60s, FS, 200, 2000) - 20


def test_no_clicks_anywhere_or_at_block_boundaries():
    x = wind(30 * FS, sample_rate=FS, rng=np.random.default_rng(2), whistle=1.0, gust_s=1.5)
    # Largest jump vs 99th-percentile jump: ~2.3 for this noise over 1.3M
    # jumps; a pop of the order of the signal's peak scores > 4 (checked).
    assert max_click_ratio(x) < 4.0
    d = np.abs(np.diff(x.astype(np.float64), axis=0))
    typical = np.percentile(d, 99, axis=0)
    boundaries = np.arange(BLOCK_SIZE, len(x), BLOCK_SIZE) - 1
    assert np.all(d[boundaries].max(axis=0) < 2.5 * typical)

    clicked = x.copy()
    clicked[len(x) // 2 :] += np.abs(x).max()
    assert max_click_ratio(clicked) > 4.0


def test_left_right_decorrelated(default_60s):
    assert abs(np.corrcoef(default_60s[:, 0], default_60s[:, 1])[0, 1]) < 0.3


@pytest.mark.parametrize("sample_rate", [22050, 44100, 48000])
def test_sample_rates(sample_rate):
    x = wind(
        20 * sample_rate, sample_rate=sample_rate, rng=np.random.default_rng(11), gustiness=0.3
    )
    assert x.shape == (20 * sample_rate, 2) and x.dtype == np.float32
    assert np.isfinite(x).all() and np.abs(x).max() <= 1.0
    # Gusts are heavy-tailed (a few strong ones carry much of the power), so
    # 20 s can sit a few dB off the long-term level.
    assert abs(rms_db(x) - NOMINAL_RMS_DB) < 4.5
    assert np.all(np.abs(x.mean(axis=0)) < 1e-3)
    assert max_click_ratio(x) < 4.0
    # The body's band stays put in hertz whatever the rate.
    assert (
        band_energy_db(x, sample_rate, 250, 1500) > band_energy_db(x, sample_rate, 4000, 8000) + 10
    )


@pytest.mark.parametrize(
    "params",
    [
        {"speed": 1.0},
        {"gust_s": 0.0},
        {"gustiness": 1.5},
        {"whistle": -0.1},
        {"center_hz": 10.0},
        {"travel_s": -1.0},
        {"gust_s": "long"},
    ],
)
def test_invalid_params_raise(params):
    with pytest.raises(SoundscapeError):
        Wind(sample_rate=FS, rng=np.random.default_rng(0), params=params)
