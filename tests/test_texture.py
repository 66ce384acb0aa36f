"""Each texture layer lands in the band-envelope statistics of the real sound it imitates (issue 20).

Measured as in McDermott & Simoncelli (2011), see ``texture.py``: 60 s at a
typical setting, the ranges measured on real recordings.
"""

import numpy as np
import pytest
from texture import measure

from meditation.soundscape.layers import render_layer

FS = 44100


def _texture(name, **params):
    x = render_layer(name, 60 * FS, sample_rate=FS, rng=np.random.default_rng(2026), params=params)
    return measure(x, FS)


def _water(t):
    # Real river, waterfall and rain: ~0.5-1.1 kurtosis, bands independent, no slow swell.
    assert 0.4 <= t.mean_kurtosis <= 1.5, t.summary()
    assert t.correlation <= 0.15, t.summary()
    assert t.share(0.5) <= 0.08, t.summary()


@pytest.mark.parametrize("surface", ["leaves", "roof", "window", "tent"])
def test_rain_on_every_surface_has_the_statistics_of_real_rain(surface):
    _water(_texture("rain", surface=surface))


@pytest.mark.parametrize("name", ["river", "stream", "waterfall"])
def test_running_water_has_the_statistics_of_a_real_river(name):
    # Bubbles ring independently (van den Doel), so bands do not swell together.
    _water(_texture(name))


def test_wind_gusts_unevenly_across_bands_like_real_wind():
    t = _texture("wind")
    # Real wind: kurtosis ~1, bands partly together (0.34), not a band-locked swell.
    assert t.mean_kurtosis >= 0.3, t.summary()
    assert 0.15 <= t.correlation <= 0.5, t.summary()


def test_wind_in_trees_is_a_rustle_of_independent_leaves():
    # Real wind in trees: bands almost independent (0.05), no slow swell.
    t = _texture("trees")
    assert t.correlation <= 0.15, t.summary()


def test_waves_rise_and_fall_together_slowly_like_real_surf():
    # Real waves: bands move together (0.44), a third of the movement at 0.5-2 Hz.
    t = _texture("waves")
    assert 0.3 <= t.correlation <= 0.6, t.summary()
    assert t.share(0.5) >= 0.2, t.summary()


def test_a_campfire_crackles_like_a_real_one():
    # Real campfire: rare loud crackles (kurtosis ~11), bands loosely together (0.22).
    t = _texture("campfire")
    assert t.mean_kurtosis >= 6, t.summary()
    assert 0.1 <= t.correlation <= 0.35, t.summary()


def test_crickets_pulse_fast_and_apart_like_real_ones():
    # Real crickets: over half the envelope power at 32-128 Hz, bands independent.
    t = _texture("crickets")
    assert t.correlation <= 0.15, t.summary()
    assert t.share(32.0) >= 0.4, t.summary()


def test_a_dawn_chorus_has_bands_where_songs_stand_out():
    # Real dawn chorus: songs stand out of the quiet in some bands (max band kurtosis ~10).
    t = _texture("birds")
    assert t.max_kurtosis >= 4, t.summary()


def test_a_singing_bowl_beats_in_all_bands_together():
    # Real singing bowl: bands move together (0.73), nearly half the movement the 2-8 Hz beating.
    t = _texture("bowl")
    assert t.correlation >= 0.5, t.summary()
    assert t.share(2.0) >= 0.3, t.summary()
