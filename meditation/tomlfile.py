"""Read a TOML file and turn every way it can fail into one of our errors."""

from __future__ import annotations

import tomllib
from pathlib import Path

from .errors import ManifestError, MeditationError

__all__ = ["read_toml"]


def read_toml(path: str | Path, error: type[MeditationError] = ManifestError) -> dict:
    """The table in ``path``; raise ``error`` (one line naming the file) when it cannot be read or parsed."""
    path = Path(path)
    try:
        if path.exists() and not path.is_file():
            # A folder, a FIFO or a device: reading would fail oddly or block forever.
            raise error(f"{path}: is a folder, not a file" if path.is_dir() else f"{path}: not a regular file")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: {exc}") from None
    except RecursionError:  # deeply nested arrays exhaust tomllib's recursion
        raise error(f"{path}: nested too deeply") from None
