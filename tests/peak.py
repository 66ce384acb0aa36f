"""Peak memory of ``meditation`` commands, each run in a child process of its own."""

from __future__ import annotations

import subprocess
import sys

_MEASURED = """
import resource, sys
from meditation.cli import main
code = main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""


def peak_kib(*commands: list[str], timeout: float = 3600) -> list[int]:
    """The peak resident memory (KiB) of each command (``meditation`` arguments), which must succeed.

    The commands run side by side: each child's peak is its own, and the test waits for the
    longest rather than for their sum.
    """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _MEASURED, *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in commands
    ]
    peaks = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, err[-2000:]
            peaks.append(int(out.split()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return peaks
