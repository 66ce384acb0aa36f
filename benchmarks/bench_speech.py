"""Benchmark speech on every core: the dream end to end at several ``speech_jobs``
against the sequential speech floor.

The floor is the one issue 21 names, taken as independently as we can
(``floors.py``): stock Piper speaking every segment one after another in one
session with one thread, plus lameenc encoding the render's own decoded
samples. Beside it, our engine speaking the same texts in turn (the
renderer's own sequential floor, what ``speech_jobs 1`` does). Each run
times the floors and then every setting's render, side by side, so load on a
shared machine hits them alike; the ratio (end to end ÷ floor) is taken per
run and the median of the runs reported. The renders run in this process
with the voice model loaded, as in ``bench.py``.

The whole measurement runs once on every core this process may use and once
pinned to one core (``taskset -c 0``, via CPU affinity), so the scaling
shows; peak RSS of each setting comes from fresh ``meditation render``
processes. The load average is printed beside the figures: on a shared
machine only the ratios measured side by side mean much.

    python benchmarks/bench_speech.py [--runs 3] [--jobs 1,2,auto] [--rate script|0.8] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from bench import QUICK_SCRIPT, _machine, _peak_rss_mb  # noqa: E402 - after the path set-up
from floors import (  # noqa: E402 - after the path set-up
    StockPiper,
    decoded,
    end_to_end_settings,
    engine_s,
    lame_s,
)
from floors import script_rate as floors_script_rate  # noqa: E402 - after the path set-up

from meditation.render import render  # noqa: E402
from meditation.script import read_script  # noqa: E402
from meditation.segments import plan_segments  # noqa: E402
from meditation.speech import auto_speech_jobs, available_cores  # noqa: E402
from meditation.voices import load_voice  # noqa: E402


def _setting(text: str) -> int | None:
    return None if text == "auto" else int(text)


def _label(jobs: int | None) -> str:
    return "auto" if jobs is None else str(jobs)


def _cpu_s() -> float:
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(
    quick: bool, runs: int, settings_jobs: list[int | None], tmp: Path, rate: float
) -> dict:
    """Floor and end-to-end runs side by side, in this process, on the cores it may use."""
    if quick:
        script_path = tmp / "quick.md"
        script_path.write_text(QUICK_SCRIPT, encoding="utf-8")
    else:
        script_path = ROOT / "scripts" / "dream.md"
    texts = [s.text for s in plan_segments(read_script(script_path), rate=rate) if s.spoken]
    base = end_to_end_settings(script_path, tmp / "e2e.mp3", rate)
    piper = load_voice("piper:joe")
    piper.reset()
    stock = StockPiper()
    decoded_render = None
    rows = []
    for _ in range(runs):
        row: dict = {"load_before": os.getloadavg()[0]}
        # The floor as the issue takes it: stock Piper, one session, one thread, every text in turn.
        row["speech_floor_s"], _ = stock.speak_all(texts, rate)
        # The same with our engine (seedable graph, our session options): what speech_jobs 1 speaks.
        row["engine_floor_s"] = engine_s(piper, texts, rate)
        for jobs in settings_jobs:
            start, cpu = time.perf_counter(), _cpu_s()
            render(base.replace(speech_jobs=jobs))
            row[f"e2e_{_label(jobs)}_s"] = time.perf_counter() - start
            # CPU time (this process and the encoder's): what parallel speech costs in work.
            row[f"cpu_{_label(jobs)}_s"] = _cpu_s() - cpu
            if decoded_render is None:  # the encode floor: lameenc on the render's own samples
                decoded_render = decoded(base.output)
        row["encode_floor_s"] = lame_s(*decoded_render, tmp / "floor.mp3")
        row["floor_s"] = row["speech_floor_s"] + row["encode_floor_s"]
        row["engine_floor_total_s"] = row["engine_floor_s"] + row["encode_floor_s"]
        for jobs in settings_jobs:
            e2e = row[f"e2e_{_label(jobs)}_s"]
            row[f"ratio_{_label(jobs)}"] = e2e / row["floor_s"]
            row[f"engine_ratio_{_label(jobs)}"] = e2e / row["engine_floor_total_s"]
        row["load_after"] = os.getloadavg()[0]
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    summary = {
        "rate": rate,
        "cores": available_cores(),
        "auto_jobs": auto_speech_jobs(),
        "segments": len(texts),
        "runs": rows,
    }
    for key in rows[0]:
        summary[f"median_{key}"] = statistics.median(r[key] for r in rows)
    return summary


def script_rate(quick: bool, tmp: Path) -> float:
    """The rate the script is spoken at by default (the dream asks for 135 wpm)."""
    if quick:
        (tmp / "quick.md").write_text(QUICK_SCRIPT, encoding="utf-8")
    return floors_script_rate(tmp / "quick.md" if quick else ROOT / "scripts" / "dream.md", tmp)


def _pinned(cores: set[int], args: list[str], tmp: Path) -> dict:
    """This benchmark's measurement in a child process allowed only ``cores`` (as ``taskset -c``)."""
    out = tmp / "pinned.json"
    subprocess.run(
        [sys.executable, __file__, "--measure-only", "--json", str(out), *args],
        check=True,
        preexec_fn=lambda: os.sched_setaffinity(0, cores),
    )
    return json.loads(out.read_text(encoding="utf-8"))


def memory(settings_jobs: list[int | None], tmp: Path, quick: bool) -> dict:
    """Peak RSS of a fresh ``meditation render`` of the dream at each setting."""
    script = ["render"]
    if quick:
        (tmp / "quick.md").write_text(QUICK_SCRIPT, encoding="utf-8")
        script.append(str(tmp / "quick.md"))
    found = {}
    for jobs in settings_jobs:
        extra = [] if jobs is None else ["--speech-jobs", str(jobs)]
        found[_label(jobs)] = _peak_rss_mb(
            [*script, "-o", str(tmp / "m.mp3"), "--no-cache", *extra]
        )
    return found


def _table(r: dict) -> str:
    m = r["machine"]
    lines = [f"machine: {m['cpu']}, {m['cores']} cores; load average {r['load']}"]
    for name, part in r["measured"].items():
        lines.append(
            f"{name}: {part['cores']} core(s), auto = {part['auto_jobs']} job(s), {part['segments']} segments "
            f"at rate {part['rate']:.3g}, "
            f"median of {len(part['runs'])} runs"
        )
        lines.append(
            f"  floor (stock Piper sequential, 1 session, 1 thread + lameenc on the decoded render) "
            f"{part['median_floor_s']:.2f} s "
            f"= {part['median_speech_floor_s']:.2f} + {part['median_encode_floor_s']:.2f} s"
        )
        lines.append(
            f"  our engine speaking the same texts in turn: {part['median_engine_floor_s']:.2f} s "
            f"(with lameenc {part['median_engine_floor_total_s']:.2f} s)"
        )
        for jobs in r["jobs"]:
            label = _label(jobs)
            per_run = ", ".join(f"{run[f'ratio_{label}']:.2f}" for run in part["runs"])
            lines.append(
                f"  speech jobs {label:>4}: end to end {part[f'median_e2e_{label}_s']:.2f} s, "
                f"ratio {part[f'median_ratio_{label}']:.3f} (runs: {per_run}); "
                f"to our engine's floor {part[f'median_engine_ratio_{label}']:.3f}; "
                f"CPU {part[f'median_cpu_{label}_s']:.1f} s"
            )
        loads = ", ".join(f"{run['load_before']:.1f}" for run in part["runs"])
        lines.append(f"  load average at the start of each run: {loads}")
    if r.get("memory_mb"):
        mem = ", ".join(f"jobs {k}: {v:.0f} MB" for k, v in r["memory_mb"].items())
        lines.append(f"peak RSS of a fresh render: {mem}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", default="1,2,auto", help="speech_jobs settings, e.g. 1,2,auto")
    parser.add_argument("--quick", action="store_true", help="a short script instead of the dream")
    parser.add_argument(
        "--rate",
        default="script",
        help="speaking rate of the renders and the floor: 'script' (default: the pace the "
        "script is rendered at, e.g. the dream's 135 wpm) or a number such as 0.8",
    )
    parser.add_argument("--no-pinned", action="store_true", help="skip the one-core measurement")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-RSS renders")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    settings_jobs = [_setting(j.strip()) for j in args.jobs.split(",")]
    passed = ["--runs", str(args.runs), "--jobs", args.jobs] + (["--quick"] if args.quick else [])
    with tempfile.TemporaryDirectory(prefix="meditation-bench-speech-") as folder:
        tmp = Path(folder)
        rate = script_rate(args.quick, tmp) if args.rate == "script" else float(args.rate)
        passed += ["--rate", f"{rate!r}"]
        if args.measure_only:
            args.json.write_text(
                json.dumps(measure(args.quick, args.runs, settings_jobs, tmp, rate))
            )
            return 0
        results: dict = {"machine": _machine(), "jobs": settings_jobs, "measured": {}}
        results["measured"]["every core"] = measure(args.quick, args.runs, settings_jobs, tmp, rate)
        if not args.no_pinned and hasattr(os, "sched_setaffinity"):
            first = min(os.sched_getaffinity(0))
            results["measured"]["taskset -c 0"] = _pinned({first}, passed, tmp)
        if not args.no_memory:
            results["memory_mb"] = memory(settings_jobs, tmp, args.quick)
        results["load"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(_table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
