"""What every registered layer promises, checked for each one at once (a new layer joins by itself).

A layer is a streaming generator: asked for audio in chunks of any size, at any
sample rate, it gives the same samples (pedalboard's test for every effect),
finite and in range, and silent where nothing is planned.
"""

import numpy as np
import pytest
from layer_cases import PARAMS, all_cues, resolve, write_recording
from measure import render_in_chunks

from meditation.soundscape.layers import LAYERS

SAMPLE_RATES = (22050, 44100, 48000)
CHUNKS = (1000, 4097, 33333)


def _cases():
    for name in sorted(LAYERS):
        variants = PARAMS.get(name, [{}])
        for params in variants:
            label = ",".join(f"{k}={v}" for k, v in params.items() if isinstance(v, (str, int)))
            yield pytest.param(name, params, id=f"{name}-{label}" if label else name)


CASES = list(_cases())


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    return write_recording(tmp_path_factory.mktemp("layers") / "loop.wav")


def _length(sample_rate):
    # Several internal blocks and spans (the drone's are 64k samples), ending mid-block,
    # and long enough for every typical cue.
    return max(3 * 65536, 5 * sample_rate) + 1234


def _make(name, params, sample_rate, recording, cues=None):
    return LAYERS[name](
        sample_rate=sample_rate,
        rng=np.random.default_rng(3),
        params=resolve(params, recording),
        cues=all_cues(name) if cues is None else cues,
    )


_whole: dict[tuple, np.ndarray] = {}


def _whole_render(name, params, sample_rate, recording):
    """The layer's audio asked for in one call, made once for all chunk sizes."""
    key = (name, repr(params), sample_rate)
    if key not in _whole:
        _whole[key] = _make(name, params, sample_rate, recording).render(_length(sample_rate))
    return _whole[key]


@pytest.mark.parametrize("chunk", CHUNKS)
@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("name, params", CASES)
def test_a_layer_gives_the_same_samples_in_any_chunk_size(
    name, params, sample_rate, chunk, recording
):
    whole = _whole_render(name, params, sample_rate, recording)
    chunked = render_in_chunks(_make(name, params, sample_rate, recording), len(whole), chunk)
    assert np.array_equal(chunked, whole)


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("name, params", CASES)
def test_a_layer_sounds_in_range_and_only_where_planned(name, params, sample_rate, recording):
    n = _length(sample_rate)
    x = _whole_render(name, params, sample_rate, recording)
    assert x.shape == (n, 2) and x.dtype == np.float32
    assert np.isfinite(x).all() and np.abs(x).max() <= 1.0
    assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) > 1e-3  # it makes sound (-60 dBFS)
    cues = all_cues(name)
    if not cues or np.any(_make(name, params, sample_rate, recording, cues=[]).render(n)):
        return  # it sounds without cues: nothing in it is unplanned silence
    # A layer that plays only on cues is silent until the first one (less what it looks
    # ahead), and its first sound comes right at that cue, in this sample rate's seconds.
    first_s = min(c.time_s for c in cues)
    quiet_until = int((first_s - LAYERS[name].cue_lookahead_s) * sample_rate)
    assert not np.any(x[: max(quiet_until, 0)])
    onset = int(first_s * sample_rate)
    assert np.any(x[onset : onset + sample_rate // 20])  # within 50 ms
