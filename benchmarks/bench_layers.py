"""Benchmark the soundscape layers: each alone, all at once, and memory against duration.

Run ``taskset -c 0 python benchmarks/bench_layers.py`` (a few minutes) or ``--quick``.
Each figure is the median of ``--runs`` runs in this one process, so the
ratios compare like with like on a noisy machine. ``layer_figures`` returns
the figures for ``benchmarks/bench.py`` to report.

Real-time factor (RTF) = seconds of audio per second of time, two ways:
- CPU-time RTF (the headline, ``layer_rtf``): per second of this process's CPU
  time (``time.process_time``), with numeric libraries held to one thread, so
  it is one core's speed and other processes' load does not change it;
- wall-time RTF (``layer_rtf_wall``): per second of wall time, which a loaded
  machine lowers.
Issue 20's targets: every layer >= 300x alone, all layers at once >= 60x (one
core), memory flat in duration.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

# One thread for numeric libraries, set before numpy loads them: the figures are one core's.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Layers that sound without cues, at parameters that make them sound all the time.
_PARAMS = {
    "thunder": {"rate_per_min": 2.0},
    "owl": {"rate_per_min": 2.0},
    "temple-bell": {"interval_s": 20.0},
}
_SKIP = {"recording", "beats", "breath", "bell", "wings"}
"""Not part of the palette (the recording needs a file; cue-only layers are timed by bench.py)."""


def palette() -> list[str]:
    from meditation.soundscape.layers import LAYERS

    return sorted(name for name in LAYERS if name not in _SKIP)


def _make(name: str, sample_rate: int, seed: int = 1):
    from meditation.soundscape.layers import LAYERS

    return LAYERS[name](
        sample_rate=sample_rate, rng=np.random.default_rng(seed), params=_PARAMS.get(name)
    )


def _stream(layers, n: int, chunk: int = 32768) -> None:
    """Render ``n`` samples of the layers' sum in chunks, as the mixer does, and drop them."""
    done = 0
    while done < n:
        k = min(chunk, n - done)
        mix = layers[0].render(k)
        for layer in layers[1:]:
            mix += layer.render(k)
        done += k


def _median_s(setup, fn, runs: int) -> tuple[float, float]:
    """Median CPU time and median wall time of ``fn(setup())``, ``setup`` not timed."""
    cpu, wall = [], []
    for _ in range(runs):
        made = setup()
        c, t = time.process_time(), time.perf_counter()
        fn(made)
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - t)
    return statistics.median(cpu), statistics.median(wall)


def _peak_kib(name: str, seconds: float, sample_rate: int) -> float:
    tracemalloc.start()
    _stream([_make(name, sample_rate)], int(seconds * sample_rate))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1024


def layer_figures(
    seconds: float = 60.0,
    sample_rate: int = 44100,
    runs: int = 3,
    names: list[str] | None = None,
    memory: bool = True,
) -> dict:
    """Real-time factors of each layer alone and of all at once, and peak memory at two durations.

    Returns ``{"sample_rate", "seconds", "layer_rtf": {name: x}, "all_layers_rtf": x,
    "layer_rtf_wall": {name: x}, "all_layers_rtf_wall": x, "slowest": name,
    "memory_kib": {name: [short, long]}}``: ``*_rtf`` per second of CPU time,
    ``*_rtf_wall`` per second of wall time (see the module's doc); layers are made
    outside the timing, so construction (grain banks) is not counted. Memory
    is tracemalloc's peak for a stream of ``seconds / 4`` and of ``2 * seconds``:
    flat in duration, except where a struck layer builds its first grains.
    """
    names = names or palette()
    n = int(seconds * sample_rate)
    rtf, rtf_wall = {}, {}
    for name in names:
        _make(name, sample_rate)  # warm imports and caches
        c, t = _median_s(
            lambda name=name: [_make(name, sample_rate)], lambda x: _stream(x, n), runs
        )
        rtf[name], rtf_wall[name] = seconds / c, seconds / t
    c_all, t_all = _median_s(
        lambda: [_make(x, sample_rate) for x in names], lambda x: _stream(x, n), runs
    )
    kib = {
        name: [round(_peak_kib(name, s, sample_rate)) for s in (seconds / 4, seconds * 2)]
        if memory
        else [0, 0]
        for name in names
    }
    return {
        "sample_rate": sample_rate,
        "seconds": seconds,
        "layer_rtf": {k: round(v) for k, v in rtf.items()},
        "all_layers_rtf": round(seconds / c_all, 1),
        "layer_rtf_wall": {k: round(v) for k, v in rtf_wall.items()},
        "all_layers_rtf_wall": round(seconds / t_all, 1),
        "affinity": sorted(os.sched_getaffinity(0)),
        "slowest": min(rtf, key=rtf.get),
        "memory_kib": kib,
    }


def _table(r: dict) -> str:
    lines = [
        f"layer real-time factor at {r['sample_rate']} Hz, {r['seconds']:g} s of stereo audio,"
        f" CPUs {r['affinity']}; CPU = per second of CPU time (target 300x), wall = per second"
        " of wall time",
        f"  {'layer':12s} {'CPU':>6s}  {'wall':>6s}   peak memory (8x longer)",
    ]
    for name, x in sorted(r["layer_rtf"].items(), key=lambda kv: kv[1]):
        short, long = r["memory_kib"][name]
        wall = r["layer_rtf_wall"][name]
        lines.append(f"  {name:12s} {x:5d}x  {wall:5d}x   {short} KiB -> {long} KiB")
    lines.append(
        f"all {len(r['layer_rtf'])} layers at once: CPU {r['all_layers_rtf']}x (target 60x),"
        f" wall {r['all_layers_rtf_wall']}x"
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s renders, one run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--layers", help="comma-separated layer names (default: the palette)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory figures")
    args = parser.parse_args(argv)
    r = layer_figures(
        seconds=10.0 if args.quick else 60.0,
        runs=1 if args.quick else args.runs,
        names=args.layers.split(",") if args.layers else None,
        memory=not args.no_memory,
    )
    print(json.dumps(r, indent=1) if args.json else _table(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
