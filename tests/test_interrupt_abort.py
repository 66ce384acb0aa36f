"""Issue 18, item 4: an interrupt never ends in SIGABRT.

A daemon worker (the premix, the voice chain's producer, the meter or the
encoder) still inside pedalboard's native code when the interpreter
finalized made C++ print ``terminate called without an active exception``
and abort (13 of 25 tries, about 2 s into a pyttsx3 render with a long
tail). The CLI now stops and joins its workers before it returns.
"""

import os
import signal
import time

import pytest
from test_lifecycle import POSIX_ONLY, _finish, _start

SCRIPT = "# Rest\n\n" + "".join(
    f"Breathe in slowly, and let the shoulders fall, {n}.\n\n"
    for n in ("one", "two", "three", "four", "five", "six", "seven", "eight")
)
LINES = {
    signal.SIGINT: (130, "meditation: interrupted; no partial file was left"),
    signal.SIGTERM: (143, "meditation: terminated; no partial file was left"),
}


@POSIX_ONLY
def test_interrupts_across_the_mixing_window_never_abort(tmp_path):
    (tmp_path / "med.md").write_text(SCRIPT, encoding="utf-8")
    args = ["render", "med.md", "--voice", "pyttsx3", "--no-cache", "--tail", "10m", "-o", "o.m4b"]
    # 15 moments spread over start-up, speech and the premix at work (the window moves with load).
    for i, delay_s in enumerate(0.8 + 0.4 * k for k in range(15)):
        signum = (signal.SIGINT, signal.SIGTERM)[i % 2]
        proc = _start(args, tmp_path)
        try:
            time.sleep(delay_s)
            os.killpg(proc.pid, signum)
            out, err = _finish(proc)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        assert proc.returncode != -signal.SIGABRT, (delay_s, err)
        assert "terminate called" not in err, (delay_s, err)
        if proc.returncode == 0:
            continue  # finished before the signal (a fast machine): nothing to judge
        assert (proc.returncode, err.strip()) == LINES[signum], (delay_s, err)
    assert not (tmp_path / "o.m4b").exists() or proc.returncode == 0


@POSIX_ONLY
@pytest.mark.parametrize("delay_s", [0.02, 0.05, 0.1, 0.15, 0.2, 0.3])
def test_ctrl_c_during_start_up_imports_is_one_line_and_status_130(tmp_path, delay_s):
    """A KeyboardInterrupt in ``import datetime`` (before the CLI's handler) printed a traceback."""
    (tmp_path / "med.md").write_text(SCRIPT, encoding="utf-8")
    proc = _start(["render", "med.md", "--voice", "pyttsx3", "-o", "o.wav"], tmp_path)
    try:
        time.sleep(delay_s)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = _finish(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    if "init_import_site" in err:
        pytest.skip("the signal came before Python itself had started (its own site module)")
    assert (proc.returncode, err.strip()) == LINES[signal.SIGINT], err
