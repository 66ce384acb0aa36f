"""Benchmark the session features: a sleep story's long tail, looped recordings, the voice chain.

Run ``python benchmarks/bench_session.py`` (a few minutes). It reports:

* the real-time factor (seconds of audio per second of wall time) of a short
  story rendered with ``--tail 30m --fade-out 10m`` against ``ambient`` with
  the same preset and length (the tail should cost no more than ambience);
* peak memory (ru_maxrss) of ``ambient --bed`` for 10 and 60 minutes;
* what the voice chain costs per minute of voice.

Each render runs in a fresh process (median of ``--runs``), timed from outside.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

STORY = """---
title: Sleep bench
---
# Rest

Let the day go. Let your shoulders fall, and your hands grow heavy.

The night is quiet, and there is nothing left to do.
"""

_RUN = """
import resource, sys, time
from meditation.cli import main
t = time.perf_counter()
code = main(sys.argv[1:])
print("ELAPSED", time.perf_counter() - t, "RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""


def run(args: list[str]) -> tuple[float, int]:
    """(seconds inside main, peak RSS in kB) of one CLI run in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _RUN, *args, "--progress", "off"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    fields = done.stdout.split()
    return float(fields[fields.index("ELAPSED") + 1]), int(fields[fields.index("RSS_KB") + 1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--voice", default="piper:joe")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        story = tmp / "story.md"
        story.write_text(STORY, encoding="utf-8")
        render = [
            "render",
            str(story),
            "--voice",
            args.voice,
            "--soundscape",
            "sleep",
            "--tail",
            "30m",
            "--fade-out",
            "10m",
        ]
        run(
            [*render, "-o", str(tmp / "warm.flac")]
        )  # fills the speech cache: the tail is what we measure
        timings = tmp / "t.json"
        run([*render, "-o", str(tmp / "warm.flac"), "--timings", str(timings)])
        length_s = json.loads(timings.read_text())["duration"]
        story_s = statistics.median(
            run([*render, "-o", str(tmp / f"s{i}.flac")])[0] for i in range(args.runs)
        )
        ambient = ["ambient", "--soundscape", "sleep", "--duration", f"{length_s:.3f}"]
        ambient_s = statistics.median(
            run([*ambient, "-o", str(tmp / f"a{i}.flac")])[0] for i in range(args.runs)
        )
        figures["track_s"] = length_s
        figures["sleep_story_rtf"] = length_s / story_s
        figures["ambient_rtf"] = length_s / ambient_s
        print(
            f"track {length_s:.0f} s: sleep story {figures['sleep_story_rtf']:.1f}x real time, ambient {figures['ambient_rtf']:.1f}x",
            flush=True,
        )

        sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
        import numpy as np
        import soundfile as sf
        from test_recording import make_recording  # the tests' surf-like material

        bed = tmp / "surf.flac"
        sf.write(bed, make_recording(), 48000)
        for minutes in (10, 60):
            seconds, rss = run(
                [
                    "ambient",
                    "--soundscape",
                    "none",
                    "--bed",
                    str(bed),
                    "--duration",
                    f"{minutes}m",
                    "-o",
                    str(tmp / f"b{minutes}.flac"),
                ]
            )
            figures[f"bed_{minutes}min_rss_mb"] = rss / 1024
            figures[f"bed_{minutes}min_rtf"] = minutes * 60 / seconds

        from meditation.voicechain import VoiceChain
        from meditation.voicefx import STYLES

        sr = 44100
        voice = (0.1 * np.random.default_rng(0).standard_normal(120 * sr)).astype(np.float32)
        chain = VoiceChain(
            STYLES["gentle"],
            sr,
            lambda s, n: voice[s : s + n] if s + n <= len(voice) else np.zeros(n, np.float32),
        )
        t = time.perf_counter()
        chain.render(len(voice))
        figures["voice_chain_s_per_voice_min"] = (time.perf_counter() - t) / 2
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"{key:<{width}}  {value:8.2f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
