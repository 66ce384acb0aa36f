"""On-disk cache of synthesized speech, shared by processes.

Keyed by (engine, voice, rate, text), the sample rate of the finished audio
(speech is stored trimmed and resampled, ready to mix), the package version
and the entry format, so variants that differ only in soundscape, seed or loudness reuse
the speech. It lives in the user cache folder (platformdirs;
``MEDITATION_CACHE_DIR`` overrides it), ``meditation cache clear`` empties it
and ``--no-cache`` bypasses it.

Safe under concurrency without locks: an entry is written to a unique
temporary name in its final folder and renamed into place (atomic on POSIX
and Windows), so a reader sees either no entry or a whole one; two workers
racing on one entry write identical bytes and the last rename wins. Each
entry carries its length and a checksum, so a damaged or truncated entry
(disk full, a crash, a stray edit) is a miss, is deleted, and is rewritten by
the next synthesis — never returned as audio.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

from . import __version__

if TYPE_CHECKING:  # imported where used: `meditation voices` reads the cache folder without numpy
    import numpy as np  # noqa: PLC0415 - here: `meditation voices` and `cache` start without numpy

__all__ = ["SpeechCache", "cache_dir"]

# Bump when engine output changes for the same inputs (voice model patch,
# trimming) or when the entry layout changes; old entries are then ignored.
_FORMAT = "4"  # 4: pyttsx3 takes no longer depend on the sentences spoken before
_MAGIC = b"MEDSPCH3"
# magic, number of float32 samples, blake2b-128 digest of the samples
_HEADER = struct.Struct("<8sQ16s")
_SUFFIX = ".f32"
_TMP_PREFIX = ".tmp-"


def cache_dir() -> Path:
    """The user cache folder (``MEDITATION_CACHE_DIR`` overrides it)."""
    override = os.environ.get("MEDITATION_CACHE_DIR")
    if override:
        return Path(override)
    return Path(platformdirs.user_cache_dir("meditation", appauthor=False))


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


class SpeechCache:
    """Speech audio by (voice, rate, text), in ``folder/speech`` (default: the user cache folder)."""

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder if folder is not None else cache_dir()) / "speech"
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(voice_id: str, rate: float, text: str, sample_rate: int = 0) -> str:
        """The entry name for a text spoken by ``voice_id`` (``engine:voice``) at ``rate``,
        as finished audio at ``sample_rate``."""
        raw = "\x00".join(
            [_FORMAT, __version__, voice_id, f"{rate:.6f}", str(int(sample_rate)), text]
        )
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}{_SUFFIX}"

    def get(self, key: str) -> np.ndarray | None:
        """The cached audio, or None when missing or damaged (a damaged entry is deleted)."""
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                blob = f.read()
        except OSError:  # missing, unreadable, being replaced on Windows
            self.misses += 1
            return None
        audio = _decode(blob)
        if audio is None:
            self.misses += 1
            try:
                path.unlink()  # let the next synthesis write a good one
            except OSError:
                pass
            return None
        self.hits += 1
        return audio

    def put(self, key: str, audio: np.ndarray) -> None:
        """Store audio; failures to write are not errors (the cache is only a speed-up)."""
        path = self._path(key)
        import numpy as np  # noqa: PLC0415 - here: `meditation voices` and `cache` start without numpy

        data = np.ascontiguousarray(audio, dtype="<f4").reshape(-1).tobytes()
        blob = _HEADER.pack(_MAGIC, len(data) // 4, _digest(data)) + data
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=_SUFFIX, dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, path)
            tmp = None
        except OSError:
            pass
        finally:
            # Also on KeyboardInterrupt: never leave a temporary file behind.
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass

    def count(self) -> int:
        """How many entries the cache holds."""
        if not self.folder.is_dir():
            return 0
        return sum(
            1 for p in self.folder.rglob(f"*{_SUFFIX}") if not p.name.startswith(_TMP_PREFIX)
        )

    def clear(self) -> int:
        """Delete every entry (and any leftover temporary file); returns how many entries were removed."""
        if not self.folder.exists():
            return 0
        count = self.count()
        shutil.rmtree(self.folder, ignore_errors=True)
        return count


def _decode(blob: bytes) -> np.ndarray | None:
    if len(blob) < _HEADER.size:
        return None
    magic, n, digest = _HEADER.unpack_from(blob)
    data = blob[_HEADER.size :]
    if magic != _MAGIC or len(data) != 4 * n or _digest(data) != digest:
        return None
    import numpy as np  # noqa: PLC0415 - here: `meditation voices` and `cache` start without numpy

    audio = np.frombuffer(data, dtype="<f4").astype(np.float32)  # a writable, native-order copy
    if not np.all(np.isfinite(audio)):
        return None
    return audio
