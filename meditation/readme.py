"""README sections generated from the code's own declarations.

The settings table (``meditation.settings_table``) and the preset reference
(``meditation.soundscape.reference``) are each written between two marker
lines of README.md; tests compare them with what the code declares.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from .errors import MeditationError

__all__ = ["replace_section", "section_command"]


def replace_section(
    readme: str, start: str, end: str, body: str, *, error: type[MeditationError]
) -> str:
    """``readme`` with the text between the ``start`` and ``end`` marker lines replaced by ``body``."""
    first, last = readme.find(start), readme.find(end)
    if first < 0 or last < first:
        raise error(f"README.md has no markers {start!r} … {end!r}")
    return readme[: first + len(start)] + "\n" + body + "\n" + readme[last:]


def section_command(
    argv: list[str] | None,
    *,
    prog: str,
    what: str,
    body: Callable[[], str],
    replace: Callable[[str], str],
) -> int:
    """``prog [--readme [FILE]]``: print the section, or rewrite it in FILE (default README.md)."""
    parser = argparse.ArgumentParser(prog=prog, description=f"Print or update the README's {what}.")
    parser.add_argument(
        "--readme",
        nargs="?",
        const="README.md",
        help=f"rewrite the {what} in this README (default README.md)",
    )
    args = parser.parse_args(argv)
    if args.readme:
        path = Path(args.readme)
        path.write_text(replace(path.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        sys.stdout.write(body() + "\n")
    return 0
