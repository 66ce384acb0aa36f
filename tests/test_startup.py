"""Start-up: `meditation --help` and `meditation voices` load no heavy library.

Start-up time itself is measured in benchmarks/bench.py, never asserted here;
what a test can hold is the cause: numpy, scipy and onnxruntime stay unloaded.
"""

import subprocess
import sys

import pytest

_PROBE = """
import sys, io, contextlib
from meditation.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
heavy = sorted(m for m in ("numpy", "scipy", "onnxruntime", "onnx", "piper", "soundfile") if m in sys.modules)
print("heavy=" + ",".join(heavy))
print("lines=%d" % len(out.getvalue().splitlines()))
"""


def _heavy_modules(*args):
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    heavy, lines = result.stdout.strip().splitlines()[-2:]
    return heavy.removeprefix("heavy="), int(lines.removeprefix("lines="))


@pytest.mark.parametrize(
    "args", [("--help",), ("voices",), ("voices",)]
)  # the second listing reads the stored list
def test_help_and_voices_load_no_heavy_library(args):
    heavy, lines = _heavy_modules(*args)
    assert heavy == ""
    assert lines > 1


def test_stored_voice_list_is_what_espeak_says():
    from meditation.voices import pyttsx3_engine

    pyttsx3_engine._voice_list.cache_clear()
    listed = pyttsx3_engine._voice_list()
    assert "gmw/en-us" in [v.lower() for v in listed]
    assert pyttsx3_engine._stored_voice_list() == listed
    fresh = tuple(pyttsx3_engine._call("voices"))
    pyttsx3_engine._shutdown()
    assert fresh == listed
