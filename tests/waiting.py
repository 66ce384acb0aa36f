"""One way for a test to wait for something another process or thread does."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout_s: float, *, poll_s: float = 0.02) -> T:
    """Call ``predicate`` until it returns something true, or ``timeout_s`` has passed.

    Returns the last value it gave (true if it came in time, false if not), so a test says
    ``assert wait_until(...)`` where waiting too long is a failure, and goes on to its own,
    more telling assertion where it is not. A timeout is a generous upper bound for a busy
    machine, never a measurement (speed belongs in ``benchmarks/``).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(poll_s)
