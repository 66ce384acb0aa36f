"""Process and temporary-file lifecycle: children die with their parent, temporary files say whose they are.

Two promises, whatever happens to a run (Ctrl-C, SIGTERM, ``kill -9``, a
full disk):

1. **No process outlives the run.** Every helper process (the MP3 encoder,
   the eSpeak voice, batch workers) calls :func:`die_with_parent` as it
   starts. On Linux the kernel sends it a signal when the parent dies
   (``prctl(PR_SET_PDEATHSIG)``); everywhere, a watchdog thread notices that
   it has been re-parented and stops it. Helpers that read a pipe from the
   parent also stop at end-of-file without finishing their work, so a
   half-fed encoder never turns a killed run into a short, playable file.
   Children start with SIGINT blocked (:func:`signals_blocked`) and ignore it
   once running: a terminal's Ctrl-C reaches the whole process group, and the
   parent alone decides and reports it in one line.

2. **No temporary file outlives its process for long.** Outputs are written
   to ``.NAME.meditation-HOST-PID-RANDOM.SUFFIX`` beside the target and
   renamed into place only when complete. A process killed with ``kill -9``
   cannot delete its own; so before writing into a folder, every run removes
   the temporary files of this pattern, from this host, whose process is
   gone (:func:`remove_stale_temporaries`). Nothing else is ever touched: a
   file must match the whole pattern, carry our host tag, and name a PID that
   no longer runs. An unnamed ``O_TMPFILE`` linked in at the end would need
   no cleanup at all, but it exists only on Linux and some file systems, and
   the MP3 encoder (another process) writes by path; one portable scheme was
   preferred.

``PR_SET_PDEATHSIG`` fires when the *thread* that started the child ends,
not the process. Children started from the main thread use it; children
started from another thread rely on the watchdog and the pipe, which follow
the process.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import multiprocessing.context
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

__all__ = [
    "Terminated",
    "create_temporary",
    "create_work_folder",
    "die_with_parent",
    "ignore_interrupts",
    "orphaned",
    "parent_is_alive",
    "pid_alive",
    "popen_quietly",
    "remove_stale_temporaries",
    "signals_blocked",
    "spawn_context",
    "started_from_main_thread",
]

_TAG = "meditation"
_WATCH_INTERVAL_S = 0.5
_GRACE_S = 5.0


class Terminated(KeyboardInterrupt):
    """SIGTERM in the main process, unwound exactly like Ctrl-C (temporary files removed, children stopped)."""


# --- temporary files ------------------------------------------------------------


def _host_tag() -> str:
    # PIDs are only meaningful on the machine (or container) that issued
    # them: a shared folder must not lose another host's work in progress.
    return hashlib.blake2b(
        socket.gethostname().encode("utf-8", "replace"), digest_size=3
    ).hexdigest()


_HOST = _host_tag()
_STALE = re.compile(
    r"^\..+\." + _TAG + r"-(?P<host>[0-9a-f]{6})-(?P<pid>[0-9]+)-[A-Za-z0-9_]+(?:\.[A-Za-z0-9]+)?$"
)


def create_temporary(path: Path) -> tuple[int, Path]:
    """Open a new temporary file beside ``path`` for writing; returns (fd, temporary path).

    Removes stale temporary files of dead processes in that folder first. The
    temporary file keeps ``path``'s suffix, so taggers and encoders that go
    by the suffix see the right format. Raises ``OSError`` as ``mkstemp`` does.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    remove_stale_temporaries(folder)
    tail = f".{_TAG}-{_HOST}-{os.getpid()}-"
    fd, tmp = tempfile.mkstemp(
        prefix=f".{_fit_name(path.name, folder, tail, path.suffix)}{tail}",
        suffix=path.suffix,
        dir=folder,
    )
    return fd, Path(tmp)


_RANDOM_CHARS = 8
"""What ``mkstemp`` adds between prefix and suffix."""


def _fit_name(name: str, folder: Path, tail: str, suffix: str) -> str:
    """``name`` cut so the temporary name stays within the file system's limit (in bytes).

    A legal 250-byte output name would otherwise give a temporary name over
    255 bytes ("File name too long"); the cut name still identifies it.
    """
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        limit = 255
    room = limit - len(os.fsencode("." + tail + suffix)) - _RANDOM_CHARS
    encoded = os.fsencode(name)
    # Bytes, as the limit counts them; a character cut in two stays a valid (escaped) name.
    return name if len(encoded) <= room else os.fsdecode(encoded[: max(room, 1)])


def store_quietly(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically, for caches: False (and nothing left) where it cannot be written."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = create_temporary(path)
    except OSError:
        return False
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False
    return True


def remove_stale_temporaries(folder: Path) -> int:
    """Delete this host's temporary files in ``folder`` whose writing process is gone; returns how many.

    Only on POSIX, where a PID can be probed safely; elsewhere nothing is removed.
    """
    if os.name != "posix":
        return 0
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0  # a folder we cannot list is reported by the write that follows
    for entry in entries:
        if not entry.name.startswith("."):
            continue
        match = _STALE.match(entry.name)
        if match is None or match["host"] != _HOST or pid_alive(int(match["pid"])):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed += 1
        except OSError:
            pass  # another run removed it first, or it is not ours to remove
    return removed


def create_work_folder(kind: str) -> Path:
    """A private folder in the system's temporary folder, named for this process; stale ones are removed first.

    ``kill -9`` leaves such a folder behind; the next process of the same
    ``kind`` on this host removes every one whose process is gone (only
    folders of that exact name pattern, owned by this user).
    """
    parent = Path(tempfile.gettempdir())
    prefix = f"{_TAG}-{kind}-{_HOST}-"
    pattern = re.compile(re.escape(prefix) + r"(?P<pid>[0-9]+)-[A-Za-z0-9_]+$")
    try:
        entries = list(os.scandir(parent)) if os.name == "posix" else []  # PIDs probed safely
    except OSError:
        entries = []
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None or pid_alive(int(match["pid"])):
            continue
        try:
            if entry.is_dir(follow_symlinks=False) and entry.stat().st_uid == os.getuid():
                shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            pass  # another process removed it first
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-"))


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID runs (a zombie, dead but not yet reaped, counts as gone)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except OSError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


# --- child processes ------------------------------------------------------------


def started_from_main_thread() -> bool:
    """Whether a child started now may use ``PR_SET_PDEATHSIG`` (see the module docstring)."""
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def signals_blocked(*signums: int):
    """Start child processes inside this block so that they begin life with SIGINT blocked.

    A signal mask survives ``fork`` and ``exec``, so the child cannot be
    interrupted while Python starts and imports (a Ctrl-C there prints a
    traceback per child); it unblocks after :func:`ignore_interrupts`. In this
    process a Ctrl-C is held back until the block ends, so starting a child is
    never cut in half (the mask alone would not do: another thread may take
    the signal and Python then raises it in the main thread anyway). Elsewhere
    than POSIX this does nothing.
    """
    signums = signums or (signal.SIGINT,)
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    held: list = []
    swapped = {}
    if threading.current_thread() is threading.main_thread():
        for signum in signums:
            handler = signal.getsignal(signum)
            if callable(handler):
                swapped[signum] = handler
                signal.signal(signum, lambda s, f: held.append((s, f)))
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signums)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        for signum, handler in swapped.items():
            signal.signal(signum, handler)
        if held:
            signum, frame = held[0]
            swapped[signum](signum, frame)  # usually raises KeyboardInterrupt


class QuietSpawnProcess(multiprocessing.context.SpawnProcess):
    """A spawned process that starts with SIGINT blocked (see :func:`signals_blocked`)."""

    def start(self):
        try:
            with signals_blocked():
                super().start()
        except KeyboardInterrupt:
            # A Ctrl-C held back during the start lands as the block ends, before
            # the caller (a process pool) has recorded this process: stop it here,
            # or it would start up without a parent that knows it.
            if self.pid is not None:  # the child was started (``pid`` reads ``_popen``)
                self.kill()
                self.join()
            raise


def popen_quietly(args, **kwargs):
    """``subprocess.Popen`` for a helper process: it starts with SIGINT blocked, and is never left running
    by a Ctrl-C that lands as it starts (see :func:`signals_blocked`)."""

    process = None
    try:
        with signals_blocked():
            process = subprocess.Popen(args, **kwargs)
    except KeyboardInterrupt:
        if process is not None:
            process.kill()
            process.wait()
        raise
    return process


class _QuietSpawnContext(multiprocessing.context.SpawnContext):
    Process = QuietSpawnProcess


def spawn_context() -> multiprocessing.context.SpawnContext:
    """A multiprocessing "spawn" context whose processes start with SIGINT blocked.

    For ``ProcessPoolExecutor(mp_context=...)``; the workers' initializer
    calls :func:`ignore_interrupts` and :func:`die_with_parent`. Starts
    multiprocessing's resource tracker quietly first (see :func:`_quiet_resource_tracker`).
    """
    _quiet_resource_tracker()
    return _QuietSpawnContext()


def _quiet_resource_tracker() -> None:
    """Start multiprocessing's resource tracker with its standard error on the null device.

    A process pool's queues hold POSIX semaphores, registered with the
    tracker. After ``kill -9`` of this process the tracker still removes them,
    but would print a ``leaked semaphore objects`` UserWarning (and a Python
    source line) under the shell's prompt: it has nothing else to say, so it
    says it nowhere. Called before any pool exists, from the main thread; the
    redirection lasts only while the tracker starts.
    """
    from multiprocessing import resource_tracker  # noqa: PLC0415 - only processes with pools

    if os.name != "posix":
        return
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        resource_tracker.ensure_running()  # a running tracker is left as it is
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def ignore_interrupts() -> None:
    """In a child: ignore Ctrl-C (the parent reports it and stops us), then unblock it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def parent_is_alive(parent_pid: int) -> bool:
    """Whether ``parent_pid`` is still this process's parent (an orphan is adopted by another)."""
    return os.getppid() == parent_pid


def die_with_parent(
    parent_pid: int | None = None,
    *,
    signum: int = signal.SIGTERM,
    pdeathsig: bool = True,
    grace_s: float = _GRACE_S,
) -> None:
    """Call first thing in a child process: receive ``signum`` when the parent dies, and exit.

    Parameters
    ----------
    parent_pid
        The parent's PID as the parent saw it (``os.getpid()`` passed on the
        command line); default: the current parent. If the parent is already
        gone, ``signum`` is raised at once.
    signum
        Delivered on the parent's death, so the child's own handler can
        unwind (delete temporary files). If the process is still there
        ``grace_s`` seconds later, the watchdog ends it with ``os._exit``.
    pdeathsig
        Ask the Linux kernel too (instant). Pass False when the parent
        started this child from a thread other than its main thread.
    """
    global _watched_parent
    if parent_pid is None:
        parent_pid = os.getppid()
    _watched_parent = parent_pid
    kernel = pdeathsig and sys.platform.startswith("linux") and _set_pdeathsig(signum)
    if not parent_is_alive(parent_pid):
        os.kill(os.getpid(), signum)  # died before the kernel could watch it for us
    # With the kernel's signal the watchdog only enforces the grace period:
    # a second signal could cut the handler's own cleanup short.
    args = (parent_pid, None if kernel else signum, int(signum), grace_s)
    thread = threading.Thread(target=_watch, args=args, name="die-with-parent", daemon=True)
    thread.start()


_watched_parent: int | None = None


def orphaned() -> bool:
    """Whether this is a child whose parent (see :func:`die_with_parent`) has died: then it must not rename a file into place."""
    return _watched_parent is not None and not parent_is_alive(_watched_parent)


def _set_pdeathsig(signum: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        return libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False  # the watchdog covers it


def _watch(parent_pid: int, send: int | None, signum: int, grace_s: float) -> None:
    while parent_is_alive(parent_pid):
        time.sleep(_WATCH_INTERVAL_S)
    if send is not None:
        try:
            os.kill(os.getpid(), send)
        except OSError:
            pass
    time.sleep(grace_s)
    os._exit(128 + signum)  # the handler could not unwind (stuck in native code)
