"""The one error hierarchy: every failure a user can cause is a MeditationError.

The CLI prints ``str(error)`` as one line and exits with status 2, so each
message names the bad value and, where it helps, what to do instead.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

__all__ = [
    "install_hint",
    "one_line",
    "DISK_FULL",
    "describe_write_error",
    "MeditationError",
    "ScriptError",
    "SettingsError",
    "VoiceError",
    "SoundscapeError",
    "ExportError",
    "ManifestError",
]


class MeditationError(Exception):
    """Root of every error the tool reports to a user."""


class ScriptError(MeditationError):
    """A meditation script cannot be read or parsed.

    Carries the position so that editors can jump to it
    (``file:line:col: message``).
    """

    def __init__(self, message: str, *, path: str = "<script>", line: int = 0, col: int = 0):
        self.message = message
        self.path = path
        self.line = line
        self.col = col
        where = path if line <= 0 else f"{path}:{line}:{max(col, 1)}"
        super().__init__(f"{where}: {message}")


class SettingsError(MeditationError):
    """A setting is out of range or of the wrong kind.

    With ``setting`` (a key such as ``duration``), the message follows its
    name as the command line spells it (``--duration 5s is too short``);
    :meth:`worded_as_key` spells it as a front matter or manifest key.
    """

    def __init__(self, message: str, *, setting: str | None = None):
        self.message, self.setting = message, setting
        super().__init__(message if setting is None else f"--{setting.replace('_', '-')} {message}")

    def worded_as_key(self) -> str:
        """The message naming the setting as a manifest writes it (``duration 5s is too short``)."""
        return self.message if self.setting is None else f"{self.setting} {self.message}"


class VoiceError(MeditationError):
    """A voice is unknown or its engine cannot run."""


class SoundscapeError(MeditationError):
    """A soundscape preset or layer parameter is invalid."""


class ExportError(MeditationError):
    """The output cannot be written (folder, format, permissions)."""


class ManifestError(MeditationError):
    """A batch manifest is invalid."""


DISK_FULL = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG})
"""The errnos of a write that ran out of room: the disk, a quota, or the file size limit."""


def one_line(exc: BaseException | str) -> str:
    """An error's text on one line, as the CLI, batch reports and the studio show it."""
    return " ".join(str(exc).split())


def describe_write_error(code: int, path: object) -> str:
    """One line for a failed write of ``path`` by its errno."""
    if code == errno.EFBIG:
        return f"file too large writing {path} (the file size limit was reached)"
    if code in DISK_FULL:
        return f"disk full writing {path}"
    return f"cannot write {path}: {os.strerror(code)}"


def install_hint(extra: str) -> str:
    """The pip command that adds an optional extra, for the way this copy was installed.

    Running from a source folder (a checkout, or an editable install), the
    folder itself is named; an installed copy names the distribution, which is
    ``meditation-render`` (``meditation`` on the index is another program).
    """
    source = Path(__file__).resolve().parents[1]
    if (source / "pyproject.toml").is_file():
        return f'pip install "{source}[{extra}]"'
    return f'pip install "meditation-render[{extra}]"'
