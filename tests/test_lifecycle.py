"""Process and file lifecycle: kills, SIGTERM, Ctrl-C, a full disk, stale temporary files,
and eSpeak takes that do not depend on what was spoken before.

The kill tests start real renders as subprocesses, kill them at the stage under
test (found by polling for the temporary file or the helper process), then check
what a user would: no process of the run is left, no temporary file survives the
next run, and a file that was there before is byte for byte the same. The only
waits are generous upper bounds on a process exit.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from quick import QUICK
from waiting import wait_until

from meditation import _lifecycle
from meditation.files import record_written

ROOT = Path(__file__).resolve().parent.parent
POSIX_ONLY = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="walks /proc and signals process groups"
)
EXIT_WAIT_S = (
    15.0  # how long a helper may outlive its parent, at most (it should take well under a second)
)
OLD_BYTES = b"a file that was here before the run\n" * 100


# --- process helpers -------------------------------------------------------------


def _stat(pid: int):
    """(parent PID, start time, state) of a process, or None if there is none."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw.rsplit(b")", 1)[1].split()
    return int(fields[1]), int(fields[19]), fields[0].decode()


def _cpu_seconds(pid: int) -> float:
    """User CPU time ``pid`` has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return int(fields[11]) / os.sysconf("SC_CLK_TCK")


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline")
            .read_bytes()
            .replace(b"\0", b" ")
            .decode("utf-8", "replace")
        )
    except OSError:
        return ""


def _descendants(root: int) -> dict[tuple[int, int], str]:
    """Every process below ``root``: {(pid, start time): command line}."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = _stat(int(entry))
            if info is not None:
                children.setdefault(info[0], []).append(int(entry))
    found, todo = {}, [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            info = _stat(pid)
            if info is not None:
                found[(pid, info[1])] = _cmdline(pid)
                todo.append(pid)
    return found


def _signal_mask(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def _running(process: tuple[int, int]) -> bool:
    """Whether this very process (same PID and start time) still runs; a zombie has ended."""
    info = _stat(process[0])
    return info is not None and info[1] == process[1] and info[2] not in ("Z", "X")


def _wait_all_gone(processes) -> list[str]:
    """Wait (bounded) for the processes to end; returns the command lines of those still running."""
    wait_until(lambda: not any(_running(p) for p in processes), EXIT_WAIT_S, poll_s=0.1)
    return [processes[p] for p in processes if _running(p)]


def _wait_for(condition, proc, what: str, timeout_s: float = 120.0):
    value = wait_until(lambda: condition() or proc.poll() is not None, timeout_s)
    if value is True and proc.poll() is not None:
        value = condition()  # it may have come just as the run ended
    if not value:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {what}: {proc.communicate()}")
        pytest.fail(f"timed out waiting for {what}")
    return value


def _start(args, cwd, **kwargs):
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "meditation", *args, "--progress", "off"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
        **kwargs,
    )


def _finish(proc, timeout_s: float = 120.0):
    """Wait for the run to end; returns (stdout, stderr), empty if a surviving child still holds them open."""
    try:
        proc.wait(timeout=timeout_s)
        return proc.communicate(timeout=EXIT_WAIT_S)
    except subprocess.TimeoutExpired:
        return "", ""
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def survivors():
    """Processes the test expects to end; any still running afterwards is killed, so a failure leaves none."""
    watched: dict = {}
    yield watched
    for process in watched:
        if _running(process):
            os.kill(process[0], signal.SIGKILL)


def _earlier_output(path: Path) -> None:
    """A file an earlier run wrote (so a new run may replace it, but only when it completes)."""
    path.write_bytes(OLD_BYTES)
    record_written(path)


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if p.is_file()]


def _helper(pid: int, marker: str):
    return next((p for p, cmd in _descendants(pid).items() if marker in cmd), None)


SCRIPT = (
    "# Arrive\n\n"
    + "\n\n".join(
        f"Breath number {n} comes in slowly, and the shoulders soften a little more. [pause 1s]"
        for n in range(1, 41)
    )
    + "\n"
)


SCRIPT_NAME = "long.md"  # the shared ``folder`` holds SCRIPT under this name


@pytest.fixture
def folder(folder):
    _earlier_output(folder / "out.mp3")
    return folder


# --- killed renders --------------------------------------------------------------


@pytest.mark.slow
@POSIX_ONLY
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_render_killed_while_encoding_leaves_no_encoder_no_file_and_the_old_file(
    folder, signum, survivors
):
    proc = _start(
        ["ambient", "--duration", "4m", "--soundscape", "stream", "-o", "out.mp3"], folder
    )
    try:
        _wait_for(lambda: list(folder.glob(".out.mp3.meditation-*.mp3")), proc, "encoding started")
        encoder = _wait_for(lambda: _helper(proc.pid, "_lame_worker"), proc, "the encoder process")
        # The pieces are written when they come back; the encoder at work is what matters here.
        _wait_for(lambda: _cpu_seconds(encoder[0]) >= 0.2, proc, "the encoder encoding")
        survivors.update(_descendants(proc.pid))
        os.kill(proc.pid, signum)
        out, err = _finish(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert encoder in survivors
    assert _wait_all_gone(survivors) == []
    if signum == signal.SIGTERM:
        assert proc.returncode == 143
        assert err.strip() == "meditation: terminated; no partial file was left"
    # The encoder deletes its file when its parent dies, even by kill -9: nothing to clean up later.
    assert _temporaries(folder) == []
    assert (folder / "out.mp3").read_bytes() == OLD_BYTES


@pytest.mark.slow
@POSIX_ONLY
def test_a_temporary_file_left_by_kill_9_is_removed_by_the_next_run_in_that_folder(folder):
    """A WAV is written by the render process itself, so ``kill -9`` leaves its temporary file."""
    _earlier_output(folder / "out.wav")
    proc = _start(
        ["ambient", "--duration", "4m", "--soundscape", "stream", "-o", "out.wav"], folder
    )
    try:
        _wait_for(
            lambda: [p for p in folder.glob(".out.wav.meditation-*.wav") if p.stat().st_size > 0],
            proc,
            "writing",
        )
        os.kill(proc.pid, signal.SIGKILL)
        _finish(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    stale = _temporaries(folder)
    assert [p.name.split(".meditation-")[0] for p in stale] == [".out.wav"]
    mine = (
        folder / f".mine.wav.meditation-{_lifecycle._HOST}-{os.getpid()}-abcdefgh.wav"
    )  # a live writer's
    mine.write_bytes(OLD_BYTES)

    later = _start(
        ["ambient", "--duration", "2s", "--soundscape", "stream", "-o", "other.flac"], folder
    )
    out, err = _finish(later)
    assert later.returncode == 0, err
    assert _temporaries(folder) == [mine]
    assert (folder / "out.wav").read_bytes() == OLD_BYTES
    assert (folder / "out.mp3").read_bytes() == OLD_BYTES


@pytest.mark.slow
@POSIX_ONLY
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_render_killed_during_pyttsx3_synthesis_leaves_no_voice_process(
    folder, signum, survivors
):
    proc = _start(
        ["render", "long.md", "--voice", "pyttsx3", "--no-cache", "-o", "out.mp3"], folder
    )
    try:
        voice = _wait_for(lambda: _helper(proc.pid, "pyttsx3_engine"), proc, "the voice process")
        time.sleep(0.5)  # speaking, not starting
        everything = _descendants(proc.pid)
        survivors.update(everything)
        os.kill(proc.pid, signum)
        out, err = _finish(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert voice is not None and any("pyttsx3_engine" in cmd for cmd in everything.values())
    assert _wait_all_gone(everything) == []
    if signum == signal.SIGTERM:
        assert (
            proc.returncode == 143
            and err.strip() == "meditation: terminated; no partial file was left"
        )
    assert _temporaries(folder) == []
    assert (folder / "out.mp3").read_bytes() == OLD_BYTES


@pytest.mark.slow
@POSIX_ONLY
@pytest.mark.parametrize("when", ["starting", "speaking"])
def test_ctrl_c_to_the_process_group_during_pyttsx3_is_one_line(folder, when, survivors):
    """What a terminal sends: SIGINT to every process of the group, the voice process included."""
    proc = _start(
        ["render", "long.md", "--voice", "pyttsx3", "--no-cache", "-o", "out.mp3"], folder
    )
    try:
        _wait_for(
            lambda: _helper(proc.pid, "pyttsx3_engine"), proc, "the voice process", timeout_s=120
        )
        if when == "speaking":
            time.sleep(1.0)
        everything = _descendants(proc.pid)
        survivors.update(everything)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = _finish(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert err.strip() == "meditation: interrupted; no partial file was left"
    assert _wait_all_gone(everything) == []
    assert _temporaries(folder) == [] and (folder / "out.mp3").read_bytes() == OLD_BYTES


@pytest.mark.slow
@POSIX_ONLY
def test_ctrl_c_at_any_moment_of_a_render_is_one_line_and_status_130(folder):
    """Interrupts land in imports of native modules, in starting helpers, in speech: all read the same."""
    for delay_s in (0.2, 0.5, 0.8, 1.1, 1.4, 1.8, 2.2, 2.8):
        proc = _start(
            ["render", "long.md", "--voice", "pyttsx3", "--no-cache", "-o", "out.mp3"], folder
        )
        try:
            time.sleep(delay_s)
            everything = _descendants(proc.pid)
            os.killpg(proc.pid, signal.SIGINT)
            out, err = _finish(proc)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        assert (proc.returncode, err.strip()) == (
            130,
            "meditation: interrupted; no partial file was left",
        ), delay_s
        assert _wait_all_gone(everything) == []
    assert _temporaries(folder) == [] and (folder / "out.mp3").read_bytes() == OLD_BYTES


BATCH = """output = "{seed}.wav"
[defaults]
script = "long.md"
voice = "pyttsx3"
soundscape = "stream"
lead_in = 1
tail = 1
[matrix]
seed = [1, 2, 3, 4]
"""


@pytest.mark.slow
@POSIX_ONLY
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_killed_batch_leaves_no_worker_and_no_temporary_file(folder, signum, survivors):
    (folder / "v.toml").write_text(BATCH, encoding="utf-8")
    _earlier_output(folder / "1.wav")
    proc = _start(["batch", "v.toml", "-j", "2", "--no-cache", "--force"], folder)
    try:

        def speaking_in_a_worker():
            return any(
                "pyttsx3_engine" in cmd and _stat(pid)[0] != proc.pid
                for (pid, _), cmd in _descendants(proc.pid).items()
                if _stat(pid)
            )

        _wait_for(speaking_in_a_worker, proc, "a voice process in a worker")
        time.sleep(0.5)
        everything = _descendants(proc.pid)
        survivors.update(everything)
        os.kill(proc.pid, signum)
        out, err = _finish(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    kinds = " ".join(everything.values())
    assert "spawn_main" in kinds and "resource_tracker" in kinds and "pyttsx3_engine" in kinds
    if signum == signal.SIGTERM:
        assert proc.returncode == 143
        assert err.strip() == "meditation: terminated; no partial file was left"
    # Workers, their voice processes and multiprocessing's resource tracker all end.
    assert _wait_all_gone(everything) == []
    later = _start(
        ["ambient", "--duration", "2s", "--soundscape", "drone", "-o", "later.flac"], folder
    )
    _finish(later)
    assert later.returncode == 0
    assert _temporaries(folder) == []
    assert (
        folder / "1.wav"
    ).read_bytes() == OLD_BYTES  # killed long before its variant could finish


@POSIX_ONLY
def test_ctrl_c_while_batch_workers_start_is_one_line(folder, survivors):
    """Workers interrupted while Python starts and imports used to print a traceback each."""
    (folder / "v.toml").write_text(BATCH, encoding="utf-8")
    proc = _start(["batch", "v.toml", "-j", "2", "--no-cache", "--force"], folder)
    try:

        def worker_in_python():  # Python ignores SIGPIPE from its start: the worker is importing now
            worker = _helper(proc.pid, "spawn_main")
            return worker is not None and _signal_mask(worker[0], "SigIgn") & (
                1 << (signal.SIGPIPE - 1)
            )

        _wait_for(worker_in_python, proc, "a worker process starting Python")
        survivors.update(_descendants(proc.pid))
        os.killpg(proc.pid, signal.SIGINT)
        out, err = _finish(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert err.strip() == "meditation: interrupted; no partial file was left"
    assert _wait_all_gone(survivors) == []
    assert _temporaries(folder) == []


# --- children die with their parent (the mechanism, both ways) --------------------


PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]])
print(child.pid, flush=True)
time.sleep(600)
"""

CHILD = """
import os, sys, time
from meditation._lifecycle import die_with_parent
die_with_parent(os.getppid(), pdeathsig=sys.argv[1] == "1")
print("ready", flush=True)
time.sleep(600)
"""


@POSIX_ONLY
@pytest.mark.parametrize("pdeathsig", ["1", "0"], ids=["kernel-signal", "watchdog-only"])
def test_a_child_ends_when_its_parent_is_killed(tmp_path, pdeathsig, survivors):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD, pdeathsig], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        child_pid = int(parent.stdout.readline())
        assert parent.stdout.readline().strip() == "ready"  # the child shares the parent's stdout
        child = (child_pid, _stat(child_pid)[1])
        survivors[child] = "child"
        assert _running(child)
        parent.kill()
        parent.wait()
        assert _wait_all_gone({child: "child"}) == []
    finally:
        if parent.poll() is None:
            parent.kill()


# --- temporary files ---------------------------------------------------------------


def test_only_our_stale_temporary_files_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = _lifecycle._HOST
    stale = tmp_path / f".out.mp3.meditation-{host}-{dead.pid}-k2j3h4l5.mp3"
    live = tmp_path / f".out.mp3.meditation-{host}-{os.getpid()}-a1b2c3d4.mp3"
    other_host = (
        tmp_path
        / f".out.mp3.meditation-{'0' * 6 if host != '0' * 6 else '1' * 6}-{dead.pid}-zzzzzzzz.mp3"
    )
    users = [
        tmp_path / name
        for name in (
            ".out.mp3",
            ".hidden",
            f"out.mp3.meditation-{host}-{dead.pid}-abc.mp3",
            f".x.meditation-{host}-notapid-abc",
        )
    ]
    for path in (stale, live, other_host, *users):
        path.write_bytes(OLD_BYTES)
    fd, tmp = _lifecycle.create_temporary(tmp_path / "song.flac")
    os.close(fd)
    assert not stale.exists()
    assert (
        tmp.name.startswith(f".song.flac.meditation-{host}-{os.getpid()}-")
        and tmp.suffix == ".flac"
    )
    for path in (live, other_host, *users):
        assert path.read_bytes() == OLD_BYTES


def test_a_zombie_counts_as_gone_and_a_foreign_process_as_alive():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    assert wait_until(lambda: (_stat(child.pid) or ("", "", "Z"))[2] == "Z", 30)
    assert not _lifecycle.pid_alive(child.pid)  # exited, not yet reaped
    child.wait()
    assert not _lifecycle.pid_alive(child.pid)
    assert _lifecycle.pid_alive(1) and _lifecycle.pid_alive(os.getpid())


# --- a full disk -------------------------------------------------------------------

# RLIMIT_FSIZE makes any write past the limit fail with EFBIG (Python ignores
# SIGXFSZ), as a full disk makes it fail with ENOSPC: the same failed write(2)
# part-way through a file, in the same code (libsndfile's writes, the MP3
# encoder process, the commit), without root. A real full file system (a tiny
# tmpfs) is tested too where this test may mount one.

WRITER = """
import os, resource, sys
import numpy as np
from meditation.errors import MeditationError
from meditation.export import AudioWriter
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.RLIM_INFINITY))
rng = np.random.default_rng(1)
try:
    with AudioWriter(sys.argv[1], sample_rate=44100, title="Full") as w:
        for _ in range(20):
            w.write((rng.standard_normal((44100, 2)) * 0.1).astype(np.float32))
except MeditationError as exc:
    print(type(exc).__name__, exc)
"""


@pytest.mark.skipif(os.name != "posix", reason="RLIMIT_FSIZE")
@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus"])
def test_a_write_that_fails_part_way_is_one_error_and_leaves_nothing(tmp_path, suffix):
    target = tmp_path / f"out{suffix}"
    target.write_bytes(OLD_BYTES)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", WRITER, str(target), "60000"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0
    assert result.stderr == ""  # no "Exception ignored from cffi callback", no traceback
    assert (
        result.stdout.strip()
        == f"ExportError file too large writing {target} (the file size limit was reached)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]
    assert target.read_bytes() == OLD_BYTES


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="RLIMIT_FSIZE")
def test_stems_that_cannot_be_written_are_one_line_and_leave_nothing(tmp_path):
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, resource.RLIM_INFINITY))

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "meditation",
            "ambient",
            "--duration",
            "20s",
            "--soundscape",
            "stream",
            "-o",
            str(tmp_path / "mix.ogg"),
            "--stems",
            str(tmp_path / "stems"),
            "--progress",
            "off",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        preexec_fn=limit,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("meditation: error: file too large writing ")
    assert not (tmp_path / "mix.ogg").exists()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.fixture
def small_disk(tmp_path):
    """A 512 KB file system that really fills up (needs permission to mount tmpfs: root on Linux)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if not sys.platform.startswith("linux") or shutil.which("mount") is None:
        pytest.skip("no tmpfs mount here")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus"])
def test_a_full_disk_is_one_line_leaves_nothing_and_keeps_the_old_file(small_disk, suffix):
    old = small_disk / f"track{suffix}"
    _earlier_output(old)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # Long enough to fill 512 KB: lossy files are small (Opus at 64 kbit/s the smallest).
    duration = {".wav": "10s", ".flac": "10s", ".opus": "120s"}.get(suffix, "60s")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "meditation",
            "ambient",
            "--duration",
            duration,
            "--soundscape",
            "stream",
            "-o",
            str(old),
            "--progress",
            "off",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"meditation: error: disk full writing {old}"
    assert sorted(p.name for p in small_disk.iterdir()) == [old.name]
    assert old.read_bytes() == OLD_BYTES


@pytest.mark.slow
def test_stems_on_a_full_disk_are_one_line_and_leave_nothing(small_disk, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "meditation",
            "ambient",
            "--duration",
            "30s",
            "--soundscape",
            "stream",
            "-o",
            str(tmp_path / "mix.flac"),
            "--stems",
            str(small_disk / "stems"),
            "--progress",
            "off",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"meditation: error: disk full writing {small_disk / 'stems'}"
    )
    assert not (tmp_path / "mix.flac").exists()
    assert [p for p in small_disk.rglob("*") if p.is_file()] == []


# --- eSpeak: the same sentence, the same take ---------------------------------------


def test_a_pyttsx3_sentence_is_the_same_whatever_was_spoken_before():
    from meditation.voices import load_voice

    engine = load_voice("pyttsx3")
    try:
        sentence = "Breathe in slowly, and feel the air fill you."
        first = engine.synthesize(sentence, rate=0.9, seed=7)
        engine.synthesize(
            "Something quite different comes first, with many more words in it than before.",
            rate=0.9,
            seed=3,
        )
        after_other = engine.synthesize(sentence, rate=0.9, seed=7)
        engine.synthesize("Short.", rate=1.3, seed=5)
        after_short = engine.synthesize(sentence, rate=0.9, seed=7)
        other_voice = load_voice(
            "pyttsx3:gmw/en-gb-x-rp" if "gmw/en-gb-x-rp" in engine.voices() else "pyttsx3:gmw/en"
        )
        other_voice.synthesize("Another voice speaks in between.", rate=0.9, seed=2)
        after_other_voice = engine.synthesize(sentence, rate=0.9, seed=7)
    finally:
        engine.reset()
    assert len(first) > 22050  # real speech, over a second
    np.testing.assert_array_equal(first, after_other)
    np.testing.assert_array_equal(first, after_short)
    np.testing.assert_array_equal(first, after_other_voice)


def _render(folder: Path, out: str, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MEDITATION_CACHE_DIR": str(cache)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "meditation",
            "render",
            "short.md",
            *QUICK,
            "-o",
            out,
        ],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


SHORT = (
    "\n\n".join(
        [
            "Settle in, and let the day fall away.",
            "Notice the breath as it comes and goes.",
            "Let the shoulders drop.",
            "Feel the weight of the body on the floor.",
            "Listen to the quiet around you.",
            "Rest here for a while.",
        ]
    )
    + "\n"
)


@pytest.mark.slow
def test_two_renders_at_once_on_an_empty_cache_make_identical_files(tmp_path):
    (tmp_path / "short.md").write_text(SHORT, encoding="utf-8")
    cache = tmp_path / "cache"
    a, b = _render(tmp_path, "a.wav", cache), _render(tmp_path, "b.wav", cache)
    for proc in (a, b):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


@pytest.mark.slow
def test_a_render_that_finds_half_its_speech_cached_is_identical(tmp_path):
    """What happened between two batches at once: one takes some sentences from the
    other's cache and speaks the rest after different predecessors."""
    (tmp_path / "short.md").write_text(SHORT, encoding="utf-8")
    cache = tmp_path / "cache"
    first = _render(tmp_path, "a.wav", cache)
    assert first.communicate(timeout=300) and first.returncode == 0
    entries = sorted((cache / "speech").rglob("*.f32"))
    assert len(entries) == 6
    for entry in entries[::2]:
        entry.unlink()
    second = _render(tmp_path, "b.wav", cache)
    assert second.communicate(timeout=300) and second.returncode == 0
    a, _ = sf.read(tmp_path / "a.wav")
    b, _ = sf.read(tmp_path / "b.wav")
    assert len(a) == len(b)
    np.testing.assert_array_equal(a, b)
