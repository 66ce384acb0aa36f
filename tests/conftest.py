import numpy as np
import pytest


@pytest.fixture
def rng():
    """A seeded generator, so every test's randomness is reproducible."""
    return np.random.default_rng(20261125)


@pytest.fixture(autouse=True, scope="session")
def _private_speech_cache(tmp_path_factory):
    """Keep the tests' speech cache out of the user's cache folder."""
    import os

    folder = tmp_path_factory.mktemp("speech-cache")
    old = os.environ.get("MEDITATION_CACHE_DIR")
    os.environ["MEDITATION_CACHE_DIR"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("MEDITATION_CACHE_DIR", None)
    else:
        os.environ["MEDITATION_CACHE_DIR"] = old
