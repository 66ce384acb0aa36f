"""Reading a TOML file the user gave us, with our errors instead of Python's.

Presets and batch manifests are TOML; whatever goes wrong reading one (no
such file, a folder, unreadable bytes, a syntax error) becomes one line in
the caller's error class, naming the file and, for syntax errors, the
``file:line:col`` an editor can jump to.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from .errors import MeditationError
from .files import InputError, read_input

__all__ = ["read_toml", "MAX_TOML_BYTES"]

MAX_TOML_BYTES = 4_000_000
"""Largest preset or manifest read: thousands of hand-written variants fit in far less."""

_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_AT_END = re.compile(r"\s*\(at end of document\)\s*$")


def read_toml(
    path: str | Path, *, error_class: type[MeditationError], what: str = "soundscape"
) -> dict[str, Any]:
    """Parse the TOML file at ``path``.

    Parameters
    ----------
    path
        The file to read (UTF-8).
    error_class
        The ``MeditationError`` subclass to raise, e.g. ``SoundscapeError``.
    what
        What the file is, for the message ("soundscape", "manifest").

    Returns
    -------
    dict
        The parsed document.

    Raises
    ------
    error_class
        One line naming the file: missing, a folder, unreadable, not UTF-8,
        or not valid TOML (then with ``:line:col``).
    """
    path = Path(path)
    try:
        data = read_input(path, what, MAX_TOML_BYTES)
    except InputError as exc:
        problem = {
            "missing": f"no such {what} file",
            "folder": f"is a folder, not a {what} file",
        }.get(exc.kind, exc.problem)
        raise error_class(f"{path}: {problem}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line, col = before.count(b"\n") + 1, exc.start - before.rfind(b"\n")
        raise error_class(f"{path}:{line}:{col}: cannot read {what}: not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error_class(_decode_message(path, what, str(exc), text)) from None
    except RecursionError:  # tomllib recurses into nested arrays and inline tables
        raise error_class(f"{path}: {what} is nested too deeply to read") from None


def _decode_message(path: Path, what: str, message: str, text: str) -> str:
    """``file:line:col: what is not valid TOML: reason`` from tomllib's message."""
    found = _POSITION.search(message)
    if found:
        line, col = int(found.group(1)), int(found.group(2))
        reason = message[: found.start()]
    elif (found := _AT_END.search(message)) is not None:
        # Point at the end of the text, where the parser gave up.
        lines = text.split("\n")
        line, col = len(lines), len(lines[-1]) + 1
        reason = message[: found.start()]
    else:
        return f"{path}: {what} is not valid TOML: {message}"
    return f"{path}:{line}:{col}: {what} is not valid TOML: {reason[:1].lower()}{reason[1:]}"
