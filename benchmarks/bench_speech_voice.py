"""The speech stage alone at several ``speech_jobs`` for one voice: wall time, speed-up, CPU time.

Every spoken segment of the dream (planned at rate 0.9) is spoken at rate 0.9
with no cache, once per setting and run, settings interleaved so load on a
shared machine hits them alike; the median wall time of the runs and its
ratio to one job are printed with the load average. The voice is loaded
(and warmed on one sentence) before any timing.

    python benchmarks/bench_speech_voice.py [--voice hibari:heart] [--jobs 1,2] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from meditation.script import read_script  # noqa: E402
from meditation.segments import plan_segments  # noqa: E402
from meditation.settings import DEFAULT_SCRIPT  # noqa: E402
from meditation.speech import synthesize  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voice", default="hibari:heart")
    parser.add_argument("--jobs", default="1,2", help="speech_jobs settings, e.g. 1,2")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    jobs = [int(j) for j in args.jobs.split(",")]
    texts = [s.text for s in plan_segments(read_script(DEFAULT_SCRIPT), rate=0.9) if s.spoken]
    synthesize(texts[:1], voice=args.voice, rate=0.9, sample_rate=24000, jobs=1)  # load, warm
    walls: dict[int, list[float]] = {j: [] for j in jobs}
    cpus: dict[int, list[float]] = {j: [] for j in jobs}
    speech_s = 0.0
    for _ in range(args.runs):
        for j in jobs:
            start, cpu = time.perf_counter(), time.process_time()
            audio = synthesize(texts, voice=args.voice, rate=0.9, sample_rate=24000, jobs=j)
            walls[j].append(time.perf_counter() - start)
            cpus[j].append(time.process_time() - cpu)
            speech_s = sum(len(a) for a in audio) / 24000
    base = statistics.median(walls[jobs[0]])
    print(
        f"{args.voice}: {len(texts)} segments, {speech_s:.1f} s of speech, load {os.getloadavg()}"
    )
    for j in jobs:
        wall = statistics.median(walls[j])
        print(
            f"  jobs {j}: {wall:6.2f} s wall (median of {args.runs}), {speech_s / wall:6.1f}x "
            f"real time, {base / wall:.2f}x jobs {jobs[0]}'s speed, "
            f"{statistics.median(cpus[j]):.2f} s CPU"
        )


if __name__ == "__main__":
    main()
