"""Stage 7: write the finished audio, atomically.

Audio goes to a hidden temporary file beside the target and is renamed over
it only when complete: a failed or interrupted run never leaves a partial
file and never damages an existing one, and a full disk is one line
(``ExportError``), never a traceback. Temporary files are named after the
process writing them, so a later run removes those of killed runs (see
``meditation._lifecycle``). The format follows the suffix.

Formats and encoders:

- MP3: LAME (``lameenc``, VBR ``-V2``) in a child process, with a Xing/LAME
  info frame (encoder delay and padding: gapless). lameenc measured about 3×
  faster than the same LAME inside PyAV, so it stays.
- M4A/M4B: AAC-LC in MP4 through PyAV (FFmpeg's AAC encoder and MP4 muxer,
  which also writes the chapters: a QuickTime chapter track and Nero ``chpl``).
- Opus: libopus in Ogg through PyAV at 48 kHz (the mix is resampled with
  soxr); measured 3× faster than libsndfile's Ogg Opus writer.
- WAV (24-bit), FLAC (24-bit) and Ogg Vorbis: soundfile.

Tags, chapters and cover art are added with mutagen once the audio is
complete (M4A/M4B chapters excepted: the muxer writes them).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._lifecycle import create_temporary, orphaned, popen_quietly, started_from_main_thread
from ._threads import InOrder
from .chapters import Chapter, vorbis_chapter_comments
from .errors import ExportError, SettingsError
from .files import check_replaceable, record_written

__all__ = [
    "AudioWriter",
    "ENCODERS",
    "Cover",
    "Metadata",
    "load_cover",
    "atomic_write_text",
    "atomic_write_bytes",
]


@dataclass(frozen=True)
class Cover:
    """A checked cover image, ready to embed."""

    data: bytes
    mime: str
    """``image/png`` or ``image/jpeg``."""
    width: int
    height: int
    depth: int
    """Bits per pixel (for FLAC picture blocks)."""


@dataclass(frozen=True)
class Metadata:
    """What a finished file says about itself."""

    title: str | None = None
    artist: str | None = None
    album: str | None = None
    """Defaults to the title."""
    genre: str | None = "Meditation"
    year: int | None = None
    comment: str | None = None
    """How it was made: voice, rate, soundscape, seed, version."""
    chapters: tuple[Chapter, ...] = ()
    cover: Cover | None = None


def load_cover(path: Path) -> Cover:
    """Read and check a PNG or JPEG cover image; raise SettingsError in one line if it is not one.

    Checked before any synthesis, so a bad image costs nothing. The image
    must decode completely (Pillow), not just start with the right bytes.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SettingsError(f"cover image {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise SettingsError(f"cover image {str(path)!r} is a folder") from None
    except OSError as exc:
        raise SettingsError(f"cover image {str(path)!r} cannot be read: {exc.strerror}") from None
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        mime, kind = "image/png", "PNG"
    elif data.startswith(b"\xff\xd8\xff"):
        mime, kind = "image/jpeg", "JPEG"
    else:
        raise SettingsError(f"cover image {str(path)!r} is not a PNG or JPEG file")
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # decode every pixel: a truncated or corrupt file fails here
            width, height = image.size
            depth = {
                "1": 1,
                "L": 8,
                "P": 8,
                "RGB": 24,
                "RGBA": 32,
                "CMYK": 32,
                "I;16": 16,
                "LA": 16,
            }.get(image.mode, 24)
            if image.format != kind:
                raise ValueError(image.format)
    except Exception:
        raise SettingsError(f"cover image {str(path)!r} is a damaged {kind} file") from None
    if not (1 <= width <= 10000 and 1 <= height <= 10000):
        raise SettingsError(
            f"cover image {str(path)!r} is {width}×{height} pixels; use at most 10000×10000"
        )
    return Cover(data, mime, width, height, depth)


ENCODERS: dict[str, Callable[..., _Encoder]] = {}


def _encoder(*suffixes: str):
    def decorate(cls):
        for suffix in suffixes:
            ENCODERS[suffix] = cls
        return cls

    return decorate


class _Encoder:
    def __init__(
        self, file, path: Path, sample_rate: int, channels: int, suffix: str, metadata: Metadata
    ):
        raise NotImplementedError

    def write(self, chunk: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        """Stop without finishing; the file is about to be deleted."""


@_encoder(".mp3")
class _LameEncoder(_Encoder):
    """LAME (``lameenc``, VBR ``-V2``) in a child process fed 16-bit PCM on its stdin.

    lameenc holds the GIL while it encodes, so a thread would not overlap
    with mixing; a process does. It is a plain subprocess rather than a
    multiprocessing one so that calling ``render`` from a script without a
    ``__main__`` guard cannot start the caller's script again.
    """

    def __init__(
        self, file, path: Path, sample_rate: int, channels: int, suffix: str, metadata: Metadata
    ):
        import subprocess
        import sys

        env = dict(os.environ)
        package_parent = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = package_parent + os.pathsep + env.get("PYTHONPATH", "")
        pdeathsig = "1" if started_from_main_thread() else "0"
        # The encoder starts deaf to Ctrl-C; the parent stops it.
        self._process = popen_quietly(
            [
                sys.executable,
                "-m",
                "meditation._lame_worker",
                str(path),
                str(sample_rate),
                str(channels),
                str(os.getpid()),
                pdeathsig,
            ],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        try:
            _widen_pipe(self._process.stdin)
        except BaseException:
            self.abort()  # an interrupt here: the writer never learns of this encoder
            raise

    def write(self, chunk: np.ndarray) -> None:
        pcm = np.clip(np.round(chunk * 32767.0), -32768, 32767).astype("<i2")
        try:
            self._process.stdin.write(pcm.tobytes())
        except BrokenPipeError:
            self._fail()

    def close(self) -> None:
        try:
            self._process.stdin.close()
        except BrokenPipeError:
            pass
        if self._process.wait() != 0:
            self._fail()
        self._process.stderr.close()

    def _fail(self) -> None:
        self._process.kill()
        self._process.wait()
        detail = self._process.stderr.read().decode("utf-8", "replace").strip().splitlines()
        raise ExportError(f"MP3 encoder failed: {detail[-1] if detail else 'no message'}")

    def abort(self) -> None:
        self._process.kill()
        self._process.wait()
        for stream in (self._process.stdin, self._process.stderr):
            try:
                stream.close()
            except (OSError, ValueError):
                pass


def _widen_pipe(stream) -> None:
    """Let the mixer run a few chunks ahead of the encoder (Linux pipes hold only 64 KiB by default)."""
    try:
        import fcntl

        fcntl.fcntl(stream.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError):
        pass  # other systems, or a lower limit: the default still works, a little slower


class _ThreadedEncoder(_Encoder):
    """An encoder that works in a thread of its own, a few chunks behind the writer.

    For libraries that release the GIL while they encode (libsndfile through
    cffi, FFmpeg, soxr): the encoding overlaps with the mastering that makes
    the next chunks. Subclasses ``_consume`` each chunk in order.
    """

    _WHAT = "encoder"
    _worker = None

    def _consume(self, chunk: np.ndarray) -> None:
        raise NotImplementedError

    def write(self, chunk: np.ndarray) -> None:
        self._check_worker()
        if self._worker is None:
            self._worker = InOrder(
                self._consume, depth=8, name="meditation-encoder"
            )  # a few chunks ahead, bounded memory
        # A copy: the caller may reuse its buffer while the worker is still encoding this one.
        self._worker.put(np.array(chunk, dtype=np.float32))

    def _check_worker(self) -> None:
        failure = self._worker.failure if self._worker is not None else None
        if failure is not None:
            if isinstance(failure, OSError) or type(failure).__module__ == "soundfile":
                raise failure  # the writer words these (disk full, size limit) itself
            raise ExportError(f"{self._WHAT} failed: {failure}") from failure

    def _finish_worker(self) -> None:
        if self._worker is not None:
            self._worker.finish()
            self._check_worker()


@_encoder(".wav", ".flac", ".ogg")
class _SoundfileEncoder(_ThreadedEncoder):
    _FORMATS = {".wav": ("WAV", "PCM_24"), ".flac": ("FLAC", "PCM_24"), ".ogg": ("OGG", "VORBIS")}

    def __init__(
        self,
        file,
        path: Path,
        sample_rate: int,
        channels: int,
        suffix: str,
        metadata: Metadata,
        subtype: str | None = None,
    ):
        import soundfile

        fmt, default_subtype = self._FORMATS[suffix]
        subtype = subtype or default_subtype
        # libsndfile writes to the descriptor itself and reports a failed
        # write as an error. Given a Python file object it would call back
        # into Python, and a full disk there printed dozens of "Exception
        # ignored from cffi callback" lines and ended in an AssertionError.
        self._sf = soundfile.SoundFile(
            file.fileno(), "w", sample_rate, channels, subtype=subtype, format=fmt, closefd=False
        )

    _WHAT = "libsndfile"

    def _consume(self, chunk: np.ndarray) -> None:
        self._sf.write(chunk)

    def close(self) -> None:
        self._finish_worker()
        self._sf.close()

    def abort(self) -> None:
        try:
            self._finish_worker()
        except BaseException:
            pass
        try:
            self._sf.close()
        except Exception:
            pass


class _PyAVEncoder(_ThreadedEncoder):
    """An FFmpeg encoder and muxer through PyAV, fed float frames."""

    _CODEC = _FORMAT = ""
    _BIT_RATE = 0
    _RATES: tuple[int, ...] = ()
    """Sample rates the codec takes; others are resampled (soxr) to ``_FALLBACK_RATE``."""
    _FALLBACK_RATE = 48000

    def __init__(
        self, file, path: Path, sample_rate: int, channels: int, suffix: str, metadata: Metadata
    ):
        import av

        self._rate = sample_rate if sample_rate in self._RATES else self._FALLBACK_RATE
        self._resampler = None
        if self._rate != sample_rate:
            import soxr

            self._resampler = soxr.ResampleStream(
                sample_rate, self._rate, channels, dtype="float32", quality="HQ"
            )
        self._layout = "stereo" if channels == 2 else "mono"
        from fractions import Fraction

        self._samples = 0
        self._time_base = Fraction(1, self._rate)
        self._container = av.open(
            str(path), "w", format=self._FORMAT, options=self._options(suffix)
        )
        try:
            self._stream = self._container.add_stream(
                self._CODEC, rate=self._rate, layout=self._layout
            )
            self._stream.bit_rate = self._BIT_RATE
            if metadata.chapters:
                self._set_chapters(metadata.chapters)
        except Exception:
            self._container.close()
            raise

    def _options(self, suffix: str) -> dict:
        return {}

    def _set_chapters(self, chapters: tuple[Chapter, ...]) -> None:
        """Chapters the muxer writes itself; formats tagged later ignore this."""

    @property
    def _WHAT(self) -> str:  # noqa: N802 - the base class's constant
        return f"{self._CODEC} encoder"

    def _consume(self, chunk: np.ndarray) -> None:
        if self._resampler is not None:
            chunk = self._resampler.resample_chunk(chunk)
        self._encode(chunk)

    def _encode(self, chunk: np.ndarray | None) -> None:
        import av

        if chunk is None:
            packets = self._stream.encode(None)
        elif len(chunk) == 0:
            return
        else:
            planar = np.ascontiguousarray(np.asarray(chunk, dtype=np.float32).T)
            frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=self._layout)
            frame.sample_rate = self._rate
            # Timestamps let the encoder mark its priming samples (AAC's 1024,
            # Opus's pre-skip) so the muxer writes the edit list that hides them.
            frame.pts = self._samples
            frame.time_base = self._time_base
            self._samples += len(chunk)
            packets = self._stream.encode(frame)
        for packet in packets:
            self._container.mux(packet)

    def close(self) -> None:
        self._finish_worker()
        if self._resampler is not None:
            self._encode(
                self._resampler.resample_chunk(
                    np.zeros((0, 2 if self._layout == "stereo" else 1), np.float32), last=True
                )
            )
        self._encode(None)
        self._container.close()

    def abort(self) -> None:
        try:
            self._finish_worker()
        except Exception:
            pass
        try:
            self._container.close()
        except Exception:
            pass


@_encoder(".m4a", ".m4b")
class _AacEncoder(_PyAVEncoder):
    """AAC-LC at 128 kbit/s in MP4 (FFmpeg's ``ipod`` muxer: the M4A/M4B flavour Apple players expect).

    The muxer writes an edit list that hides the AAC priming samples, and the
    chapters both as a QuickTime chapter track (Apple Books, Podcasts, VLC)
    and as a Nero ``chpl`` box (ffprobe, many Android players).
    """

    _CODEC, _FORMAT, _BIT_RATE = "aac", "ipod", 128_000
    _RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)

    def _options(self, suffix: str) -> dict:
        return {"brand": "M4B " if suffix == ".m4b" else "M4A "}

    def _set_chapters(self, chapters: tuple[Chapter, ...]) -> None:
        from fractions import Fraction

        self._container.set_chapters(
            [
                {
                    "id": i + 1,
                    "start": int(round(c.start_s * 1000)),
                    "end": int(round(c.end_s * 1000)),
                    "time_base": Fraction(1, 1000),
                    "metadata": {"title": c.title},
                }
                for i, c in enumerate(chapters)
            ]
        )


@_encoder(".opus")
class _OpusEncoder(_PyAVEncoder):
    """Opus at 64 kbit/s VBR in Ogg (libopus through PyAV): small files for hours-long sleep tracks.

    Opus runs at 48 kHz, so any other mix rate is resampled with soxr on the
    way in; the Ogg pre-skip and the last page's granule position make
    decoders drop the codec's look-ahead and padding, keeping the length exact.
    """

    _CODEC, _FORMAT, _BIT_RATE = "libopus", "ogg", 64_000
    _RATES = (48000,)


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
    ):
        """``subtype``: a soundfile subtype for WAV/FLAC instead of 24-bit PCM (stems use ``"FLOAT"``)."""
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in ENCODERS:
            raise ExportError(
                f"unknown output format {self.path.suffix!r} (known: {', '.join(sorted(ENCODERS))})"
            )
        if metadata is None:
            metadata = Metadata(title=title, artist=artist, genre=None)
        self.metadata = metadata
        self.frames = 0
        self._done = False
        try:
            fd, self._tmp = create_temporary(self.path)
        except OSError as exc:
            raise ExportError(
                f"cannot write in {str(self.path.parent)!r}: {exc.strerror}"
            ) from None
        self._file = os.fdopen(fd, "w+b")
        try:
            extra = {"subtype": subtype} if subtype else {}
            self._encoder = ENCODERS[suffix](
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
            _tag(self._tmp, self.metadata)
            os.chmod(self._tmp, 0o644)
            check_replaceable(
                self.path
            )  # again at the last moment: the file may have appeared since the start
            if orphaned():  # a worker whose parent died: nobody asked for this file any more
                raise SystemExit(143)
            os.replace(self._tmp, self.path)
            record_written(self.path)
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
            raise ExportError(_describe(reason, self.path)) from None
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


_DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def _describe(code: int, path: Path) -> str:
    if code in _DISK_FULL:
        return f"disk full writing {path}"
    if code == errno.EFBIG:
        return f"file too large writing {path} (the file size limit was reached)"
    return f"cannot write {path}: {os.strerror(code)}"


def _tag(path: Path, metadata: Metadata) -> None:
    """Tags, chapters and cover where the format carries them (ID3v2, MP4 atoms, Vorbis comments); WAV stays plain."""
    suffix = path.suffix.lower()
    if suffix == ".wav":
        return  # RIFF INFO tags are poorly supported by players; keep WAV plain and exact
    fields = {
        "title": metadata.title,
        "artist": metadata.artist,
        "album": metadata.album or metadata.title,
        "genre": metadata.genre,
        "date": str(metadata.year) if metadata.year else None,
        "comment": metadata.comment,
    }
    fields = {k: v for k, v in fields.items() if v}
    if not fields and not metadata.chapters and metadata.cover is None:
        return
    if suffix == ".mp3":
        _tag_id3(path, fields, metadata)
    elif suffix in (".m4a", ".m4b"):
        _tag_mp4(path, fields, metadata)
    else:
        _tag_vorbis(path, fields, metadata)


def _tag_id3(path: Path, fields: dict, metadata: Metadata) -> None:
    from mutagen.id3 import APIC, CHAP, COMM, CTOC, ID3, TALB, TCON, TDRC, TIT2, TPE1, CTOCFlags

    frames = {"title": TIT2, "artist": TPE1, "album": TALB, "genre": TCON, "date": TDRC}
    tags = ID3()
    for key, frame in frames.items():
        if key in fields:
            tags.add(frame(encoding=3, text=fields[key]))
    if "comment" in fields:
        tags.add(COMM(encoding=3, lang="eng", desc="", text=fields["comment"]))
    if metadata.cover is not None:
        tags.add(
            APIC(
                encoding=3, mime=metadata.cover.mime, type=3, desc="Cover", data=metadata.cover.data
            )
        )
    if metadata.chapters:
        ids = _chapter_ids(metadata.chapters)
        tags.add(
            CTOC(
                element_id="toc",
                flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED,
                child_element_ids=ids,
                sub_frames=[TIT2(encoding=3, text="Chapters")],
            )
        )
        for element_id, chapter in zip(ids, metadata.chapters):
            tags.add(
                CHAP(
                    element_id=element_id,
                    start_time=int(round(chapter.start_s * 1000)),
                    end_time=int(round(chapter.end_s * 1000)),
                    sub_frames=[TIT2(encoding=3, text=chapter.title)],
                )
            )
    tags.save(str(path), v2_version=4)


def _chapter_ids(chapters: tuple[Chapter, ...]) -> list[str]:
    """CHAP element IDs that keep the frames in time order in the file.

    ffmpeg and many players list ID3 chapters in file order, and mutagen
    writes frames of one kind shortest first; so each ID is padded just
    enough that every chapter's frame is longer than the one before.
    """
    ids, previous = [], -1
    for i, chapter in enumerate(chapters):
        base = f"chp{i}"
        size = len(chapter.title.encode("utf-8")) + len(base)
        pad = max(0, previous + 1 - size)
        ids.append(base + "_" * pad)
        previous = size + pad
    return ids


def _tag_mp4(path: Path, fields: dict, metadata: Metadata) -> None:
    from mutagen.mp4 import MP4, MP4Cover

    atoms = {
        "title": "\xa9nam",
        "artist": "\xa9ART",
        "album": "\xa9alb",
        "genre": "\xa9gen",
        "date": "\xa9day",
        "comment": "\xa9cmt",
    }
    audio = MP4(str(path))
    if audio.tags is None:
        audio.add_tags()
    for key, atom in atoms.items():
        if key in fields:
            audio.tags[atom] = [fields[key]]
    if metadata.cover is not None:
        kind = MP4Cover.FORMAT_PNG if metadata.cover.mime == "image/png" else MP4Cover.FORMAT_JPEG
        audio.tags["covr"] = [MP4Cover(metadata.cover.data, imageformat=kind)]
    audio.save()


def _tag_vorbis(path: Path, fields: dict, metadata: Metadata) -> None:
    """FLAC, Ogg Vorbis and Ogg Opus: Vorbis comments, the CHAPTERnnn convention, and a picture."""
    import mutagen
    from mutagen.flac import FLAC, Picture

    audio = mutagen.File(str(path))
    if audio is None:
        raise ExportError(f"cannot tag {path.name}: not a file mutagen recognizes")
    if audio.tags is None:
        audio.add_tags()
    for key, value in fields.items():
        audio.tags[key] = [value]
    for key, value in vorbis_chapter_comments(metadata.chapters).items():
        audio.tags[key] = [value]
    if metadata.cover is not None:
        picture = Picture()
        picture.type = 3  # front cover
        picture.mime = metadata.cover.mime
        picture.desc = "Cover"
        picture.width, picture.height, picture.depth = (
            metadata.cover.width,
            metadata.cover.height,
            metadata.cover.depth,
        )
        picture.data = metadata.cover.data
        if isinstance(audio, FLAC):
            audio.add_picture(picture)
        else:
            import base64

            audio.tags["metadata_block_picture"] = [
                base64.b64encode(picture.write()).decode("ascii")
            ]
    audio.save()


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file via a temporary name and rename; a failed write is one ``ExportError`` and leaves nothing."""
    _atomic_write(Path(path), text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a binary file (a picture) the way ``atomic_write_text`` writes text."""
    _atomic_write(Path(path), data)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        check_replaceable(path)
        if orphaned():
            raise SystemExit(143)
        os.replace(tmp, path)
        record_written(path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.errno in (*_DISK_FULL, errno.EFBIG):
            raise ExportError(_describe(exc.errno, path)) from None
        raise
