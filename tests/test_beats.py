"""The beats layer: frequencies a listener's two ears receive, smooth gating, scene glides."""

import numpy as np
import pytest
import soundfile as sf
from measure import max_click_ratio
from scipy import signal

from meditation.cli import main
from meditation.errors import SoundscapeError
from meditation.soundscape import AmbienceStream, load_preset, plan_ambience
from meditation.soundscape.layers import LAYERS, Cue
from meditation.soundscape.layers.beats import Beats, beats
from meditation.timeline import SceneSpan, Timeline

SR = 8000  # beats are low tones: a low rate keeps the long FFTs cheap


def _peak_hz(x, sample_rate, near_hz, span_hz=3.0):
    """Frequency of the strongest spectral peak near ``near_hz``: Hann-windowed FFT, parabolic interpolation."""
    x = np.asarray(x, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / sample_rate)
    band = np.flatnonzero(np.abs(freqs - near_hz) <= span_hz)
    k = band[np.argmax(spectrum[band])]
    a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-30)
    offset = 0.5 * (a - c) / (a - 2 * b + c)
    return float(freqs[k] + offset * (freqs[1] - freqs[0])), spectrum, freqs


def _ambient_stems(tmp_path, *args):
    out = tmp_path / "out.wav"
    stems = tmp_path / "stems"
    code = main(
        [
            "ambient",
            *args,
            "-o",
            str(out),
            "--stems",
            str(stems),
            "--sample-rate",
            str(SR),
            "--progress",
            "off",
        ]
    )
    assert code == 0
    return {p.stem: sf.read(p, dtype="float64", always_2d=True)[0] for p in stems.glob("*.wav")}


def test_registered_with_description():
    assert LAYERS["beats"] is Beats
    assert Beats.description and "\n" not in Beats.description


def test_binaural_stem_has_each_ear_at_carrier_minus_and_plus_half_the_beat(tmp_path):
    # The shipped sleep preset, only its beats layer (--layers), as a stem: 180 Hz carrier, 10 Hz beat.
    stems = _ambient_stems(
        tmp_path, "--soundscape", "sleep", "--layers", "beats", "--duration", "60"
    )
    assert set(stems) == {"beats"}
    x = stems["beats"]
    left_hz, left_spec, freqs = _peak_hz(x[:, 0], SR, 175.0)
    right_hz, right_spec, _ = _peak_hz(x[:, 1], SR, 185.0)
    assert left_hz == pytest.approx(175.0, abs=0.05)
    assert right_hz == pytest.approx(185.0, abs=0.05)
    # Each ear hears only its own tone: the other ear's frequency is far down.
    other = np.argmin(np.abs(freqs - 185.0))
    assert 20 * np.log10(left_spec.max() / left_spec[other - 2 : other + 3].max()) > 40
    # No beat in the air: each channel's envelope is flat (the listener makes the beat).
    env = np.abs(signal.hilbert(x[20 * SR : 40 * SR, 0]))
    assert env.std() / env.mean() < 0.01


def test_monaural_beats_in_the_sound_itself(rng):
    x = beats(30 * SR, sample_rate=SR, rng=rng, mode="monaural", carrier_hz=200.0, beat_hz=4.0)
    assert np.array_equal(x[:, 0], x[:, 1])
    env = np.abs(signal.hilbert(x[:, 0].astype(np.float64)))
    beat_hz, _, _ = _peak_hz(env - env.mean(), SR, 4.0, span_hz=2.0)
    assert beat_hz == pytest.approx(4.0, abs=0.05)


@pytest.fixture(scope="module")
def focus_stem(tmp_path_factory):
    """The shipped focus preset's isochronic beats (220 Hz pulsing at 14 Hz), as a stem."""
    return _ambient_stems(
        tmp_path_factory.mktemp("focus"),
        "--soundscape",
        "focus",
        "--layers",
        "beats",
        "--duration",
        "40",
    )["beats"]


def test_isochronic_envelope_pulses_at_the_beat_frequency(focus_stem):
    x = focus_stem[12 * SR : 38 * SR, 0]  # clear of the track fades
    env = np.abs(signal.hilbert(x))
    beat_hz, spectrum, freqs = _peak_hz(env - env.mean(), SR, 14.0, span_hz=5.0)
    assert beat_hz == pytest.approx(14.0, abs=0.05)
    # The gate is deep: the tone is off between pulses.
    assert np.percentile(env, 5) < 0.05 * np.percentile(env, 95)
    carrier_hz, _, _ = _peak_hz(x, SR, 220.0)
    assert carrier_hz == pytest.approx(220.0, abs=0.05)


def test_isochronic_gate_never_clicks(focus_stem):
    x = focus_stem[:, 0]
    layer = Beats(
        sample_rate=SR,
        rng=np.random.default_rng(0),
        params=load_preset("focus").layers["beats"].params,
    )
    # The layer's own threshold, scaled to the stem's level (level_db, mastering gain).
    threshold = layer.click_threshold() * np.abs(x).max() / layer._amp
    assert np.abs(np.diff(x)).max() <= threshold
    # The threshold would catch a hard gate: the same tone switched on and off by a square wave.
    t = np.arange(len(x)) / SR
    hard = np.abs(x).max() * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 14 * t) > 0)
    assert np.abs(np.diff(hard)).max() > 3 * threshold


def _glide_plan(tmp_path, fade_s=8.0):
    preset = tmp_path / "glide.toml"
    preset.write_text(
        f"""
fade_s = 4.0
[layers.beats]
carrier_hz = 200.0
beat_hz = 10.0
[layers.beats.scenes]
two = {{ beat_hz = 6.0, carrier_hz = 150.0 }}
[scenes.default]
beats = 0.0
[scenes.two]
beats = 0.0
fade_s = {fade_s}
""",
        encoding="utf-8",
    )
    change = 20 * SR
    timeline = Timeline(
        SR, 50 * SR, (), (SceneSpan("One", 0, change), SceneSpan("Two", change, 50 * SR))
    )
    return plan_ambience(str(preset), script=None, timeline=timeline, seed=3), change


def _instantaneous_hz(x, hop):
    """(carrier, beat) in hertz per hop, from the phases of the two ears' analytic signals."""
    phase = np.unwrap(np.angle(signal.hilbert(x, axis=0)), axis=0)
    left, right = phase[::hop, 0], phase[::hop, 1]
    dt = hop / SR
    beat = np.diff(right - left) / (2 * np.pi * dt)
    carrier = np.diff(right + left) / (4 * np.pi * dt)
    return carrier, beat


def test_scene_change_glides_monotonically_over_the_crossfade(tmp_path):
    plan, change = _glide_plan(tmp_path, fade_s=8.0)
    x = AmbienceStream(plan).render(50 * SR)["beats"].astype(np.float64)
    hop = SR // 10
    carrier, beat = _instantaneous_hz(x, hop)
    t = (np.arange(len(beat)) + 0.5) * hop / SR
    inner = (t > 2) & (t < 48)  # away from the analytic signal's edge effects
    before, after = inner & (t < 19.5), inner & (t > 28.5)
    assert np.allclose(beat[before], 10.0, atol=0.02) and np.allclose(beat[after], 6.0, atol=0.02)
    assert np.allclose(carrier[before], 200.0, atol=0.02) and np.allclose(
        carrier[after], 150.0, atol=0.02
    )
    during = (t > 19.5) & (t < 28.5)
    assert np.all(np.diff(beat[during]) <= 0.01) and np.all(np.diff(carrier[during]) <= 0.01)
    # It lasts the crossfade: it leaves 10 Hz at the scene change, passes the
    # (geometric) midway point halfway through, and reaches 6 Hz 8 s later.
    # The raised-cosine ends are slow, so the measurable motion starts a little after 20 s.
    moving = t[(beat < 9.95) & (beat > 6.05)]
    assert 20.0 <= moving.min() < 20.8 and 27.2 < moving.max() <= 28.0
    midway = t[during][np.argmin(np.abs(beat[during] - np.sqrt(60.0)))]
    assert midway == pytest.approx(24.0, abs=0.15)
    # And without a click at any point of it.
    assert max_click_ratio(x[19 * SR : 29 * SR]) < 1.5


def test_glide_cue_at_any_moment_and_validation(rng):
    layer = Beats(
        sample_rate=SR,
        rng=rng,
        params={"beat_hz": 10.0},
        cues=[Cue(5.0, "glide", {"beat_hz": 2.0, "glide_s": 4.0})],
    )
    _, beat = layer.frequencies_hz(0, 12 * SR)
    assert beat[4 * SR] == pytest.approx(10.0, abs=1e-9) and beat[int(9.5 * SR)] == pytest.approx(
        2.0, abs=1e-9
    )
    assert np.all(np.diff(beat) <= 0)
    for bad in (
        {"mode": "stereo"},
        {"beat_hz": 100.0},
        {"carrier_hz": 5.0},
        {"scenes": {"x": {"beat_hz": "slow"}}},
        {"scenes": {"x": {"pitch": 3}}},
    ):
        with pytest.raises(SoundscapeError):
            Beats.make_params(bad)
    with pytest.raises(SoundscapeError):
        Beats(sample_rate=SR, rng=rng, cues=[Cue(1.0, "glide", {"tempo": 3})])


def test_level_is_nominal_and_quiet_under_the_voice_in_the_presets():
    from meditation.soundscape.layers import NOMINAL_RMS_DB

    for mode in ("binaural", "monaural", "isochronic"):
        x = beats(10 * SR, sample_rate=SR, rng=np.random.default_rng(1), mode=mode)
        assert 10 * np.log10(np.mean(x.astype(np.float64) ** 2)) == pytest.approx(
            NOMINAL_RMS_DB, abs=0.3
        )
    for name in ("sleep", "focus"):
        assert load_preset(name).layers["beats"].level_db <= -15.0
