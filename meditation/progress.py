"""Progress bars on a terminal, silence elsewhere (logs, CI, pipes)."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

__all__ = ["progress", "enabled"]

_forced: bool | None = None


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
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def set_description(self, text: str) -> None:
        pass


@contextmanager
def progress(description: str, total: float | None, unit: str = "it") -> Iterator[object]:
    """A tqdm bar on a terminal; a do-nothing object otherwise."""
    if not enabled():
        yield _Quiet()
        return
    from tqdm import tqdm

    # Seconds of audio read as seconds with one decimal (tqdm's default shows raw floats and "s/s").
    if unit == "s":
        fmt = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}]" if total else "{desc}: {n:.1f} s [{elapsed}]"
    else:
        fmt = None
    bar = tqdm(total=total, desc=description, unit=unit, leave=False, file=sys.stderr, dynamic_ncols=True, bar_format=fmt)
    try:
        yield bar
    finally:
        bar.close()
