"""Progress bars on a terminal, silence elsewhere (logs, CI, pipes)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

__all__ = ["Bar", "progress", "enabled", "set_listener", "clock"]

Listener = Callable[[str, float, float | None], None]

_forced: bool | None = None
_listener: Listener | None = None


class Bar(Protocol):
    """What ``progress`` yields: the part of a tqdm bar the stages use."""

    def update(self, n: float = 1) -> None: ...

    def set_postfix_str(self, text: str) -> None: ...

    def set_description(self, text: str) -> None: ...


def enabled() -> bool:
    """True when stderr is a terminal (or bars were forced on/off)."""
    if _forced is not None:
        return _forced
    return sys.stderr.isatty()


def set_enabled(value: bool | None) -> None:
    """Force bars on or off (None: decide by the terminal)."""
    global _forced
    _forced = value


class _Quiet:
    def update(self, n: float = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def set_description(self, text: str) -> None:
        pass


def set_listener(listener: Listener | None) -> None:
    """Also report every step to ``listener(stage, done, total)`` (None: stop); the studio's progress bar."""
    global _listener
    _listener = listener


class _Reported:
    """Passes steps to the listener, and to a terminal bar if there is one."""

    def __init__(self, bar: Bar, stage: str, total: float | None, listener: Listener):
        self.bar, self.stage, self.total, self.listener, self.done = (
            bar,
            stage,
            total,
            listener,
            0.0,
        )
        listener(stage, 0.0, total)

    def update(self, n: float = 1) -> None:
        self.done += n
        self.bar.update(n)
        self.listener(self.stage, self.done, self.total)

    def set_postfix_str(self, text: str) -> None:
        self.bar.set_postfix_str(text)

    def set_description(self, text: str) -> None:
        self.bar.set_description(text)


@contextmanager
def progress(description: str, total: float | None, unit: str = "it") -> Iterator[Bar]:
    """A tqdm bar on a terminal; a do-nothing object otherwise (either also tells the listener)."""
    if not enabled():
        yield _Quiet() if _listener is None else _Reported(_Quiet(), description, total, _listener)
        return
    from tqdm import tqdm  # noqa: PLC0415 - only a terminal draws bars; quiet runs start without tqdm

    # Seconds of audio read as seconds with one decimal (tqdm's default shows raw floats and "s/s").
    if unit == "s":
        fmt = (
            "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}]"
            if total
            else "{desc}: {n:.1f} s [{elapsed}]"
        )
    else:
        fmt = None
    bar = tqdm(
        total=total,
        desc=description,
        unit=unit,
        leave=False,
        file=sys.stderr,
        dynamic_ncols=True,
        bar_format=fmt,
    )
    try:
        yield bar if _listener is None else _Reported(bar, description, total, _listener)
    finally:
        bar.close()


def clock(seconds: float) -> str:
    """A length as a player shows it: ``5:47``, or ``8:00:00`` from an hour on."""
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}:{secs:02d}"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
