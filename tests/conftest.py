"""Fixtures and settings every test module shares.

- Hypothesis profiles: ``default`` (what ``python -m pytest`` runs), ``ci`` (the same
  examples, derandomized so a failure on CI repeats anywhere) and ``deep`` (50 times as many
  examples, minutes not seconds): ``HYPOTHESIS_PROFILE=deep python -m pytest tests/test_properties.py``.
- ``folder``: the test's own folder holding its module's ``SCRIPT`` (as ``SCRIPT_NAME``,
  default ``short.md``).
- ``published`` and ``dream``: the dream rendered as finished publications, once per session
  (``tests/published.py``).
- The slow marker: ``python -m pytest -m "not slow"`` is the quick loop (see ``pyproject.toml``);
  a test that uses ``dream`` or ``published`` (any module's) is marked slow here.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from published import dream_render

_PROFILE = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("default", max_examples=800, **_PROFILE)
settings.register_profile("ci", max_examples=800, derandomize=True, print_blob=True, **_PROFILE)
settings.register_profile("deep", max_examples=40_000, **_PROFILE)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


# Module fixtures that render whole tracks (the dream, a breathing session, twenty minutes of a
# recording, seeded ambiences, lossy files): every test that uses one is slow by that alone.
_WHOLE_RENDERS = {"dream", "published", "rendered", "twenty_minutes", "seeded", "short_renders"}


def pytest_collection_modifyitems(items):
    """Mark ``slow`` every test that needs a whole render (the rest are marked where they are)."""
    for item in items:
        if _WHOLE_RENDERS & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def rng():
    """A seeded generator, so every test's randomness is reproducible."""
    return np.random.default_rng(20261125)


@pytest.fixture
def folder(tmp_path, request):
    """A folder of the test's own, holding its module's ``SCRIPT`` as ``SCRIPT_NAME`` (``short.md``)."""
    script = getattr(request.module, "SCRIPT", None)
    if script is not None:
        name = getattr(request.module, "SCRIPT_NAME", "short.md")
        (tmp_path / name).write_text(script, encoding="utf-8")
    return tmp_path


@pytest.fixture(scope="session")
def published(tmp_path_factory):
    """``published(".mp3")``: the dream rendered to that format with cover, chapters and sidecars, once a session."""
    return lambda suffix: dream_render(tmp_path_factory, suffix)


@pytest.fixture(scope="session")
def dream(published):
    """The dream as a finished ``.m4b`` with stems, captions and plot beside it (``tests/published.py``)."""
    return published(".m4b")


@pytest.fixture(autouse=True, scope="session")
def _private_speech_cache(tmp_path_factory):
    """Keep the tests' speech cache and record of written files out of the user's folders."""
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
