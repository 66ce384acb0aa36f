"""The palette's layers (issue 20) keep the layer contract and do what their parameters say."""

import numpy as np
import pytest
from measure import rms_db

from meditation.errors import SoundscapeError
from meditation.soundscape.layers import LAYERS, NOMINAL_RMS_DB, Cue, render_layer

FS = 22050
# Layers that sound all the time, at about the nominal level.
TEXTURES = [
    "rain",
    "stream",
    "waterfall",
    "trees",
    "waves",
    "campfire",
    "crickets",
    "birds",
    "underwater",
]
EVENTS = ["bowl", "temple-bell", "chimes", "thunder", "owl", "frogs"]
PALETTE = TEXTURES + EVENTS
# Events that only sound when asked: a cue makes them heard in a short render.
_CUED = {
    "temple-bell": [Cue(0.5, "strike")],
    "thunder": [Cue(0.5, "roll")],
    "owl": [Cue(0.5, "hoot")],
    "frogs": [Cue(0.5, "chorus", {"duration_s": 3.0})],
}


def _render(name, seconds, seed=7, sample_rate=FS, **params):
    return render_layer(
        name,
        int(seconds * sample_rate),
        sample_rate=sample_rate,
        rng=np.random.default_rng(seed),
        params=params,
        cues=_CUED.get(name, ()),
    )


def test_every_palette_layer_is_registered_with_a_description():
    for name in PALETTE:
        assert name in LAYERS and len(LAYERS[name].description.split()) >= 5


@pytest.mark.parametrize("name", PALETTE)
def test_same_seed_same_audio_another_seed_other_audio_and_within_full_scale(name):
    a = _render(name, 12)
    assert a.dtype == np.float32 and a.shape == (12 * FS, 2)
    assert np.isfinite(a).all() and np.abs(a).max() <= 1.0
    assert np.any(a), f"{name} is silent"
    assert np.array_equal(a, _render(name, 12))
    assert not np.array_equal(a, _render(name, 12, seed=8))


@pytest.mark.parametrize("name", PALETTE)
def test_chunking_does_not_change_the_audio(name):
    whole = _render(name, 8)
    layer = LAYERS[name](sample_rate=FS, rng=np.random.default_rng(7), cues=_CUED.get(name, ()))
    parts, left = [], len(whole)
    for size in [1, 999, 8192, 12345, 30000]:
        parts.append(layer.render(min(size, left)))
        left -= len(parts[-1])
    parts.append(layer.render(left))
    assert np.array_equal(np.concatenate(parts), whole)


@pytest.mark.parametrize("name", TEXTURES)
def test_a_texture_sits_near_the_nominal_level_in_both_ears(name):
    x = _render(name, 60)
    assert abs(rms_db(x) - NOMINAL_RMS_DB) < 3.0, rms_db(x)
    # A few birds sit where they sit: one ear may hear more of them.
    assert abs(rms_db(x[:, 0]) - rms_db(x[:, 1])) < (5.0 if name == "birds" else 3.0)


def test_rain_grows_from_drizzle_to_downpour_in_drops_and_hiss():
    def drops_per_s(x):
        # Drops stand out as local peaks far above the median level.
        mono = np.abs(x.mean(axis=1))
        return np.count_nonzero(mono > 8 * np.median(mono)) / (len(x) / FS)

    drizzle = _render("rain", 20, intensity=0.0)
    downpour = _render("rain", 20, intensity=1.0)
    assert drops_per_s(drizzle) > 0  # single drops are heard
    # The hiss takes over: drops stand out far less often in a downpour.
    assert drops_per_s(downpour) < drops_per_s(drizzle)


def _spectrum(x):
    spectrum = np.abs(np.fft.rfft(x.mean(axis=1))) ** 2
    return np.fft.rfftfreq(len(x), 1 / FS), spectrum / spectrum.sum()


def centroid(x):
    f, power = _spectrum(x)
    return float(np.sum(f * power))


def test_rain_surfaces_differ_where_a_listener_would_hear_them():
    c = {s: centroid(_render("rain", 10, surface=s)) for s in ["leaves", "roof", "window", "tent"]}
    # A tent drums low, leaves and a window ring high.
    assert c["tent"] < c["roof"] < min(c["leaves"], c["window"]), c


def test_an_unknown_rain_surface_is_one_clear_error():
    with pytest.raises(SoundscapeError) as caught:
        LAYERS["rain"].make_params({"surface": "lake"})
    message = str(caught.value)
    assert "\n" not in message and "lake" in message and "leaves" in message


@pytest.mark.parametrize(
    "name, cue", [("thunder", "roll"), ("owl", "hoot"), ("frogs", "chorus"), ("bowl", "strike")]
)
def test_a_cue_layer_is_silent_until_its_cue_when_it_does_not_sound_on_its_own(name, cue):
    quiet = {"thunder": {"rate_per_min": 0.0}, "owl": {"rate_per_min": 0.0}}.get(
        name, {"activity": 0.0} if name == "frogs" else {"interval_s": 0.0}
    )
    x = render_layer(
        name,
        10 * FS,
        sample_rate=FS,
        rng=np.random.default_rng(3),
        params=quiet,
        cues=[Cue(4.0, cue)],
    )
    assert not np.any(x[: 4 * FS]), "sound before the cue"
    assert rms_db(x[4 * FS : 7 * FS]) > NOMINAL_RMS_DB - 20


def test_a_cue_option_that_does_not_exist_is_one_clear_error():
    with pytest.raises(SoundscapeError, match="thunder.*loudness"):
        LAYERS["thunder"](
            sample_rate=FS, rng=np.random.default_rng(1), cues=[Cue(1.0, "roll", {"loudness": 1})]
        )


def test_the_chimes_ring_on_a_pentatonic_scale():
    x = _render("chimes", 60, bars=5, root_hz=500.0)
    spectrum = np.abs(np.fft.rfft(x.mean(axis=1)))
    f = np.fft.rfftfreq(len(x), 1 / FS)
    for semitones in (0, 2, 4, 7, 9):
        pitch = 500.0 * 2 ** (semitones / 12)
        near = (f > pitch * 0.99) & (f < pitch * 1.01)
        between = (f > pitch * 1.025) & (f < pitch * 1.045)  # a quarter-tone up: no bar
        assert spectrum[near].max() > 10 * np.median(spectrum[between])


def test_the_birds_sing_several_kinds_of_song_not_one_call():
    from meditation.soundscape.layers.birds import SONGS

    birds = LAYERS["birds"](sample_rate=FS, rng=np.random.default_rng(1))
    assert len({b.kind for b in birds._birds}) == len(SONGS)
    # Two songs of the same bird differ.
    rng = np.random.default_rng(2)
    a, b = birds._song(birds._birds[0], rng), birds._song(birds._birds[0], rng)
    assert len(a) != len(b) or not np.allclose(a, b)


def test_underwater_is_muffled_swells_as_asked_and_bubbles_now_and_then():
    from scipy import signal

    def swing_db(x):
        """Spread of the level from second to second."""
        mono = x.mean(axis=1)
        seconds = mono[: len(mono) // FS * FS].reshape(-1, FS)
        return float(np.std(10 * np.log10(np.mean(seconds**2, axis=1))))

    def bubbles(x):
        """Bursts in the bubbles' band standing 10 dB above its median (the rumble's own)."""
        sos = signal.butter(4, [600.0, 1300.0], btype="bandpass", fs=FS, output="sos")
        band = signal.sosfilt(sos, x.mean(axis=1))
        n = int(0.02 * FS)
        energy = np.mean(band[: len(band) // n * n].reshape(-1, n) ** 2, axis=1)
        loud = energy > 10 * np.median(energy)
        return int(np.count_nonzero(loud[1:] & ~loud[:-1]))

    f, power = _spectrum(_render("underwater", 20))
    assert power[f > 1000].sum() < 0.02  # the highs are gone
    assert centroid(_render("underwater", 20, muffle_hz=150.0)) < centroid(
        _render("underwater", 20, muffle_hz=800.0)
    )
    assert swing_db(_render("underwater", 60, swell=0.0)) < 0.5
    assert swing_db(_render("underwater", 60, swell=1.0)) > 2.0
    heard = {
        n: bubbles(_render("underwater", 60, swell=0.0, bubbles_per_min=n)) for n in (0, 6, 60)
    }
    assert heard[0] == 0 and 2 <= heard[6] < heard[60], heard
