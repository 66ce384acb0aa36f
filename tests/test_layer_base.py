"""The shared layer machinery: SOS biquads, noise gain, range errors, spans."""

import numpy as np
import pytest
from layer_cases import CUES, PARAMS
from scipy import signal

from meditation.errors import SoundscapeError
from meditation.soundscape.layers import BLOCK_SIZE, LAYERS
from meditation.soundscape.layers.base import (
    BiquadKind,
    check_range,
    impulse_response,
    noise_gain,
    rbj_biquad,
)
from meditation.soundscape.layers.river import River


@pytest.mark.parametrize("fs", [44100, 96000, 192000])
def test_a_biquad_cascade_in_float32_sections_keeps_its_response(fs):
    # The river's bed: a high-pass biquad, a one-pole and a two-pole low-pass.
    # Expanded into one order-5 polynomial this drifted by ~1 % in float32;
    # as sections it must stay within 0.01 dB of the float64 response.
    sos = np.vstack(
        [
            rbj_biquad(BiquadKind.HIGH, 400.0, 1.1, fs),
            signal.butter(1, 800.0, fs=fs, output="sos"),
            signal.butter(2, min(9000.0, 0.42 * fs), fs=fs, output="sos"),
        ]
    )
    x = np.random.default_rng(1).standard_normal(fs)
    exact = signal.sosfilt(sos, x)
    single = signal.sosfilt(sos.astype(np.float32), x.astype(np.float32))
    assert single.dtype == np.float32
    for low, high in [(100, 300), (300, 1000), (1000, 4000)]:
        f, p64 = signal.welch(exact, fs=fs, nperseg=8192)
        _, p32 = signal.welch(single.astype(np.float64), fs=fs, nperseg=8192)
        band = (f >= low) & (f < high)
        assert abs(10 * np.log10(p32[band].sum() / p64[band].sum())) < 0.01


@pytest.mark.parametrize("kind, cutoff_hz", [("low", 1000.0), ("high", 200.0)])
def test_an_rbj_biquad_is_3_db_down_at_its_cutoff_with_q_of_a_butterworth(kind, cutoff_hz):
    sos = rbj_biquad(kind, cutoff_hz, 1 / np.sqrt(2), 44100)
    _, h = signal.sosfreqz(sos, worN=[cutoff_hz], fs=44100)
    assert 20 * np.log10(abs(h[0])) == pytest.approx(-3.01, abs=0.02)


def test_a_biquad_kind_is_a_closed_choice():
    with pytest.raises(ValueError):
        rbj_biquad("band", 1000.0, 0.7, 44100)


def test_noise_gain_predicts_the_rms_of_filtered_white_noise(rng):
    sos = signal.butter(2, [300.0, 2000.0], btype="bandpass", fs=44100, output="sos")
    noise = rng.standard_normal(44100 * 20)
    measured = float(np.std(signal.sosfilt(sos, noise)))
    assert measured == pytest.approx(noise_gain(sos), rel=0.01)


def test_an_impulse_response_is_long_enough_to_hold_its_energy():
    sos = signal.butter(1, 20.0, fs=44100, output="sos")  # a slow pole: a long tail
    h = impulse_response(sos)
    assert h[-1] ** 2 < 1e-12 * np.dot(h, h)


def test_every_range_error_has_one_wording():
    with pytest.raises(SoundscapeError) as caught:
        check_range("layer 'river': flow", 1.5, 0.0, 1.0)
    assert str(caught.value) == "layer 'river': flow 1.5 is out of range (0 to 1)"
    with pytest.raises(SoundscapeError, match="is out of range"):
        check_range("x", float("nan"), 0.0, 1.0)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_each_layer_refuses_an_out_of_range_parameter_in_the_same_words(name):
    cls = LAYERS[name]
    key, (low, high) = next(iter(cls.ranges.items()))
    with pytest.raises(SoundscapeError) as caught:
        cls.make_params({key: high + 1.0})
    assert (
        str(caught.value)
        == f"layer {name!r}: {key} {high + 1.0:g} is out of range ({low:g} to {high:g})"
    )


def test_a_span_layer_renders_whole_spans_on_a_grid_of_blocks(rng):
    layer = River(sample_rate=44100, rng=rng)
    layer.skip(3 * BLOCK_SIZE)  # lands inside the first span
    layer.render(BLOCK_SIZE)
    assert layer._span_number == 0
    layer.render(BLOCK_SIZE)  # block 4: the second span
    assert layer._span_number == 1 and len(layer._span_audio) == layer.span_size


def test_held_tilt_is_the_held_gain_difference_carried_across_spans(rng):
    from meditation.soundscape.layers.base import held_tilt

    hop, steps = 16, 8
    y = rng.standard_normal((2, hop * steps)).astype(np.float32)
    g_now = rng.uniform(0.5, 2.0, (steps, 2)).astype(np.float32)
    g_prev = rng.uniform(0.0, 1.0, (steps, 2)).astype(np.float32)
    last = np.array([0.25, -0.5], dtype=np.float32)
    out, new_last = held_tilt(y, g_now, g_prev, hop, last)
    previous = np.concatenate([last[:, None], y[:, :-1]], axis=1)
    k = np.arange(hop * steps) // hop
    expected = (y * g_now[k].T - previous * g_prev[k].T).T
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    assert out.shape == (hop * steps, 2) and out.dtype == np.float32
    np.testing.assert_array_equal(new_last, y[:, -1])


def test_every_cue_taking_layer_is_checked_for_cues_that_come_later():
    # (and has cues in tests/test_layers.py, where a layer that plays only on cues needs them)
    assert {name for name, cls in LAYERS.items() if cls.cue_actions} == set(CUES)


@pytest.mark.parametrize("name", sorted(CUES))
def test_a_layer_sounds_the_same_before_a_cue_whether_or_not_it_knows_of_it(name):
    # A render adds cues while speech is still being made (the speech places
    # them): a layer made again with one more, later cue and given the same
    # calls must have sounded the same up to that cue, sample for sample.
    sr = 12000
    early, late = CUES[name]
    params = PARAMS.get(name, [{}])[0]

    def make(cues):
        return LAYERS[name](sample_rate=sr, rng=np.random.default_rng(5), params=params, cues=cues)

    cls = LAYERS[name]
    cut = (
        int((late.time_s - cls.cue_lookahead_s) * sr) // BLOCK_SIZE * BLOCK_SIZE
    )  # renders ask for whole blocks
    assert cut >= 2 * BLOCK_SIZE
    n = int((late.time_s + 1.0) * sr)
    without = make(early).render(n)
    with_late = make([*early, late]).render(n)
    assert np.any(without[:cut])  # the early cues (or flapping) sound
    assert np.array_equal(with_late[:cut], without[:cut])
    assert not np.array_equal(with_late[cut:], without[cut:])  # and the late one is heard
    # Told of the late cue only after rendering up to it, it sounds as if it had known all along.
    told = make(early)
    first = told.render(cut)
    assert told.add_cues([late])
    assert np.array_equal(np.concatenate([first, told.render(n - cut)]), with_late)
