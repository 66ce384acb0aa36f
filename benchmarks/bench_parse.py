"""Benchmark script parsing and segment planning on plain and hostile text.

For each kind of text, about SIZE bytes of it (default 1 MB, the largest
script accepted) are parsed and planned (``parse_script`` + ``plan_segments``);
the figure is CPU seconds (least of --repeats runs, so a busy machine skews
it little) and the ratio to plain prose of the same size. Peak memory is
measured in a fresh process per kind (growth of VmHWM while parsing; Linux).

Run:  python benchmarks/bench_parse.py [--size 990000] [--repeats 3] [--json results.json]

Older code can be measured with the same cases by putting it first on
PYTHONPATH (before issue 8 the parser was quadratic or worse on several
of them: use --size 20000 and a timeout).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CASES = {
    "plain prose": "Let your body settle into the chair, and notice the weight of your hands. Breathe slowly.\n\n",
    "unclosed < then spaces": None,  # "Hello there. <" + spaces
    "unclosed <break then spaces": None,  # "Hello. <break" + spaces
    "escaped <break, 8000 spaces": "Hello. \\<break" + " " * 8000 + "\n",
    "lone < runs": "< ",
    "spaces and tabs": "\t  ",
    "[pause runs": "Rest. [pause 1s]",
    "lower-case sentences (calm. )": "calm. ",
    "abbreviations": "Dr. St. Mr. e.g. ",
    "emoji": "Rest 🌊 now. ",
    "CJK without spaces": "静かな森の中で私たちはゆっくりと呼吸をします",
}


def make(kind: str, size: int) -> str:
    unit = CASES[kind]
    if unit is None:
        head = "Hello there. <" if kind.startswith("unclosed < ") else "Hello. <break"
        return head + " " * (size - len(head))
    return unit * max(1, size // len(unit.encode("utf-8")))


def _parse(text: str) -> None:
    from meditation.script import parse_script

    try:
        from meditation.segments import plan_segments
    except ImportError:  # before plan_segments moved to segments.py
        from meditation.timeline import plan_segments
    try:
        plan_segments(parse_script(text), rate=0.9)
    except Exception as exc:  # noqa: BLE001 - a refusal is a result too
        if type(exc).__module__ != "meditation.errors":
            raise


def cpu_s(text: str, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        _parse(text)
        best = min(best, time.process_time() - start)
    return best


def peak_mb(kind: str, size: int) -> float:
    """Growth of peak memory while parsing, measured in a fresh process (``--peak KIND``)."""
    cmd = [sys.executable, __file__, "--peak", kind, "--size", str(size)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return int(out.stdout) / 1024


def _peak_here(kind: str, size: int) -> None:
    text = make(kind, size)
    import meditation.script  # noqa: F401 - imports are not the parser's memory
    import meditation.timeline  # noqa: F401

    before = _peak_kib()
    _parse(text)
    print(_peak_kib() - before)


def _peak_kib() -> int:
    """This process's peak resident memory (VmHWM), in KiB.

    Not ``ru_maxrss``: a child process starts with its parent's maximum.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=990_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None)
    parser.add_argument("--peak", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak:
        _peak_here(args.peak, args.size)
        return
    results = {}
    plain = None
    for kind in CASES:
        seconds = cpu_s(make(kind, args.size), args.repeats)
        plain = plain or seconds
        results[kind] = {
            "cpu_s": round(seconds, 4),
            "ratio": round(seconds / plain, 2),
            "peak_mb": round(peak_mb(kind, args.size), 1),
        }
        print(
            f"{kind:32s} {seconds:8.3f} s CPU  {seconds / plain:6.2f}x plain  {results[kind]['peak_mb']:6.1f} MB",
            flush=True,
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"size": args.size, "results": results}, handle, indent=2)


if __name__ == "__main__":
    main()
