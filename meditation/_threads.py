"""A consumer thread that keeps order and hands its failure back, for the stages that stream through one."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["InOrder"]

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
        self._thread.start()

    def _work(self, consume: Callable[[Any], None]) -> None:
        while (item := self._queue.get()) is not _END:
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
