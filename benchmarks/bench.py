"""Benchmark the renderer: real-time factors per stage, the two floors, memory.

Run ``python benchmarks/bench.py`` (about 5 minutes) or ``--quick`` (under a
minute, short inputs). Each figure is the median of ``--runs`` runs, all in
this one process, so ratios compare like with like on a noisy machine.

Real-time factor (RTF) = seconds of audio per second of wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_layers  # noqa: E402
import bench_voices  # noqa: E402
import floors  # noqa: E402

QUICK_SCRIPT = """---
title: Quick
soundscape: dream
---
# The library

I am dreaming. In this dream, I find myself wandering through the misty corridors of an ancient library.

# The valley and the river

A gentle river flows beside me, its waters clear and singing.

# The phoenix

The phoenix spreads its radiant wings, and with a single, powerful beat, lifts us into the air.
"""


def _median_time(fn, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


_RSS_PROBE = """
import atexit, runpy, sys
out = sys.argv[1]
def _report():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(out, "w").write(line.split()[1])
atexit.register(_report)
sys.argv = ["meditation", *sys.argv[2:]]
runpy.run_module("meditation", run_name="__main__")
"""


def _peak_rss_mb(args: list[str]) -> float:
    """Peak resident memory of a fresh ``meditation`` process (its own, not its encoder child's).

    Read from the process's own VmHWM at exit: getrusage would also count the
    memory of this (large) benchmark process, which the child inherits at fork.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as report:
        result = subprocess.run(
            [sys.executable, "-c", _RSS_PROBE, report.name, *args, "--progress", "off"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise SystemExit(f"benchmark render failed: meditation {' '.join(args)}")
        return int(open(report.name).read()) / 1024.0


def _brown_noise_s(seconds: float, sample_rate: int) -> float:
    """Time to generate and filter plain stereo brown noise, streamed in blocks like the layers."""
    from scipy import signal

    rng = np.random.default_rng(0)
    zi = np.zeros((1, 2))
    total = int(seconds * sample_rate)
    start = time.perf_counter()
    for i in range(0, total, 8192):
        n = min(8192, total - i)
        white = rng.standard_normal((n, 2), dtype=np.float32)
        _, zi = signal.lfilter([1.0], [1.0, -0.995], white, axis=0, zi=zi)
    return time.perf_counter() - start


def _floor_signal(n: int, sample_rate: int) -> np.ndarray:
    """What the encoders are timed on: a 220 Hz tone in a little noise, ``(n, 2)`` float32."""
    rng = np.random.default_rng(0)
    t = np.arange(n) / sample_rate
    return (0.2 * np.sin(2 * np.pi * 220 * t)[:, None] + 0.05 * rng.standard_normal((n, 2))).astype(
        np.float32
    )


def _lame_in_process(signal_: np.ndarray, sample_rate: int, path: Path, block: int = 32768) -> None:
    """The encode floor: lameenc in this process, at the settings the renderer's MP3 uses (VBR -V2)."""
    from meditation._lame_worker import new_encoder

    lame = new_encoder(sample_rate, 2)
    with open(path, "wb") as f:
        for i in range(0, len(signal_), block):
            pcm = np.clip(np.round(signal_[i : i + block] * 32767), -32768, 32767).astype("<i2")
            f.write(lame.encode(pcm.tobytes()))
        f.write(lame.flush())


def _ambience_timeline(script_path: Path, minutes: float, sample_rate: int):
    """The script's scenes spread evenly over ``minutes`` (no speech needed)."""
    from meditation.script import read_script
    from meditation.timeline import SceneSpan, Timeline

    script = read_script(script_path)
    length = int(minutes * 60 * sample_rate)
    names = [s.name for s in script.scenes]
    step = length // len(names)
    spans = tuple(
        SceneSpan(n, i * step, length if i == len(names) - 1 else (i + 1) * step)
        for i, n in enumerate(names)
    )
    return script, Timeline(sample_rate, length, (), spans)


def _render_ambience(plan, total: int) -> None:
    from meditation.mix import CHUNK
    from meditation.soundscape import AmbienceStream

    ambience = AmbienceStream(plan)
    for start in range(0, total, CHUNK):
        ambience.render(min(CHUNK, total - start))


_NUMPY_BROWN_WAV = """
import sys
import numpy as np
import soundfile

# Brown noise with numpy alone: a random walk (cumulative sum of white
# noise), carried from block to block, written as 16-bit stereo WAV.
seconds, out = float(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(0)
total = int(seconds * 44100)
step = np.float32(0.5 / np.sqrt(total))
level = np.zeros(2, dtype=np.float32)
with soundfile.SoundFile(out, "w", 44100, 2, subtype="PCM_16") as f:
    for i in range(0, total, 32768):
        walk = np.cumsum(rng.standard_normal((min(32768, total - i), 2), dtype=np.float32) * step, axis=0)
        walk += level
        level = walk[-1].copy()
        f.write(walk)
"""


def ambient_vs_floors(minutes: float, runs: int, folder: Path) -> dict:
    """``meditation ambient --soundscape dream`` to a WAV, against SoX and plain numpy writing brown noise.

    Returns wall-time medians, their ratios (``sox_ratio``,
    ``ambient_numpy_ratio``) and CPU-time medians (``cpu_s``, ``sox_ratio_cpu``).

    Each is a fresh process, as a user runs it, and they are timed side by
    side (interleaved, run after run) so load on a shared machine hits them
    alike; figures are medians. SoX's ``synth brownnoise`` writing a 16-bit
    stereo WAV of the same length is the anchor of issue 11; the ambient WAV
    is whatever the WAV writer writes (24-bit PCM today). Without ``sox`` on
    the PATH, ``sox_ratio`` is None and ``sox_note`` says why.

    Start-up (``startup_s``, issue 21) is a one-second ambient track timed
    the same way: its first block is its last, so the time is what comes
    before the first block is written (interpreter, imports, planning, the
    layers' set-up) plus writing that one block.
    """
    import compileall
    import shutil

    # Byte-compiled as an installed package is (pip compiles at install time): a module
    # edited since its last import, under PYTHONDONTWRITEBYTECODE, would be compiled afresh
    # at every start and read as start-up cost.
    compileall.compile_dir(ROOT / "meditation", quiet=1)
    seconds = minutes * 60
    sox = shutil.which("sox")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    ambient = [
        sys.executable,
        "-m",
        "meditation",
        "ambient",
        "--soundscape",
        "dream",
        "--duration",
        f"{seconds:g}s",
        "--progress",
        "off",
    ]
    commands = {
        "ambient": ambient + ["-o", str(folder / "ambient.wav")],
        "startup": [*ambient[:-3], "1s", "--progress", "off", "-o", str(folder / "startup.wav")],
        "numpy": [
            sys.executable,
            "-c",
            _NUMPY_BROWN_WAV,
            f"{seconds:g}",
            str(folder / "numpy.wav"),
        ],
    }
    if sox:
        commands["sox"] = [
            sox,
            "-n",
            "-r",
            "44100",
            "-c",
            "2",
            "-b",
            "16",
            str(folder / "sox.wav"),
            "synth",
            f"{seconds:g}",
            "brownnoise",
        ]
    import resource

    times: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    order = list(commands.items())
    for run in range(runs):
        # Each run starts with a different command: what one leaves behind (its file still
        # being written back to disk) must not always slow the same next one.
        for name, command in order[run % len(order) :] + order[: run % len(order)]:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(
                command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            times[name].append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            # CPU time (user + system) is steadier than wall time on a shared machine.
            cpu[name].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            (folder / f"{name}.wav").unlink(missing_ok=True)
    median = {name: statistics.median(t) for name, t in times.items()}
    median_cpu = {name: statistics.median(t) for name, t in cpu.items()}
    return {
        "minutes": minutes,
        "ambient_s": median["ambient"],
        "numpy_brown_s": median["numpy"],
        "ambient_numpy_ratio": median["ambient"] / median["numpy"],
        "sox_s": median.get("sox"),
        "sox_ratio": median["ambient"] / median["sox"] if sox else None,
        "sox_ratio_cpu": median_cpu["ambient"] / median_cpu["sox"] if sox else None,
        "sox_note": None if sox else "sox is not on the PATH: sox_ratio skipped",
        "startup_s": median["startup"],
        "cpu_s": median_cpu,
        "runs_s": times,
    }


def _startup_s(args: list[str], runs: int) -> float:
    """Median wall time of a fresh ``meditation`` process (interpreter start included)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "meditation", *args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def startup(runs: int) -> dict:
    """CLI start-up: `--help` and `voices` (issue 11: under 0.5 s), against a bare interpreter."""
    _startup_s(["voices"], 1)  # the first listing stores eSpeak's voice list; time the ones after
    bare = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - start)
    return {
        "python_bare": statistics.median(bare),
        "help": _startup_s(["--help"], runs),
        "voices": _startup_s(["voices"], runs),
        "render_help": _startup_s(["render", "--help"], runs),
    }


def bench(quick: bool, runs: int, rate: str = "script") -> dict:
    """``rate``: the speaking rate of every stage, 'script' for the pace the script is rendered at."""
    # Every file the benchmark writes goes here, and is gone afterwards (it was ~44 MB a run).
    with tempfile.TemporaryDirectory(prefix="meditation-bench-") as tmp:
        return _bench(quick, runs, Path(tmp), rate)


def _bench(quick: bool, runs: int, tmp: Path, rate_option: str) -> dict:
    from meditation import speech as speech_stage
    from meditation.export import AudioWriter
    from meditation.mix import VoiceBus, limit_crest, mix_chunks
    from meditation.render import render
    from meditation.script import read_script
    from meditation.segments import plan_segments
    from meditation.soundscape import AmbienceStream, plan_ambience
    from meditation.timeline import layout
    from meditation.voices import load_voice

    sr = 44100
    if quick:
        script_path = tmp / "quick.md"
        script_path.write_text(QUICK_SCRIPT, encoding="utf-8")
    else:
        script_path = ROOT / "scripts" / "dream.md"
    rate = floors.script_rate(script_path, tmp) if rate_option == "script" else float(rate_option)
    results: dict = {"machine": _machine(), "quick": quick, "runs": runs, "rate": rate}
    results["startup_s"] = startup(max(runs, 5))

    # Script parsing (with segmentation).
    def parse():
        script = read_script(script_path)
        return script, plan_segments(script, rate=rate)

    t_parse, (script, planned) = _median_time(parse, runs)
    texts = [s.text for s in planned if s.spoken]

    # Speech, per engine: the voice alone speaking the whole text is the speech floor.
    engines = {}
    for voice in ("piper:joe", "pyttsx3"):
        engine = load_voice(voice)
        engine.reset()
        t_floor, audio_native = _median_time(
            lambda engine=engine: [
                engine.synthesize(t, rate=rate, seed=speech_stage.text_seed(t)) for t in texts
            ],
            runs,
        )
        engine.reset()
        seconds = sum(len(a) for a in audio_native) / engine.sample_rate
        t_stage, _ = _median_time(
            lambda voice=voice: speech_stage.synthesize(
                texts, voice=voice, rate=rate, sample_rate=sr, cache=None, finish_with=limit_crest
            ),
            runs,
        )
        engines[voice] = {
            "speech_s": seconds,
            "floor_s": t_floor,
            "floor_rtf": seconds / t_floor,
            "stage_s": t_stage,
            "stage_rtf": seconds / t_stage,
        }
    results["speech"] = engines

    # The rest of the default render with the default voice.
    audio = speech_stage.synthesize(
        texts, voice="piper:joe", rate=rate, sample_rate=sr, cache=None, finish_with=limit_crest
    )
    timeline = layout(
        planned,
        [len(a) for a in audio],
        sample_rate=sr,
        lead_in_s=8,
        tail_s=16,
        scene_names=[s.name for s in script.scenes],
        pause_scale=1.0,
    )
    duration = timeline.duration_s
    results["track_s"] = duration
    plan = plan_ambience("dream", script=script, timeline=timeline, seed=1)
    t_soundscape, _ = _median_time(lambda: _render_ambience(plan, timeline.length), runs)

    voice = VoiceBus(plan.timeline, audio)

    def mix_and_master():
        from meditation.limiter import TruePeakLimiter
        from meditation.loudness import LoudnessMeter

        meter = LoudnessMeter(sr)
        for chunk in mix_chunks(plan.timeline, voice, AmbienceStream(plan)):
            meter.feed(chunk.mix)
        limiter, out = TruePeakLimiter(sr, ceiling_db=-1.7), LoudnessMeter(sr)
        for chunk in mix_chunks(plan.timeline, voice, AmbienceStream(plan)):
            out.feed(limiter.process(chunk.mix))
        out.feed(limiter.flush())

    t_mix, _ = _median_time(mix_and_master, runs)
    t_mix_only = max(t_mix - 2 * t_soundscape, 1e-9)  # the mix passes regenerate the ambience twice

    # Encode floor: an in-memory array of the track's length, written by each in-process encoder.
    n = timeline.length
    signal_ = _floor_signal(n, sr)
    encoders = {}

    def lame_in_process():
        _lame_in_process(signal_, sr, tmp / "floor.mp3")

    def soundfile_mp3():
        import soundfile

        with soundfile.SoundFile(
            tmp / "floor_sf.mp3",
            "w",
            sr,
            2,
            format="MP3",
            subtype="MPEG_LAYER_III",
            bitrate_mode="VARIABLE",
            compression_level=0.2,
        ) as f:
            for i in range(0, n, 32768):
                f.write(signal_[i : i + 32768])

    def pipeline_writer():
        with AudioWriter(tmp / "floor_writer.mp3", sample_rate=sr) as w:
            for i in range(0, n, 32768):
                w.write(signal_[i : i + 32768])

    for name, fn in (
        ("lameenc", lame_in_process),
        ("soundfile", soundfile_mp3),
        ("meditation_writer", pipeline_writer),
    ):
        t, _ = _median_time(fn, runs)
        encoders[name] = {"s": t, "rtf": duration / t}
    lame_cli = None
    if not quick and subprocess.run(["which", "lame"], capture_output=True).returncode == 0:
        import soundfile

        soundfile.write(tmp / "floor.wav", signal_, sr, subtype="PCM_16")
        t, _ = _median_time(
            lambda: subprocess.run(
                ["lame", "--silent", "-V2", str(tmp / "floor.wav"), str(tmp / "cli.mp3")],
                check=True,
            ),
            runs,
        )
        lame_cli = {"s": t, "rtf": duration / t}
    results["encoders"] = encoders
    results["lame_cli"] = lame_cli
    encode_floor = min(e["s"] for k, e in encoders.items() if k in ("lameenc", "soundfile"))

    # End to end: the default render (voice model already loaded in this process),
    # each run beside a run of both floors: on a shared machine the speed drifts
    # over minutes, and a ratio of figures taken minutes apart drifts with it.
    settings = floors.end_to_end_settings(script_path, tmp / "e2e.mp3", rate)
    # The floors as issue 21 takes them, as independently as we can (``floors.py``): stock
    # Piper speaking the texts in turn (one session, one thread), and lameenc encoding the
    # render's own decoded samples; our engine speaking the same texts in turn beside them.
    piper = load_voice("piper:joe")
    piper.reset()
    stock = floors.StockPiper()
    runs_e2e = []
    decoded_render = None
    for _ in range(runs):
        t_stock, _ = stock.speak_all(texts, rate)
        t_engine = floors.engine_s(piper, texts, rate)
        t_run, _ = _median_time(lambda: render(settings), 1)
        if decoded_render is None:
            decoded_render = floors.decoded(settings.output)
        t_lame = floors.lame_s(*decoded_render, tmp / "floor-decoded.mp3")
        runs_e2e.append(
            {
                "speech_floor_s": t_stock,
                "engine_speech_floor_s": t_engine,
                "encode_floor_s": t_lame,
                "end_to_end_s": t_run,
                "ratio": t_run / (t_stock + t_lame),
                "engine_ratio": t_run / (t_engine + t_lame),
            }
        )
    piper.reset()
    t_e2e = statistics.median(r["end_to_end_s"] for r in runs_e2e)
    results["overhead_runs"] = runs_e2e

    speech_floor = engines["piper:joe"]["floor_s"]
    results["stages"] = {
        "parse": {"s": t_parse, "rtf": duration / t_parse},
        "speech_piper": {
            "s": engines["piper:joe"]["stage_s"],
            "rtf": duration / engines["piper:joe"]["stage_s"],
        },
        "speech_pyttsx3": {
            "s": engines["pyttsx3"]["stage_s"],
            "rtf": duration / engines["pyttsx3"]["stage_s"],
        },
        "soundscape": {"s": t_soundscape, "rtf": duration / t_soundscape},
        "mix_master": {"s": t_mix_only, "rtf": duration / t_mix_only},
        "encode": {
            "s": encoders["meditation_writer"]["s"],
            "rtf": encoders["meditation_writer"]["rtf"],
        },
        "end_to_end": {"s": t_e2e, "rtf": duration / t_e2e},
    }
    results["speech_floor_s"] = speech_floor
    results["encode_floor_s"] = encode_floor
    results["overhead_ratio"] = statistics.median(r["ratio"] for r in runs_e2e)
    results["engine_overhead_ratio"] = statistics.median(r["engine_ratio"] for r in runs_e2e)
    results["stock_speech_floor_s"] = statistics.median(r["speech_floor_s"] for r in runs_e2e)
    results["end_to_end_rtf"] = duration / t_e2e

    # Soundscape alone: 10 minutes of the dream preset over the dream's scenes, against brown noise.
    minutes = 1.0 if quick else 10.0
    amb_script, amb_timeline = _ambience_timeline(ROOT / "scripts" / "dream.md", minutes, sr)
    amb_plan = plan_ambience("dream", script=amb_script, timeline=amb_timeline, seed=1)
    t_amb, _ = _median_time(lambda: _render_ambience(amb_plan, amb_timeline.length), runs)
    t_brown, _ = _median_time(lambda: _brown_noise_s(minutes * 60, sr), runs)
    # The worst case: every layer of the preset playing at once for the whole time.
    from meditation.soundscape.layers import LAYERS

    def all_layers():
        from meditation.mix import CHUNK

        layers = [
            LAYERS[name](sample_rate=sr, rng=np.random.default_rng(i), params=spec.params)
            for i, (name, spec) in enumerate(amb_plan.preset.layers.items())
        ]
        total = amb_timeline.length
        for start in range(0, total, CHUNK):
            n_ = min(CHUNK, total - start)
            sum(layer.render(n_) for layer in layers)

    t_all, _ = _median_time(all_layers, runs)
    results["soundscape_minutes"] = minutes
    results["soundscape_rtf"] = minutes * 60 / t_amb
    results["brown_noise_rtf"] = minutes * 60 / t_brown
    results["brown_noise_ratio"] = t_amb / t_brown
    results["all_layers_at_once_rtf"] = minutes * 60 / t_all

    # The ambient command against SoX and numpy writing brown noise (issue 11.2).
    results["ambient_floors"] = ambient_vs_floors(minutes, runs, tmp)
    results["sox_ratio"] = results["ambient_floors"]["sox_ratio"]

    # Peak memory of fresh processes.
    short, long_ = ("30s", "3m") if quick else ("10m", "60m")
    rss_short = _peak_rss_mb(
        ["ambient", "--soundscape", "dream", "--duration", short, "-o", str(tmp / "a.flac")]
    )
    rss_long = _peak_rss_mb(
        ["ambient", "--soundscape", "dream", "--duration", long_, "-o", str(tmp / "b.flac")]
    )
    results["memory_mb"] = {f"ambient_{short}": rss_short, f"ambient_{long_}": rss_long}
    results["memory_ratio_60_10"] = rss_long / rss_short
    if not quick:
        results["memory_mb"]["dream_render"] = _peak_rss_mb(
            ["render", "-o", str(tmp / "d.mp3"), "--no-cache"]
        )
    return results


def _table(r: dict) -> str:
    lines = [
        f"machine: {r['machine']['cpu']}, {r['machine']['cores']} cores, Python {r['machine']['python']}, numpy {r['machine']['numpy']}"
    ]
    lines.append(
        f"track: {r['track_s']:.1f} s of audio at rate {r['rate']:.3f}{' (quick mode)' if r['quick'] else ''}, median of {r['runs']} runs"
    )
    lines.append("")
    lines.append(f"{'stage':<22}{'seconds':>10}{'RTF (x real time)':>20}")
    for name, v in r["stages"].items():
        lines.append(f"{name:<22}{v['s']:>10.3f}{v['rtf']:>20.1f}")
    lines.append("")
    for voice, v in r["speech"].items():
        lines.append(
            f"speech floor {voice:<12} {v['floor_s']:.2f} s for {v['speech_s']:.1f} s of speech ({v['floor_rtf']:.1f}x)"
        )
    for name, v in r["encoders"].items():
        lines.append(f"encoder {name:<18} {v['s']:.2f} s ({v['rtf']:.0f}x)")
    if r.get("lame_cli"):
        lines.append(
            f"encoder lame -V2 (CLI)     {r['lame_cli']['s']:.2f} s ({r['lame_cli']['rtf']:.0f}x)"
        )
    lines.append("")
    lines.append(
        "overhead ratio = end-to-end / (speech floor: stock Piper in turn, 1 session, 1 thread "
        f"+ encode floor: lameenc on the decoded render) = {r['overhead_ratio']:.3f}; "
        f"to our engine speaking in turn {r['engine_overhead_ratio']:.3f} (median of runs taken side by side:"
    )
    for run in r["overhead_runs"]:
        lines.append(
            f"  {run['end_to_end_s']:.2f} s / ({run['speech_floor_s']:.2f} s + {run['encode_floor_s']:.2f} s) = {run['ratio']:.3f}; "
            f"our engine {run['engine_speech_floor_s']:.2f} s: {run['engine_ratio']:.3f}"
        )
    lines[-1] += ")"
    lines.append(
        f"soundscape ({r['soundscape_minutes']:g} min dream preset): {r['soundscape_rtf']:.0f}x real time; "
        f"brown noise {r['brown_noise_rtf']:.0f}x; ratio {r['brown_noise_ratio']:.2f}; all layers at once {r['all_layers_at_once_rtf']:.0f}x"
    )
    s = r["startup_s"]
    lines.append(
        f"start-up: --help {s['help']:.2f} s, voices {s['voices']:.2f} s, render --help {s['render_help']:.2f} s "
        f"(bare interpreter {s['python_bare']:.2f} s)"
    )
    lines.append(_ambient_line(r["ambient_floors"]))
    mem = ", ".join(f"{k} {v:.0f} MB" for k, v in r["memory_mb"].items())
    lines.append(f"peak RSS: {mem}; ratio long/short {r['memory_ratio_60_10']:.2f}")
    return "\n".join(lines)


def _ambient_line(a: dict) -> str:
    sox = (
        f"{a['sox_ratio']:.2f} x sox ({a['sox_s']:.2f} s; CPU time {a['sox_ratio_cpu']:.2f} x)"
        if a["sox_ratio"] is not None
        else a["sox_note"]
    )
    return (
        f"ambient --soundscape dream {a['minutes']:g} min to WAV: {a['ambient_s']:.2f} s = {sox}, "
        f"{a['ambient_numpy_ratio']:.2f} x numpy brown noise ({a['numpy_brown_s']:.2f} s); "
        f"start-up (a 1 s track) {a['startup_s']:.2f} s"
    )


def bench_formats(seconds: float, runs: int) -> dict:
    """Real-time factor of each output format's encoder beside lameenc's, and of the alternatives considered.

    The same 44.1 kHz stereo signal (a tone over noise, like the encode
    floor above) goes to each; AudioWriter rows are what a render uses.
    """
    import av
    import soundfile
    import soxr

    from meditation.export import AudioWriter

    sr = 44100
    n = int(seconds * sr)
    signal_ = _floor_signal(n, sr)
    block = 32768
    folder = Path(tempfile.mkdtemp(prefix="meditation-bench-formats-"))

    def lame_in_process():
        _lame_in_process(signal_, sr, folder / "lameenc.mp3")

    def pyav_mp3():
        with av.open(str(folder / "pyav.mp3"), "w", format="mp3") as container:
            stream = container.add_stream("libmp3lame", rate=sr, layout="stereo")
            stream.codec_context.qscale = True
            stream.codec_context.options = {
                "global_quality": str(2 * 118),
                "compression_level": "5",
            }  # -V2, -q 5
            for i in range(0, n, block):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(signal_[i : i + block].T), format="fltp", layout="stereo"
                )
                frame.sample_rate = sr
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)

    def soundfile_opus():
        resampled = soxr.resample(signal_, sr, 48000, quality="HQ").astype(np.float32)
        with soundfile.SoundFile(
            folder / "sf.opus", "w", 48000, 2, format="OGG", subtype="OPUS"
        ) as f:
            for i in range(0, len(resampled), block):
                f.write(resampled[i : i + block])

    def writer(suffix):
        def run():
            with AudioWriter(folder / f"writer{suffix}", sample_rate=sr) as w:
                for i in range(0, n, block):
                    w.write(signal_[i : i + block])

        return run

    cases = {
        "lameenc (in process)": lame_in_process,
        ".mp3 (render: lameenc process)": writer(".mp3"),
        ".m4a (render: PyAV AAC)": writer(".m4a"),
        ".opus (render: soxr + PyAV)": writer(".opus"),
        ".ogg (render: soundfile)": writer(".ogg"),
        ".flac (render: soundfile)": writer(".flac"),
        "MP3 via PyAV libmp3lame": pyav_mp3,
        "Opus via soundfile": soundfile_opus,
    }
    results = {}
    for name, fn in cases.items():
        t, _ = _median_time(fn, runs)
        results[name] = {"s": t, "rtf": seconds / t}
    for leftover in folder.iterdir():
        leftover.unlink()
    folder.rmdir()
    return {"seconds": seconds, "encoders": results}


def _formats_table(r: dict) -> str:
    lines = [
        f"output formats, {r['seconds']:g} s of stereo audio each (real-time factor beside lameenc's):"
    ]
    for name, v in r["encoders"].items():
        lines.append(f"  {name:<32}{v['s']:>8.2f} s{v['rtf']:>8.0f}x")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="short inputs, finishes in under a minute"
    )
    parser.add_argument(
        "--runs", type=int, default=None, help="runs per figure (default 3, quick 1)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--rate",
        default="script",
        help="speaking rate of every stage: 'script' (default: the pace the script is rendered "
        "at, the dream's 135 wpm) or a number (0.8 gives the figures before issue 19)",
    )
    parser.add_argument(
        "--ambient-only",
        action="store_true",
        help="only the ambient command against SoX (sox_ratio) and its start-up",
    )
    args = parser.parse_args(argv)
    runs = args.runs or (1 if args.quick else 3)
    if args.ambient_only:
        with tempfile.TemporaryDirectory(prefix="meditation-bench-") as tmp:
            ambient = ambient_vs_floors(1.0 if args.quick else 10.0, runs, Path(tmp))
        print(f"load average {os.getloadavg()[0]:.1f}")
        print(_ambient_line(ambient))
        if args.json:
            args.json.write_text(json.dumps(ambient, indent=2) + "\n", encoding="utf-8")
        return 0
    results = bench(args.quick, runs, args.rate)
    results["formats"] = bench_formats(30.0 if args.quick else 300.0, runs)
    # The palette (issue 20) and the voices (issue 19); their own scripts measure more.
    results["layers"] = bench_layers.layer_figures(10.0 if args.quick else 60.0, runs=runs)
    results["voices"] = bench_voices.voice_figures(3 if args.quick else 12, runs=runs)
    print(_table(results))
    print(_formats_table(results["formats"]))
    print(bench_layers._table(results["layers"]))
    print(bench_voices.table(results["voices"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
