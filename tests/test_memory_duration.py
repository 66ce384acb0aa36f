"""``--duration`` once doubled a render's memory (1.16 GB against 0.5 GB): the lossy
output's true peak was checked on the whole file decoded at once, so memory grew
with the track's length. It is streamed now: a ten-minute cut costs what the
script's own length does."""

import subprocess
import sys

_PEAK_RSS = """
import resource, sys
from meditation.cli import main
code = main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""

SCRIPT = "# Rest\n\n" + "".join(
    f"Breathe in, and let the shoulders fall, {n}. [pause 6s]\n\n"
    for n in ("one", "two", "three", "four", "five", "six")
)


def _peak_kib(tmp_path, name, *extra):
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _PEAK_RSS,
            "render",
            str(tmp_path / "s.md"),
            "-o",
            str(tmp_path / name),
            "--voice",
            "pyttsx3",
            "--progress",
            "off",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


def test_duration_does_not_grow_peak_memory(tmp_path):
    (tmp_path / "s.md").write_text(SCRIPT, encoding="utf-8")
    plain = _peak_kib(tmp_path, "plain.m4a")
    stretched = _peak_kib(tmp_path, "ten.m4a", "--duration", "10m")
    # Before: the ten-minute M4A was decoded whole to check its true peak (+1.5 GB here).
    assert stretched <= 1.15 * plain, (plain, stretched)
