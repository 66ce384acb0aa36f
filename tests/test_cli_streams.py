"""The command line's own printing (issue 18, item 8): a closed or full stdout never turns a
finished render into a failure, and an unwritable stderr never turns a refusal into a crash."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")


def _shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MEDITATION_CACHE_DIR": str(cwd / "cache")}
    return subprocess.run(
        ["sh", "-c", command], cwd=cwd, capture_output=True, text=True, env=env, timeout=300
    )


RENDER = (
    f"{sys.executable} -m meditation render in.md --voice pyttsx3 --soundscape none "
    "--lead-in 0.5 --tail 0.5 --progress off"
)


@pytest.mark.parametrize("redirect", [">&-", ">/dev/full"], ids=["closed", "full"])
def test_a_render_succeeds_whatever_stdout_is(tmp_path, redirect):
    (tmp_path / "in.md").write_text("Hello there.\n")
    result = _shell(f"{RENDER} -o out.wav {redirect}", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    audio, rate = sf.read(tmp_path / "out.wav")
    assert len(audio) / rate > 1.0  # the render itself is whole
    if redirect == ">/dev/full":  # the lost summary is said once, on stderr
        assert result.stderr == (
            "meditation: warning: could not write to standard output (No space left on device)\n"
        )
    else:
        assert result.stderr == ""


def test_a_refusal_exits_2_when_stderr_is_full(tmp_path):
    (tmp_path / "in.md").write_text("Hello there.\n")
    result = _shell(f"{RENDER} -o out.wav --rate 99 2>/dev/full", tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert not (tmp_path / "out.wav").exists()


def test_a_render_with_stderr_full_and_stdout_closed_still_exits_0(tmp_path):
    (tmp_path / "in.md").write_text("Hello there.\n")
    result = _shell(f"{RENDER} -o out.wav >&- 2>/dev/full", tmp_path)
    assert result.returncode == 0
    assert (tmp_path / "out.wav").exists()
