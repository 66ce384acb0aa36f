"""What a batch shows while it runs: a bar and a line per worker on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from tqdm import tqdm

__all__ = ["Display"]


class Display:
    """One bar for the batch and a line per worker on a terminal; plain lines otherwise."""

    def __init__(self, total: int, done: int, jobs: int, bars: bool, echo: Callable[[str], Any]):
        self.bars = bars
        self.echo = echo
        self.closed = False
        if bars:
            # Whole variants and clock time only: no raw floats on the bar.
            self.main = tqdm(
                total=total,
                initial=done,
                desc="batch",
                bar_format="{desc}: {percentage:3.0f}% |{bar}| {n_fmt}/{total_fmt} variants [{elapsed}<{remaining}]",
                file=sys.stderr,
                dynamic_ncols=True,
            )
            self.workers = [
                tqdm(
                    total=0,
                    bar_format="  {desc}",
                    desc=f"worker {i + 1}: starting",
                    position=i + 1,
                    file=sys.stderr,
                    leave=False,
                )
                for i in range(jobs)
            ]

    def line(self, text: str, *, finished: bool = True, error: bool = False) -> None:
        """A variant's line; ``error`` lines go to stderr even without bars."""
        if self.bars:
            self.main.write(text, file=sys.stderr)
            if finished:
                self.main.update(1)
        elif error:
            print(text, file=sys.stderr, flush=True)
        else:
            self.echo(text)

    def worker(self, index: int, name: str | None) -> None:
        if self.bars:
            self.workers[index].set_description_str(
                f"worker {index + 1}: {name}" if name else f"worker {index + 1}: idle"
            )

    def close(self) -> None:
        if self.bars and not self.closed:
            self.closed = True
            for bar in self.workers:
                bar.close()
            self.main.close()
