import numpy as np
import pytest


@pytest.fixture
def rng():
    """A seeded generator, so every test's randomness is reproducible."""
    return np.random.default_rng(20261125)


@pytest.fixture(autouse=True, scope="session")
def _private_speech_cache(tmp_path_factory):
    """Keep the tests' speech cache and record of written files out of the user's folders."""
    import os

    folder = tmp_path_factory.mktemp("speech-cache")
    state = tmp_path_factory.mktemp("state")
    saved = {k: os.environ.get(k) for k in ("MEDITATION_CACHE_DIR", "MEDITATION_STATE_DIR")}
    os.environ["MEDITATION_CACHE_DIR"] = str(folder)
    os.environ["MEDITATION_STATE_DIR"] = str(state)
    yield folder
    for key, old in saved.items():
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old
