"""The benchmark's quick mode runs end to end, so it cannot rot (figures are not asserted: machines are noisy)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_quick_benchmark_writes_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TMPDIR": str(scratch)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # The benchmark's scratch folder is removed (onnxruntime leaves its own ".ses" session file there).
    assert not list(scratch.glob("meditation-*"))
    data = json.loads(out.read_text())
    for key in (
        "overhead_ratio",
        "soundscape_rtf",
        "brown_noise_ratio",
        "end_to_end_rtf",
        "memory_ratio_60_10",
    ):
        assert math.isfinite(data[key]) and data[key] > 0, key
    assert data["machine"]["cores"] >= 1
    # Every layer of the palette alone and all at once, and every neural voice.
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_layers import palette

    assert set(data["layers"]["layer_rtf"]) == set(palette()) and len(palette()) >= 17
    assert all(x > 0 for x in data["layers"]["layer_rtf"].values())
    assert data["layers"]["all_layers_rtf"] > 0
    assert {"piper:joe", "hibari:heart"} <= set(data["voices"])
    assert all(v["rtf"] > 0 for v in data["voices"].values())
    assert all(
        data["startup_s"][key] > 0 for key in ("python_bare", "help", "voices", "render_help")
    )
    assert data["ambient_floors"]["startup_s"] > 0  # ambient's start-up (issue 21)
    assert set(data["stages"]) >= {
        "parse",
        "speech_piper",
        "speech_pyttsx3",
        "soundscape",
        "mix_master",
        "encode",
        "end_to_end",
    }
    # The end-to-end render cannot be faster than the voice speaking the text on every core at once.
    cores = data["machine"]["cores"]
    assert data["engine_overhead_ratio"] > 0.8 / cores and data["overhead_ratio"] > 0.8 / cores
    # Both floors were timed beside each render: stock Piper and our engine speaking in turn.
    assert all(
        r["speech_floor_s"] > 0 and r["engine_speech_floor_s"] > 0 for r in data["overhead_runs"]
    )
    assert "overhead ratio" in result.stdout
    floors = data["ambient_floors"]
    assert math.isfinite(floors["ambient_numpy_ratio"]) and floors["ambient_numpy_ratio"] > 0
    if floors["sox_ratio"] is None:
        assert "sox" in floors["sox_note"]
    else:
        assert math.isfinite(floors["sox_ratio"]) and floors["sox_ratio"] > 0
    assert "x sox" in result.stdout or "sox is not on the PATH" in result.stdout
    # Every output format's encoder is timed beside lameenc.
    formats = data["formats"]["encoders"]
    assert {
        "lameenc (in process)",
        ".m4a (render: PyAV AAC)",
        ".opus (render: soxr + PyAV)",
    } <= set(formats)
    assert all(math.isfinite(v["rtf"]) and v["rtf"] > 0 for v in formats.values())
