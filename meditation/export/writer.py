"""Stage 7: write the finished audio, atomically.

Audio goes to a hidden temporary file beside the target and is renamed over
it only when complete (``files.commit_temporary``): a failed or interrupted
run never leaves a partial file and never damages an existing one, and a full
disk is one line (``ExportError``), never a traceback. Temporary files are
named after the process writing them, so a later run removes those of killed
runs (see ``meditation._lifecycle``). The format follows the suffix.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._lifecycle import create_temporary
from ..errors import ExportError, describe_write_error
from ..files import commit_temporary, make_folder
from ..formats import encoder_for, known_suffixes
from . import encoders as _encoders  # noqa: F401 - registers every encoder
from .tags import Metadata, tag

__all__ = ["AudioWriter"]


class AudioWriter:
    """Write ``(n, channels)`` float chunks to ``path``; the file appears only on success.

    Any failure to write (disk full, file size limit, I/O error) discards the
    temporary file and raises ``ExportError`` naming ``path``.
    """

    def __init__(
        self,
        path: Path,
        *,
        sample_rate: int,
        channels: int = 2,
        title: str | None = None,
        artist: str | None = None,
        metadata: Metadata | None = None,
        subtype: str | None = None,
        mp3_quality: int | None = None,
    ):
        """``subtype``: a soundfile subtype for WAV/FLAC instead of 24-bit PCM (stems use ``"FLOAT"``);
        ``mp3_quality``: LAME's VBR quality for MP3, 0 (best) to 9 (smallest)."""
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        encoder = encoder_for(suffix)
        if encoder is None:
            raise ExportError(
                f"unknown output format {self.path.suffix!r} (known: {known_suffixes()})"
            )
        if metadata is None:
            metadata = Metadata(title=title, artist=artist, genre=None)
        self.metadata = metadata
        self.frames = 0
        self._done = False
        try:
            make_folder(
                self.path.parent
            )  # a missing one, checked before the run: made now, removed if it fails
            fd, self._tmp = create_temporary(self.path)
        except OSError as exc:
            raise ExportError(
                f"cannot write in {str(self.path.parent)!r}: {exc.strerror}"
            ) from None
        self._file = os.fdopen(fd, "w+b")
        try:
            extra: dict = {"subtype": subtype} if subtype else {}
            if mp3_quality is not None and suffix == ".mp3":
                extra["vbr_quality"] = mp3_quality
            self._encoder = encoder(
                self._file, self._tmp, sample_rate, channels, suffix, metadata, **extra
            )
        except BaseException as exc:
            self._fail(exc)

    def write(self, chunk: np.ndarray) -> None:
        try:
            self._encoder.write(chunk)
        except BaseException as exc:
            self._fail(exc)
        self.frames += len(chunk)

    def commit(self) -> Path:
        """Finish the file, tag it, and move it into place."""
        try:
            self._encoder.close()
            self._file.flush()
            os.fsync(self._file.fileno())  # a full disk shows here, not after the rename
            self._file.close()
            tag(self._tmp, self.metadata)
            commit_temporary(self._tmp, self.path)
        except BaseException as exc:
            self._fail(exc)
        self._done = True
        return self.path

    def _fail(self, exc: BaseException):
        """Discard the temporary file and raise: one ``ExportError`` line for a failed write."""
        interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit))
        reason = None if interrupted else _write_error(self._tmp)
        if reason is None and isinstance(exc, OSError) and exc.errno is not None:
            reason = exc.errno
        self._discard()
        if reason is not None and not interrupted:
            raise ExportError(describe_write_error(reason, self.path)) from None
        if type(exc).__module__ == "soundfile":  # libsndfile's own complaint, still one line
            raise ExportError(f"cannot write {self.path}: {exc}") from None
        raise exc

    def _discard(self) -> None:
        if self._done:
            return
        self._done = True
        encoder = getattr(self, "_encoder", None)
        if encoder is not None:
            try:
                encoder.abort()
            except Exception:
                pass
        try:
            self._file.close()
        except Exception:
            pass
        try:
            self._tmp.unlink()
        except OSError:
            pass

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self._discard()


def _write_error(path: Path) -> int | None:
    """The errno a write at the end of ``path`` gives now (ENOSPC, EFBIG, EIO...), or None if it succeeds.

    libsndfile, the encoder processes and taggers report a failed write
    without its cause; repeating one write on the temporary file (about to be
    deleted) finds it.
    """
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        return None
    try:
        os.pwrite(fd, bytes(1 << 16), os.fstat(fd).st_size)
        os.fsync(fd)
    except OSError as exc:
        return exc.errno
    finally:
        os.close(fd)
    return None
