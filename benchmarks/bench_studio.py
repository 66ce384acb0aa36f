"""Benchmark `meditation studio`: how soon it answers, how fast it checks, what a render costs through it.

Four figures, each the median of --repeats runs (a shared machine is noisy):

1. start-up: from starting `meditation studio --port 0` until the page's
   first API call (/api/options, which lists the voices) has answered.
2. check: one as-you-type check of the whole dream (POST /api/check),
   the latency behind the editor's error marks.
3. render overhead: the same short script (pyttsx3 voice, WAV, speech cache
   warm) rendered by `meditation render` and through the studio (submit →
   done, read from the progress events). Figure: studio time / CLI time; the
   difference is the worker process's start-up.
4. cancel: from the Cancel request until the job reports "cancelled" (its
   process group stopped, its folder removed), with a render in progress.

Run:  python benchmarks/bench_studio.py [--repeats 3] [--json results.json]
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

import httpx2 as httpx

ROOT = Path(__file__).resolve().parent.parent

SHORT = """---
voice: pyttsx3
lead_in: 1
tail: 2
soundscape: stream
---

# Arriving

Let your shoulders drop. Breathe out slowly.

# The stream

Somewhere near, water is moving. Let it carry your thoughts.
"""

LONG = SHORT + "\n".join(f"\nSentence {i} drifts past like a leaf on the water." for i in range(40))


def _start(folder: Path, env: dict) -> tuple[subprocess.Popen, str, dict, float]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "meditation", "studio", "--port", "0", "--dir", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    base, token = process.stdout.readline().split()[2].split("/?token=")
    headers = {"X-Studio-Token": token}
    httpx.get(base + "/api/options", headers=headers, timeout=120).raise_for_status()
    return process, base, headers, time.perf_counter() - started


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.communicate(timeout=60)


def _until_finished(client: httpx.Client, base: str, job_id: str) -> dict:
    last = {}
    with client.stream("GET", f"{base}/api/jobs/{job_id}/events") as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                last = json.loads(line[6:])
    return last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-studio-") as scratch:
        scratch = Path(scratch)
        folder = scratch / "studio"
        folder.mkdir()
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "MEDITATION_CACHE_DIR": str(scratch / "cache"),
            "MEDITATION_STATE_DIR": str(scratch / "state"),
        }
        (folder / "short.md").write_text(SHORT, encoding="utf-8")
        dream = (ROOT / "meditation" / "data" / "dream.md").read_text(encoding="utf-8")

        startups, checks, studio_s, cli_s, cancels = [], [], [], [], []
        for _ in range(args.repeats):
            process, _, _, seconds = _start(folder, env)
            startups.append(seconds)
            _stop(process)

        process, base, headers, _ = _start(folder, env)
        try:
            with httpx.Client(headers=headers, timeout=600) as client:
                for _ in range(max(10, 5 * args.repeats)):
                    t = time.perf_counter()
                    client.post(
                        base + "/api/check", json={"text": dream, "name": "dream.md"}
                    ).raise_for_status()
                    checks.append(time.perf_counter() - t)
                body = {
                    "kind": "render",
                    "text": SHORT,
                    "name": "short.md",
                    "values": {},
                    "format": "wav",
                }
                _until_finished(
                    client, base, client.post(base + "/api/jobs", json=body).json()["id"]
                )  # warms the speech cache
                for i in range(args.repeats):
                    t = time.perf_counter()
                    done = _until_finished(
                        client, base, client.post(base + "/api/jobs", json=body).json()["id"]
                    )
                    studio_s.append(time.perf_counter() - t)
                    assert done["state"] == "done", done
                    t = time.perf_counter()
                    subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "meditation",
                            "render",
                            "short.md",
                            "-o",
                            f"cli-{i}.wav",
                        ],
                        cwd=folder,
                        env=env,
                        check=True,
                        capture_output=True,
                    )
                    cli_s.append(time.perf_counter() - t)
                for _ in range(args.repeats):
                    job = client.post(base + "/api/jobs", json={**body, "text": LONG}).json()
                    while client.get(f"{base}/api/jobs/{job['id']}").json()["percent"] <= 0:
                        time.sleep(0.05)
                    t = time.perf_counter()
                    client.post(f"{base}/api/jobs/{job['id']}/cancel")
                    assert _until_finished(client, base, job["id"])["state"] == "cancelled"
                    cancels.append(time.perf_counter() - t)
        finally:
            _stop(process)

    figures = {
        "startup_s": statistics.median(startups),
        "check_dream_ms": 1000 * statistics.median(checks),
        "render_studio_s": statistics.median(studio_s),
        "render_cli_s": statistics.median(cli_s),
        "render_overhead_ratio": statistics.median(studio_s) / statistics.median(cli_s),
        "cancel_s": statistics.median(cancels),
    }
    print(f"start-up until the page's first call answers: {figures['startup_s']:.2f} s")
    print(f"check of the whole dream (as you type):        {figures['check_dream_ms']:.1f} ms")
    print(f"short render, CLI:                              {figures['render_cli_s']:.2f} s")
    print(
        f"short render, studio (submit to done):          {figures['render_studio_s']:.2f} s  (× {figures['render_overhead_ratio']:.2f})"
    )
    print(f"cancel until nothing is left:                   {figures['cancel_s']:.2f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
