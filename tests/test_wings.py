"""The wings layer: what a listener hears, with explicit tolerances."""

import numpy as np
import pytest
from measure import (
    band_energy_db,
    boundary_jump_ratio,
    envelope_db,
    max_click_ratio,
    rms_db,
    spectral_centroid_hz,
    welch_db,
)
from scipy import signal

from meditation.errors import SoundscapeError
from meditation.soundscape.layers import LAYERS, NOMINAL_RMS_DB, Cue
from meditation.soundscape.layers.wings import Wings, wings

SR = 44100


@pytest.fixture(scope="module")
def flapping():
    """Forty seconds of continuous flapping at default parameters."""
    return wings(40 * SR, sample_rate=SR, rng=np.random.default_rng(11), continuous=True)


def flap_rate_from_envelope(x, sample_rate):
    """Strongest periodicity (Hz) of the 10 ms power envelope, between 0.3 and 10 Hz."""
    env = 10 ** (envelope_db(x, sample_rate, 0.01) / 10)
    env -= env.mean()
    spec = np.abs(np.fft.rfft(env * np.hanning(len(env)), n=8 * len(env)))
    freqs = np.fft.rfftfreq(8 * len(env), 0.01)
    band = (freqs > 0.3) & (freqs < 10.0)
    return freqs[band][np.argmax(spec[band])]


def stroke_peaks(x, sample_rate):
    """Times (s) and levels (dB) of the strokes: peaks of a 50 ms envelope."""
    env = envelope_db(x, sample_rate, 0.05)
    peaks, _ = signal.find_peaks(env, height=env.max() - 30.0, prominence=10.0, distance=8)
    return peaks * 0.05, env[peaks]


def spectrum_slope_db_per_decade(x, sample_rate, low_hz=500.0, high_hz=5000.0):
    f, p_db = welch_db(x, sample_rate)
    band = (f >= low_hz) & (f <= high_hz)
    return np.polyfit(np.log10(f[band]), p_db[band], 1)[0]


def test_registered_with_description():
    assert LAYERS["wings"] is Wings
    assert Wings.description and "\n" not in Wings.description
    assert Wings.cue_actions == frozenset({"beat", "beats"})


def test_silent_without_cues_unless_continuous(rng):
    x = wings(10 * SR, sample_rate=SR, rng=rng)
    assert x.shape == (10 * SR, 2) and x.dtype == np.float32
    assert not np.any(x)


def test_continuous_level_near_nominal(flapping):
    assert abs(rms_db(flapping) - NOMINAL_RMS_DB) < 3.0


def test_output_finite_in_range_no_dc(flapping):
    assert np.all(np.isfinite(flapping))
    assert np.max(np.abs(flapping)) <= 1.0
    assert np.all(np.abs(flapping.mean(axis=0)) < 1e-3)


@pytest.mark.parametrize("rate_hz", [0.8, 1.2, 2.0])
def test_flap_rate_visible_in_envelope(rate_hz, rng):
    x = wings(40 * SR, sample_rate=SR, rng=rng, continuous=True, flap_rate_hz=rate_hz)
    assert abs(flap_rate_from_envelope(x, SR) - rate_hz) <= 0.1 * rate_hz


def test_jitter_makes_timing_irregular_but_keeps_the_rhythm():
    def intervals(jitter):
        x = wings(
            40 * SR, sample_rate=SR, rng=np.random.default_rng(4), continuous=True, jitter=jitter
        )
        times, _ = stroke_peaks(x, SR)
        return np.diff(times)

    steady, loose = intervals(0.0), intervals(0.3)
    assert np.std(steady) < 0.03  # 50 ms envelope frames: quantisation only
    assert np.std(loose) > 2 * np.std(steady) + 0.03
    assert abs(np.mean(loose) - 1 / 1.2) < 0.1


def test_single_beat_is_one_burst_at_the_cue_time(rng):
    x = wings(8 * SR, sample_rate=SR, rng=rng, cues=[Cue(3.0, "beat")])
    assert not np.any(x[: int(2.9 * SR)])  # silence well before it
    env = envelope_db(x, SR, 0.01)
    onset_s = np.argmax(env > env.max() - 30.0) * 0.01
    assert abs(onset_s - 3.0) <= 0.05
    times, _ = stroke_peaks(x, SR)
    assert len(times) == 1
    assert 3.0 < times[0] < 3.6
    # And it is over within a few seconds.
    assert rms_db(x[int(6.0 * SR) :]) < -90.0


def test_single_beat_is_more_powerful_than_an_ordinary_stroke():
    big = wings(4 * SR, sample_rate=SR, rng=np.random.default_rng(1), cues=[Cue(0.5, "beat")])
    small = wings(
        4 * SR, sample_rate=SR, rng=np.random.default_rng(1), cues=[Cue(0.5, "beats", {"count": 1})]
    )
    # Louder (energy) and longer (time above -20 dB re its own peak).
    assert rms_db(big) - rms_db(small) > 2.0

    def duration(x):
        env = envelope_db(x, SR, 0.01)
        return np.sum(env > env.max() - 20.0) * 0.01

    assert duration(big) > 1.3 * duration(small)

    # Deeper thump: the bass peak sits lower.
    def bass_peak(x):
        f, p_db = welch_db(x, SR, nperseg=2**15)
        band = (f > 20) & (f < 150)
        return f[band][np.argmax(p_db[band])]

    assert bass_peak(big) < 0.9 * bass_peak(small)


def test_beats_series_has_lengthening_intervals_and_fades(rng):
    x = wings(12 * SR, sample_rate=SR, rng=rng, cues=[Cue(1.0, "beats")])
    assert not np.any(x[: int(0.95 * SR)])
    times, levels = stroke_peaks(x, SR)
    assert len(times) == 6  # the default count
    gaps = np.diff(times)
    assert np.all(np.diff(gaps) > 0)
    # Each gap about 1.25x the previous (50 ms frames: allow +-0.15).
    assert np.all(np.abs(gaps[1:] / gaps[:-1] - 1.25) < 0.15)
    # The glide fades: the last stroke clearly softer than the first.
    assert levels[-1] < levels[0] - 5.0


def test_beats_count_option(rng):
    x = wings(8 * SR, sample_rate=SR, rng=rng, cues=[Cue(0.5, "beats", {"count": 3})])
    times, _ = stroke_peaks(x, SR)
    assert len(times) == 3


def test_whoosh_spectrum_falls_about_20_db_per_decade(flapping):
    slope = spectrum_slope_db_per_decade(flapping, SR)
    assert -30.0 < slope < -10.0


def test_brightness_raises_the_spectrum(rng):
    dull = wings(
        15 * SR, sample_rate=SR, rng=np.random.default_rng(2), continuous=True, brightness_hz=400.0
    )
    bright = wings(
        15 * SR, sample_rate=SR, rng=np.random.default_rng(2), continuous=True, brightness_hz=2500.0
    )
    assert spectral_centroid_hz(bright, SR) > 1.5 * spectral_centroid_hz(dull, SR)


@pytest.mark.slow
def test_thump_below_120_hz(flapping):
    f, p_db = welch_db(flapping, SR, nperseg=2**15)
    bass = (f > 20) & (f < 150)
    peak_hz = f[bass][np.argmax(p_db[bass])]
    assert 40.0 <= peak_hz <= 90.0
    # The bass is the thump's: without it, the band under 120 Hz falls away.
    no_thump = wings(
        40 * SR, sample_rate=SR, rng=np.random.default_rng(11), continuous=True, thump_db=-120.0
    )
    assert band_energy_db(flapping, SR, 30, 120) - band_energy_db(no_thump, SR, 30, 120) > 10.0


def test_every_flap_has_its_own_noise(rng):
    # Five equal strokes 1.5 s apart: if any two reused one grain, their
    # high-passed waveforms would match sample for sample.
    cue = Cue(0.5, "beats", {"count": 5, "interval_s": 1.5, "stretch": 1.0})
    x = wings(8 * SR, sample_rate=SR, rng=rng, cues=[cue])
    sos = signal.butter(4, 400, btype="highpass", fs=SR, output="sos")
    n = int(0.6 * SR)
    for ch in range(2):
        y = signal.sosfilt(sos, x[:, ch])
        strokes = [y[int((0.5 + 1.5 * k) * SR) :][:n] for k in range(5)]
        for i in range(5):
            for j in range(i + 1, 5):
                assert abs(np.corrcoef(strokes[i], strokes[j])[0, 1]) < 0.2, (ch, i, j)


def test_left_and_right_decorrelated(flapping):
    assert abs(np.corrcoef(flapping[:, 0], flapping[:, 1])[0, 1]) < 0.5


def test_no_clicks_including_block_boundaries(flapping, rng):
    x = flapping[: 20 * SR]
    # Low-passed noise: the biggest step is ~2-3x the 99th percentile step; a click is far above.
    assert max_click_ratio(x) < 5.0
    assert boundary_jump_ratio(x) < 2.0
    # Strokes start and end smoothly: the first and last samples of a lone beat are tiny.
    y = wings(5 * SR, sample_rate=SR, rng=rng, cues=[Cue(1.0, "beat")])
    nz = np.flatnonzero(np.any(y != 0, axis=1))
    peak = np.max(np.abs(y))
    assert np.max(np.abs(y[nz[0] : nz[0] + 10])) < 1e-3 * peak
    assert np.max(np.abs(y[nz[-1] - 10 : nz[-1] + 1])) < 1e-3 * peak


def test_same_seed_same_sound_other_seed_other_sound():
    cues = [Cue(0.5, "beat"), Cue(2.0, "beats", {"count": 3})]
    a = wings(5 * SR, sample_rate=SR, rng=np.random.default_rng(1), cues=cues, continuous=True)
    b = wings(5 * SR, sample_rate=SR, rng=np.random.default_rng(1), cues=cues, continuous=True)
    c = wings(5 * SR, sample_rate=SR, rng=np.random.default_rng(2), cues=cues, continuous=True)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("sample_rate", [22050, 44100, 48000])
def test_sample_rates(sample_rate, rng):
    x = wings(30 * sample_rate, sample_rate=sample_rate, rng=rng, continuous=True)
    assert abs(rms_db(x) - NOMINAL_RMS_DB) < 3.0
    assert abs(flap_rate_from_envelope(x, sample_rate) - 1.2) <= 0.12
    assert -30.0 < spectrum_slope_db_per_decade(x, sample_rate) < -10.0
    assert np.max(np.abs(x)) <= 1.0


@pytest.mark.parametrize(
    "params",
    [
        {"flap_rate_hz": 0.0},
        {"flap_rate_hz": 20.0},
        {"jitter": -0.1},
        {"jitter": 0.9},
        {"strength": 5.0},
        {"brightness_hz": 10.0},
        {"thump_hz": 500.0},
        {"continuous": "yes"},
        {"wingspan_m": 9.0},
    ],
)
def test_invalid_params_raise(params, rng):
    with pytest.raises(SoundscapeError):
        Wings(sample_rate=SR, rng=rng, params=params)


@pytest.mark.parametrize(
    "cue",
    [
        Cue(1.0, "flap"),
        Cue(1.0, "beats", {"count": 0}),
        Cue(1.0, "beats", {"count": 2.5}),
        Cue(1.0, "beats", {"count": "six"}),
        Cue(1.0, "beat", {"strength": -1.0}),
        Cue(1.0, "beat", {"loudness": 1.0}),
        Cue(-1.0, "beat"),
    ],
)
def test_invalid_cues_raise(cue, rng):
    with pytest.raises(SoundscapeError):
        Wings(sample_rate=SR, rng=rng, cues=[cue])


def test_skip_lands_on_the_same_absolute_time():
    cues = [Cue(0.5, "beats", {"count": 4}), Cue(2.5, "beat")]
    n_skip, n = int(1.7 * SR), 3 * SR
    whole = wings(n_skip + n, sample_rate=SR, rng=np.random.default_rng(6), cues=cues)
    layer = Wings(sample_rate=SR, rng=np.random.default_rng(6), cues=cues)
    layer.skip(n_skip)
    assert np.array_equal(layer.render(n), whole[n_skip:])
    # Continuous flapping resumes at its rate after a long skip.
    layer = Wings(sample_rate=SR, rng=np.random.default_rng(6), params={"continuous": True})
    layer.skip(600 * SR)
    after = layer.render(30 * SR)
    assert abs(flap_rate_from_envelope(after, SR) - 1.2) <= 0.12


@pytest.mark.parametrize(
    "cue", [Cue(1.0, "beat"), Cue(1.0, "beats"), Cue(1.0, "beats", {"count": 2})]
)
def test_cue_duration_covers_exactly_the_sound(cue, rng):
    layer = Wings(sample_rate=SR, rng=rng, cues=[cue])
    duration = layer.cue_duration_s(cue)
    x = layer.render(int((1.0 + duration + 1.0) * SR))
    end = int((1.0 + duration) * SR)
    assert not np.any(x[end + 1 :])
    assert np.any(x[end - SR // 10 : end])
    # Asking does not disturb the stream (no hidden use of the rng).
    a = Wings(sample_rate=SR, rng=np.random.default_rng(1), params={"continuous": True}, cues=[cue])
    b = Wings(sample_rate=SR, rng=np.random.default_rng(1), params={"continuous": True}, cues=[cue])
    a.cue_duration_s(cue)
    assert np.array_equal(a.render(3 * SR), b.render(3 * SR))


def test_cued_strokes_replace_ongoing_flaps_without_clipping():
    # While flapping continuously, a cued beat takes the place of the ordinary
    # strokes around it instead of piling on top of them.
    for seed in range(3):
        x = wings(
            14 * SR,
            sample_rate=SR,
            rng=np.random.default_rng(seed),
            continuous=True,
            cues=[Cue(3.0, "beat"), Cue(7.0, "beats")],
        )
        assert np.max(np.abs(x)) < 0.999  # never touches the clip guard
        times, _ = stroke_peaks(x[int(2.6 * SR) : int(4.2 * SR)], SR)
        assert (
            len(times) == 1
        )  # just the big beat: ordinary strokes end before 3.0 s or peak after 4.2 s
