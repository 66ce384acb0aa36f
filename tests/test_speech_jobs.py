"""Speech spoken side by side (``--speech-jobs``): the same bytes as one at a time,
handed on in order, the cores shared with batch workers, and nothing left by a kill."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_lifecycle import (
    OLD_BYTES,
    POSIX_ONLY,
    SCRIPT,
    _descendants,
    _earlier_output,
    _finish,
    _start,
    _temporaries,
    _wait_all_gone,
    _wait_for,
    survivors,  # noqa: F401 - a fixture
)

from meditation import voices
from meditation.batch import cluster, runner
from meditation.batch.manifest import Variant
from meditation.cli import main
from meditation.script import read_script
from meditation.segments import plan_segments
from meditation.settings import RenderSettings, resolve_settings
from meditation.speech import auto_speech_jobs, available_cores, sharing_cores, synthesize

ROOT = Path(__file__).resolve().parent.parent
VOICES = ["piper:joe", "hibari:heart", "pyttsx3"]

SHORT = """---
title: Speech jobs
---
# Arrive

Breathe in slowly, and feel the cool air. [pause 1s] And let it go.

The shoulders soften a little more.

# Rest

The river flows on, and on. Rest here a while, with nothing to do.

Breathe in slowly, and feel the cool air.
"""

TEXTS = [
    "Breathe in slowly, and feel the cool air.",
    "And let it go.",
    "The shoulders soften a little more.",
    "The river flows on, and on.",
    "Breathe in slowly, and feel the cool air.",  # said twice: spoken once
    "Rest here a while, with nothing to do.",
]


@pytest.mark.slow
@pytest.mark.parametrize("voice", VOICES)
def test_one_and_two_speech_jobs_write_the_same_wav(tmp_path, voice):
    script = tmp_path / "short.md"
    script.write_text(SHORT, encoding="utf-8")
    written = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}.wav"
        args = ["render", str(script), "-o", str(out), "--voice", voice, "--no-cache"]
        assert main([*args, "--speech-jobs", str(jobs), "--progress", "off"]) == 0
        written[jobs] = out.read_bytes()
    assert written[1] == written[2]
    audio, sr = sf.read(tmp_path / "jobs2.wav", dtype="float32")
    assert len(audio) > 10 * sr and np.sqrt(np.mean(audio**2)) > 0.01  # a real track, not silence


@pytest.mark.slow
@pytest.mark.parametrize("voice", VOICES)
def test_two_jobs_speak_in_two_threads_and_hand_on_in_order(voice):
    handed: list = []
    speakers: list[int] = []

    def each(audio):
        handed.append(audio)
        names = {t.name for t in threading.enumerate() if t.name.startswith("meditation-speech")}
        speakers.append(len(names))

    two = synthesize(TEXTS, voice=voice, rate=1.0, sample_rate=22050, each=each, jobs=2)
    one = synthesize(TEXTS, voice=voice, rate=1.0, sample_rate=22050, jobs=1)
    assert max(speakers) == 2  # two threads drove the engine
    assert len(handed) == len(TEXTS) and all(a is b for a, b in zip(handed, two, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(one, two, strict=True))
    assert np.array_equal(two[0], two[4]) and len(two[1]) < len(two[0])  # in order, not shuffled
    # Nothing is left running once the stage returns.
    assert not [t for t in threading.enumerate() if t.name.startswith("meditation-speech")]


@pytest.mark.slow
@pytest.mark.parametrize("voice", VOICES)
def test_two_renders_at_once_in_one_process_each_get_their_own_speech(voice):
    """As in a Dask worker with two threads: one voice, two renders speaking side by side."""
    alone = synthesize(TEXTS, voice=voice, rate=0.9, sample_rate=22050, jobs=1)
    together: dict = {}

    def speak(name, texts, each=None):
        together[name] = synthesize(
            texts, voice=voice, rate=0.9, sample_rate=22050, jobs=2, each=each
        )

    # The second render starts (and resets the voice) while the first is mid-speech.
    second = threading.Thread(target=speak, args=("backward", TEXTS[::-1]))
    speak("forward", TEXTS, each=lambda audio: second.is_alive() or second.ident or second.start())
    second.join()
    assert set(together) == {"forward", "backward"}  # neither failed
    assert all(np.array_equal(a, b) for a, b in zip(alone, together["forward"], strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(alone, together["backward"][::-1], strict=True))


def test_speech_jobs_is_a_setting_like_the_others(tmp_path, capsys):
    script = tmp_path / "s.md"
    script.write_text("---\nspeech_jobs: 3\n---\nHello.\n", encoding="utf-8")
    assert resolve_settings({}, read_script(script)).speech_jobs == 3
    assert resolve_settings({"speech_jobs": "2"}, read_script(script)).speech_jobs == 2
    assert RenderSettings().speech_jobs is None  # chosen from the machine
    assert main(["render", str(script), "--speech-jobs", "0", "-o", str(tmp_path / "o.wav")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "meditation: error: --speech-jobs 0 is out of range (1 to 64)"
    assert not (tmp_path / "o.wav").exists()


def test_the_default_follows_the_cores_this_process_may_use():
    cores = available_cores()
    assert 1 <= auto_speech_jobs() <= cores
    assert auto_speech_jobs(renders_at_once=cores) == 1  # batch workers, one per core
    assert auto_speech_jobs(cores=1) == 1
    with sharing_cores(cores):
        assert auto_speech_jobs() == 1
        with sharing_cores(1, cores=1):
            assert auto_speech_jobs() == 1
    assert auto_speech_jobs() == auto_speech_jobs(1)
    if not hasattr(os, "sched_setaffinity"):
        return
    # As under `taskset -c 0`: one core, one job.
    code = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
        "from meditation.speech import auto_speech_jobs; print(auto_speech_jobs())"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "1", out.stderr


class _Probe(voices.VoiceEngine):
    """A stand-in voice that notes the threads it speaks on, so a render's speech jobs show."""

    concurrent = True
    threads: set = set()

    @classmethod
    def voices(cls):
        return ["a"]

    @classmethod
    def default_voice(cls):
        return "a"

    @property
    def sample_rate(self):
        return 22050

    def synthesize(self, text, *, rate, seed):
        type(self).threads.add(threading.current_thread().name)
        time.sleep(0.2)  # speaking takes a while: the next sentence goes to another thread
        n = int(22050 * 0.03 * len(text) / rate)
        return (0.3 * np.sin(np.arange(n) * 0.05)).astype(np.float32)


@pytest.fixture
def probe():
    voices.register_engine("probe")(_Probe)
    voices.load_voice.cache_clear()
    _Probe.threads = set()
    yield _Probe
    voices.ENGINES.pop("probe", None)
    voices.load_voice.cache_clear()


@pytest.mark.slow
def test_batch_workers_and_dask_tasks_speak_with_their_share_of_the_cores(tmp_path, probe):
    script = tmp_path / "short.md"
    script.write_text(SHORT, encoding="utf-8")
    settings = RenderSettings(
        script=script, output=tmp_path / "v.wav", voice="probe:a", soundscape="none", cache=False
    )
    spoken = len({s.text for s in plan_segments(read_script(script), rate=0.9) if s.spoken})
    cores = available_cores()

    def speakers(run) -> int:
        probe.threads = set()
        outcome = run()
        assert outcome[0] == "rendered", outcome
        return len(probe.threads)

    variant = Variant(name="v", settings=settings, values={})
    for workers in (1, cores, 2 * cores):  # -j N: N worker processes, each renders like this
        expected = min(auto_speech_jobs(workers), spoken)
        assert speakers(lambda workers=workers: runner._run_one(variant, workers)) == expected
    given = Variant(name="v", settings=settings.replace(speech_jobs=2), values={})
    assert speakers(lambda: runner._run_one(given, cores)) == 2  # the manifest's own value stands
    assert json.loads((tmp_path / "v.json").read_text())["settings"]["speech_jobs"] == 2
    # A Dask task: local:N shares this machine's cores (elsewhere: the worker's threads).
    for workers in (1, cores):
        job = cluster._Job(variant, read_script(script), None, True, renders_here=workers)
        expected = min(auto_speech_jobs(workers), spoken)
        assert speakers(lambda job=job: astuple(cluster._render_task(job))) == expected


@POSIX_ONLY
@pytest.mark.slow
@pytest.mark.parametrize("voice", ["piper", "pyttsx3"])
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_render_killed_mid_speech_with_two_jobs_leaves_nothing(
    tmp_path,
    monkeypatch,
    voice,
    signum,
    survivors,  # noqa: F811 - the fixture
):
    folder, cache, scratch = tmp_path / "work", tmp_path / "cache", tmp_path / "tmp"
    for f in (folder, cache, scratch):
        f.mkdir()
    (folder / "long.md").write_text(SCRIPT, encoding="utf-8")
    _earlier_output(folder / "out.mp3")
    monkeypatch.setenv("MEDITATION_CACHE_DIR", str(cache))
    monkeypatch.setenv("TMPDIR", str(scratch))
    args = ["render", "long.md", "--voice", voice, "--speech-jobs", "2", "-o", "out.mp3"]
    proc = _start(args, folder)
    try:
        # Mid-speech: some sentences are spoken (and cached), most are not.
        _wait_for(lambda: len(list(cache.rglob("*.f32"))) >= 2, proc, "speech under way")
        everything = _descendants(proc.pid)
        if voice == "pyttsx3":
            assert any("pyttsx3_engine" in cmd for cmd in everything.values())
        survivors.update(everything)
        os.kill(proc.pid, signum)
        out, err = _finish(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert len(list(cache.rglob("*.f32"))) < 40  # it was stopped before the end of the speech
    assert _wait_all_gone(everything) == []
    if signum == signal.SIGTERM:
        assert proc.returncode == 143
        assert err.strip() == "meditation: terminated; no partial file was left"
    assert _temporaries(folder) == [] and list(scratch.iterdir()) == []
    assert (folder / "out.mp3").read_bytes() == OLD_BYTES


@pytest.mark.slow
def test_the_speech_benchmark_runs_in_quick_mode(tmp_path):
    """So it cannot rot; its figures are not asserted (machines are noisy)."""
    out = tmp_path / "speech.json"
    args = ["--quick", "--runs", "1", "--jobs", "1,2", "--no-memory", "--json", str(out)]
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_speech.py"), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(out.read_text())
    for part in data["measured"].values():
        for key in ("median_floor_s", "median_ratio_1", "median_ratio_2", "median_cpu_2_s"):
            assert part[key] > 0
    assert data["measured"]["taskset -c 0"]["cores"] == 1
    assert "speech jobs    2" in result.stdout
