"""Benchmark `meditation batch`: resume speed, the speech cache, and parallel workers.

Three figures, each the median of --repeats runs (timings on a shared
machine are noisy):

1. resume: a 12-variant manifest (2 voices × 2 rates × 3 soundscapes, a
   three-sentence script) rendered from scratch, then run again; the second
   run renders nothing. Figure: rerun time / first-run time (goal < 0.1).
2. speech cache: two variants that differ only in soundscape, rendered one
   after the other in one process (as in a batch worker) with an empty
   cache; time spent in speech synthesis for the first (cold) and the second
   (warm), and the engine calls each made. Figure: cold / warm (goal ≥ 5).
   The same is measured in fresh processes (the engine loads inside the
   timed stage) for reference.
3. workers: the 12-variant batch with -j 1 and with -j 2, each from an empty
   output folder and an empty speech cache. Figure: -j1 time / -j2 time
   (goal ≥ 1.5 on two cores).
4. cluster: 16 short variants (pyttsx3, 2 rates × 2 soundscapes × 4 seeds)
   through -j 2 and through --scheduler local:2 (a Dask LocalCluster of two
   worker processes, its start-up included), side by side from an empty
   output folder and speech cache. Figure: cluster time / -j 2 time
   (goal ≤ 1.2). Needs dask[distributed] (skipped with a note without it).

Run:  python benchmarks/bench_batch.py [--repeats 3] [--json results.json] [--only cluster]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

SCRIPT = """---
title: Benchmark
---
# Arrive

Breathe in slowly. [pause 2s] And let it go.

# Rest

The river flows on, and on.
"""

MANIFEST = """\
output = "{{script}}-{{voice}}-{{rate}}-{{soundscape}}.wav"

[defaults]
script = "short.md"
lead_in = {lead_in}
tail = {tail}
seed = 7

[matrix]
voice = ["piper:joe", "pyttsx3"]
rate = [0.9, 1.0]
soundscape = ["stream", "night-wind", "drone"]
"""

MEDITATION = [sys.executable, "-m", "meditation"]
PADDING = {"lead_in": 4.0, "tail": 10.0}  # the render defaults; --lead-in/--tail change them


def _setup(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "short.md").write_text(SCRIPT, encoding="utf-8")
    manifest = root / "variants.toml"
    manifest.write_text(MANIFEST.format(**PADDING), encoding="utf-8")
    return manifest


def _batch(manifest: Path, cache: Path, *extra: str) -> tuple[float, str]:
    env = {**os.environ, "MEDITATION_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    proc = subprocess.run(
        [*MEDITATION, "batch", str(manifest), "--progress", "off", *extra],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    summary = (proc.stdout.strip().splitlines() or [""])[-1]
    if proc.returncode != 0:
        raise SystemExit(f"batch failed ({proc.returncode}): {proc.stderr.strip()}")
    return seconds, summary


def bench_resume(work: Path, repeats: int, jobs: int | None) -> dict:
    firsts, reruns = [], []
    for i in range(repeats):
        root = work / f"resume{i}"
        manifest = _setup(root)
        extra = ("-j", str(jobs)) if jobs else ()
        first, summary1 = _batch(manifest, root / "cache", *extra)
        again, summary2 = _batch(manifest, root / "cache", *extra)
        assert summary1.startswith("12 rendered"), summary1
        assert summary2 == "0 rendered, 0 failed, 12 skipped", summary2
        assert len(list(root.glob("*.wav"))) == 12 and len(list(root.glob("short-*.json"))) == 12
        firsts.append(first)
        reruns.append(again)
        print(f"  resume run {i + 1}: first {first:.2f}s, again {again:.2f}s", file=sys.stderr)
    first, again = statistics.median(firsts), statistics.median(reruns)
    return {
        "first_s": firsts,
        "rerun_s": reruns,
        "median_first_s": first,
        "median_rerun_s": again,
        "ratio": again / first,
    }


_SPEECH_PROBE = textwrap.dedent(
    """
    import json, sys, time
    from meditation import batch, render
    from meditation.voices import load_voice
    calls = {"n": 0}
    spent = {"s": 0.0}
    real = render.synthesize
    def timed(*a, **k):
        t = time.perf_counter()
        try:
            return real(*a, **k)
        finally:
            spent["s"] += time.perf_counter() - t
    render.synthesize = timed
    def count(engine_cls):
        orig = engine_cls.synthesize
        def wrapped(self, *a, **k):
            calls["n"] += 1
            return orig(self, *a, **k)
        engine_cls.synthesize = wrapped
    from meditation.voices import ENGINES
    for cls in ENGINES.values():
        count(cls)
    variants = batch.expand_manifest(sys.argv[1])
    preload = sys.argv[2] == "preload"
    out = []
    for v in variants:
        if preload:
            load_voice(v.settings.voice)  # a batch worker has its engine loaded after its first variant
        spent["s"] = 0.0; calls["n"] = 0
        batch.render_variant(v)
        out.append({"name": v.name, "speech_s": spent["s"], "engine_calls": calls["n"]})
    print(json.dumps(out))
    """
)


def _speech_probe(manifest: Path, cache: Path, mode: str) -> list[dict]:
    env = {**os.environ, "MEDITATION_CACHE_DIR": str(cache)}
    proc = subprocess.run(
        [sys.executable, "-c", _SPEECH_PROBE, str(manifest), mode],
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"speech probe failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_speech_cache(work: Path, repeats: int) -> dict:
    results = {}
    for voice in ("piper:joe", "pyttsx3"):
        in_proc, fresh = [], []
        for i in range(repeats):
            root = work / f"speech-{voice.replace(':', '-')}-{i}"
            _setup(root)
            manifest = root / "pair.toml"
            manifest.write_text(
                textwrap.dedent(
                    f"""\
                    output = "{{soundscape}}.wav"
                    [defaults]
                    script = "short.md"
                    voice = "{voice}"
                    lead_in = {PADDING["lead_in"]}
                    tail = {PADDING["tail"]}
                    [matrix]
                    soundscape = ["stream", "night-wind"]
                    """
                ),
                encoding="utf-8",
            )
            cold, warm = _speech_probe(manifest, root / "cache", "preload")
            assert cold["engine_calls"] > 0 and warm["engine_calls"] == 0, (cold, warm)
            in_proc.append(
                (cold["speech_s"], warm["speech_s"], cold["engine_calls"], warm["engine_calls"])
            )
            # Fresh processes: the second one starts with a warm cache and no engine loaded.
            for leftover in root.glob("*.wav"):
                leftover.unlink()
            shutil.rmtree(root / "cache", ignore_errors=True)
            one = manifest.read_text().replace('["stream", "night-wind"]', '["stream"]')
            manifest.write_text(one, encoding="utf-8")
            (cold_fresh,) = _speech_probe(manifest, root / "cache", "lazy")
            manifest.write_text(one.replace('["stream"]', '["night-wind"]'), encoding="utf-8")
            (warm_fresh,) = _speech_probe(manifest, root / "cache", "lazy")
            fresh.append((cold_fresh["speech_s"], warm_fresh["speech_s"]))
            print(
                f"  speech {voice} run {i + 1}: in-process cold {cold['speech_s']:.3f}s ({cold['engine_calls']} engine calls), "
                f"warm {warm['speech_s']:.3f}s ({warm['engine_calls']}); fresh process cold {cold_fresh['speech_s']:.3f}s, warm {warm_fresh['speech_s']:.3f}s",
                file=sys.stderr,
            )
        cold = statistics.median(c for c, _, _, _ in in_proc)
        warm = statistics.median(w for _, w, _, _ in in_proc)
        cold_f = statistics.median(c for c, _ in fresh)
        warm_f = statistics.median(w for _, w in fresh)
        results[voice] = {
            "cold_s": cold,
            "warm_s": warm,
            "ratio": cold / warm,
            "engine_calls_cold": in_proc[0][2],
            "engine_calls_warm": in_proc[0][3],
            "fresh_process_cold_s": cold_f,
            "fresh_process_warm_s": warm_f,
            "fresh_process_ratio": cold_f / warm_f,
        }
    return results


def bench_jobs(work: Path, repeats: int) -> dict:
    times: dict[int, list[float]] = {1: [], 2: []}
    for i in range(repeats):
        for jobs in (1, 2):  # alternate, so load from other users hits both alike
            root = work / f"jobs{jobs}-{i}"
            manifest = _setup(root)
            seconds, summary = _batch(manifest, root / "cache", "-j", str(jobs))
            assert summary.startswith("12 rendered"), summary
            times[jobs].append(seconds)
            print(f"  -j {jobs} run {i + 1}: {seconds:.2f}s", file=sys.stderr)
    j1, j2 = statistics.median(times[1]), statistics.median(times[2])
    return {
        "j1_s": times[1],
        "j2_s": times[2],
        "median_j1_s": j1,
        "median_j2_s": j2,
        "speedup": j1 / j2,
        "cores": os.cpu_count(),
    }


CLUSTER_MANIFEST = """\
output = "{{rate}}-{{soundscape}}-{{seed}}.wav"

[defaults]
script = "short.md"
voice = "pyttsx3"
lead_in = {lead_in}
tail = {tail}

[matrix]
rate = [0.9, 1.0]
soundscape = ["stream", "night-wind"]
seed = [1, 2, 3, 4]
"""


def bench_cluster(work: Path, repeats: int) -> dict:
    try:
        import distributed  # noqa: F401
    except ImportError:
        print("  cluster: skipped (needs the cluster extra)", file=sys.stderr)
        return {}
    runs = {"local": ("-j", "2"), "cluster": ("--scheduler", "local:2")}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(repeats):
        for name, extra in runs.items():  # alternate, so load from other users hits both alike
            root = work / f"cluster-{name}-{i}"
            root.mkdir(parents=True)
            (root / "short.md").write_text(SCRIPT, encoding="utf-8")
            manifest = root / "sixteen.toml"
            manifest.write_text(CLUSTER_MANIFEST.format(**PADDING), encoding="utf-8")
            seconds, summary = _batch(manifest, root / "cache", *extra)
            assert summary == "16 rendered, 0 failed, 0 skipped", summary
            times[name].append(seconds)
            print(f"  {' '.join(extra)} run {i + 1}: {seconds:.2f}s", file=sys.stderr)
    local, cluster = statistics.median(times["local"]), statistics.median(times["cluster"])
    return {
        "j2_s": times["local"],
        "local2_s": times["cluster"],
        "median_j2_s": local,
        "median_local2_s": cluster,
        "ratio": cluster / local,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="Figures are medians of --repeats runs."
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (default 3)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--only",
        choices=["resume", "speech", "jobs", "cluster"],
        action="append",
        help="run only these parts (repeatable)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (printed)")
    parser.add_argument(
        "--lead-in",
        type=float,
        default=4.0,
        help="lead-in of every variant, s (default 4, as render)",
    )
    parser.add_argument(
        "--tail", type=float, default=10.0, help="tail of every variant, s (default 10, as render)"
    )
    args = parser.parse_args(argv)
    PADDING.update(lead_in=args.lead_in, tail=args.tail)
    parts = args.only or ["resume", "speech", "jobs", "cluster"]
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    results: dict = {
        "lead_in_s": args.lead_in,
        "tail_s": args.tail,
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    try:
        if "resume" in parts:
            results["resume"] = bench_resume(work, args.repeats, None)
        if "speech" in parts:
            results["speech_cache"] = bench_speech_cache(work, args.repeats)
        if "jobs" in parts:
            results["jobs"] = bench_jobs(work, args.repeats)
        if "cluster" in parts:
            results["cluster"] = bench_cluster(work, args.repeats)
    finally:
        if args.keep:
            print(f"work folder: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    rows = []
    if "resume" in results:
        r = results["resume"]
        rows.append(("12-variant batch, first run (s)", f"{r['median_first_s']:.2f}", ""))
        rows.append(("same batch again, all skipped (s)", f"{r['median_rerun_s']:.2f}", ""))
        rows.append(("rerun / first run", f"{r['ratio']:.3f}", "< 0.1"))
    if "speech_cache" in results:
        for voice, r in results["speech_cache"].items():
            rows.append(
                (
                    f"{voice}: speech time cold / warm cache (s)",
                    f"{r['cold_s']:.3f} / {r['warm_s']:.3f}",
                    "",
                )
            )
            rows.append(
                (
                    f"{voice}: engine calls cold / warm",
                    f"{r['engine_calls_cold']} / {r['engine_calls_warm']}",
                    "",
                )
            )
            rows.append(
                (f"{voice}: speech-time ratio, batch worker", f"{r['ratio']:.1f}x", ">= 5x")
            )
            rows.append(
                (
                    f"{voice}: speech-time ratio, fresh process",
                    f"{r['fresh_process_ratio']:.1f}x",
                    "(reference)",
                )
            )
    if "jobs" in results:
        r = results["jobs"]
        rows.append(("12-variant batch -j 1 (s)", f"{r['median_j1_s']:.2f}", ""))
        rows.append(("12-variant batch -j 2 (s)", f"{r['median_j2_s']:.2f}", ""))
        rows.append(("speedup -j 2 vs -j 1", f"{r['speedup']:.2f}x", ">= 1.5x"))
    if results.get("cluster"):
        r = results["cluster"]
        rows.append(("16 short variants -j 2 (s)", f"{r['median_j2_s']:.2f}", ""))
        rows.append(
            ("16 short variants --scheduler local:2 (s)", f"{r['median_local2_s']:.2f}", "")
        )
        rows.append(("cluster / -j 2", f"{r['ratio']:.2f}", "<= 1.2"))
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    print(f"{'measure':<{width}}  {'median':>{vwidth}}  goal")
    for name, value, goal in rows:
        print(f"{name:<{width}}  {value:>{vwidth}}  {goal}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
