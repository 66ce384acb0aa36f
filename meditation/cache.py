"""On-disk cache of synthesized speech, shared by processes.

Keyed by (engine, voice, rate, text) and the package version, so variants that
differ only in soundscape, seed or loudness reuse the speech. Entries are
written to a temporary name and renamed into place, so concurrent workers
never read a half-written file; two workers racing on one entry both write
identical bytes and the last rename wins.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["SpeechCache", "cache_dir"]

# Bump when engine output changes for the same inputs (voice model patch, trimming).
_FORMAT = "1"


def cache_dir() -> Path:
    """The user cache folder (``MEDITATION_CACHE_DIR`` overrides it)."""
    override = os.environ.get("MEDITATION_CACHE_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir("meditation", appauthor=False))


class SpeechCache:
    """Speech audio by (voice, rate, text); ``None`` folder disables it."""

    def __init__(self, folder: Path | None = None):
        self.folder = (folder or cache_dir()) / "speech"

    @staticmethod
    def key(voice_id: str, rate: float, text: str) -> str:
        from . import __version__

        raw = "\x00".join([_FORMAT, __version__, voice_id, f"{rate:.6f}", text])
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npy"

    def get(self, key: str) -> np.ndarray | None:
        """The cached audio, or None (a damaged entry counts as missing)."""
        path = self._path(key)
        try:
            audio = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        if audio.dtype != np.float32 or audio.ndim != 1:
            return None
        return audio

    def put(self, key: str, audio: np.ndarray) -> None:
        """Store audio; failures to write are not errors (the cache is only a speed-up)."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npy", dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                np.save(f, np.ascontiguousarray(audio, dtype=np.float32), allow_pickle=False)
            os.replace(tmp, path)
        except OSError:
            try:
                os.unlink(tmp)  # type: ignore[possibly-undefined]
            except (OSError, UnboundLocalError):
                pass

    def clear(self) -> int:
        """Delete every entry; returns how many files were removed."""
        if not self.folder.exists():
            return 0
        count = sum(1 for _ in self.folder.rglob("*.npy"))
        shutil.rmtree(self.folder, ignore_errors=True)
        return count
