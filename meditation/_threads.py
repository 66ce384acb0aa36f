"""A consumer thread that keeps order and hands its failure back, for the stages that stream through one;
and the share of the cores one render may use."""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

__all__ = [
    "InOrder",
    "available_cores",
    "core_share",
    "on_stop",
    "sharing_cores",
    "stop_workers",
]

# (renders at once, cores they share or None for all): see ``sharing_cores``.
_SHARE: ContextVar[tuple[int, int | None]] = ContextVar("meditation_core_share", default=(1, None))


def available_cores() -> int:
    """The cores this process may run on (its affinity, e.g. under ``taskset``)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@contextlib.contextmanager
def sharing_cores(renders: int, cores: int | None = None) -> Iterator[None]:
    """Renders run inside (on this thread) are one of ``renders`` at once on ``cores``
    (default: every core): their speech jobs and encoder processes default to
    their share (batch workers, Dask tasks). The settings, and so the sidecar,
    stay as given."""
    token = _SHARE.set((max(1, renders), cores))
    try:
        yield
    finally:
        _SHARE.reset(token)


def sharing() -> tuple[int, int | None]:
    """(renders at once, the cores they share or None for all), as ``sharing_cores`` set them here."""
    return _SHARE.get()


def core_share(renders: int | None = None, cores: int | None = None) -> int:
    """The cores one of ``renders`` renders at once on ``cores`` may keep busy: its equal share.

    Both default to what ``sharing_cores`` says here (``cores`` alone may be given), else one
    render on every core this process may use.
    """
    if renders is None:
        renders, shared = _SHARE.get()
        cores = shared if cores is None else cores
    cores = available_cores() if cores is None else min(cores, available_cores())
    return max(1, cores // max(1, renders))


_PREFIX = "meditation-"


def on_stop(thread: threading.Thread, stop: Callable[[], None]) -> None:
    """Remember, on the thread itself, how to ask it to end early (``stop_workers`` calls it)."""
    thread._meditation_stop = stop  # type: ignore[attr-defined]  # goes with the thread: no registry to leak


def stop_workers(timeout_s: float = 30.0) -> None:
    """Ask every worker thread to stop and wait for them, before the interpreter finalizes.

    A daemon thread still inside native code (pedalboard, an encoder) when
    Python shuts down is killed there, and C++ answers with
    ``terminate called without an active exception`` and SIGABRT. The CLI
    calls this on its way out, whatever happened; a second Ctrl-C meanwhile
    does not cut the wait short.
    """
    import time  # noqa: PLC0415 - only the way out needs it

    deadline = time.monotonic() + timeout_s
    current = threading.current_thread()
    # Rounds: a worker that was still ending may have started another (the premix, its meter).
    while time.monotonic() < deadline:
        workers = [
            t for t in threading.enumerate() if t is not current and t.name.startswith(_PREFIX)
        ]
        # Not ``join``/``is_alive``: a join that an interrupt cut short marks the
        # thread stopped while it still runs (CPython 3.11), and after that both
        # believe it. The interpreter's own list of running threads does not.
        running = sys._current_frames()
        workers = [t for t in workers if t.ident in running]
        if not workers:
            return
        for thread in workers:
            stop = getattr(thread, "_meditation_stop", None)
            if stop is not None:
                try:
                    stop()
                except Exception:
                    pass
        try:
            time.sleep(0.02)
        except KeyboardInterrupt:
            continue


_END = object()


class InOrder:
    """Give items to ``consume`` on a thread of its own, in the order put, at most ``depth`` behind.

    For work in libraries that release the GIL (metering, encoding), so it
    overlaps with whatever makes the next item. Once ``consume`` fails, the
    thread takes and drops the rest (the caller never blocks on a full
    queue) and ``failure`` holds the exception, for the caller to raise.
    """

    def __init__(self, consume: Callable[[Any], None], *, depth: int, name: str):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._work, args=(consume,), name=name, daemon=True)
        self._stopped = False
        on_stop(self._thread, self._stop)
        self._thread.start()

    def _stop(self) -> None:
        self._stopped = True  # drop what is queued, then end
        try:
            self._queue.put_nowait(_END)
        except queue.Full:
            pass  # the thread drops the queued items now and ends at the next _END or empty check

    def _work(self, consume: Callable[[Any], None]) -> None:
        while True:
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self._stopped:
                    return
                continue
            if item is _END or self._stopped:
                return
            if self.failure is not None:
                continue
            try:
                consume(item)
            except BaseException as exc:  # handed to the caller
                self.failure = exc

    def put(self, item: Any) -> None:
        """Queue the next item (waits while ``depth`` are queued)."""
        self._queue.put(item)

    def finish(self) -> None:
        """Wait until every item put so far is consumed (or dropped after a failure)."""
        self._queue.put(_END)
        self._thread.join()
