"""The one error hierarchy: every failure a user can cause is a MeditationError.

The CLI prints ``str(error)`` as one line and exits with status 2, so each
message names the bad value and, where it helps, what to do instead.
"""

from __future__ import annotations

__all__ = [
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
    """A setting is out of range or of the wrong kind."""


class VoiceError(MeditationError):
    """A voice is unknown or its engine cannot run."""


class SoundscapeError(MeditationError):
    """A soundscape preset or layer parameter is invalid."""


class ExportError(MeditationError):
    """The output cannot be written (folder, format, permissions)."""


class ManifestError(MeditationError):
    """A batch manifest is invalid."""
