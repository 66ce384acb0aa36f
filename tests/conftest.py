import numpy as np
import pytest


@pytest.fixture
def rng():
    """A seeded generator, so every test's randomness is reproducible."""
    return np.random.default_rng(20261125)
