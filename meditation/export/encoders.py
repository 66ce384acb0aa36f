"""The encoders, one per format family; each registers the suffixes it writes (``meditation.formats``).

- MP3: LAME (``lameenc``, VBR ``-V2``) in child processes, one per core,
  encoding the track in pieces that are joined into one stream
  (``mp3frames``), with a Xing/LAME info frame (encoder delay and padding:
  gapless). lameenc measured about 3× faster than the same LAME inside
  PyAV, so it stays.
- M4A/M4B: AAC-LC in MP4 through PyAV (FFmpeg's AAC encoder and MP4 muxer,
  which also writes the chapters: a QuickTime chapter track and Nero ``chpl``).
- Opus: libopus in Ogg through PyAV at 48 kHz (the mix is resampled with
  soxr); measured 3× faster than libsndfile's Ogg Opus writer.
- WAV (24-bit), FLAC (24-bit) and Ogg Vorbis: soundfile (libsndfile); 24-bit WAV samples are
  converted in numpy (``pcm24``, libsndfile's bytes) and written through libsndfile raw.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
from collections import deque
from fractions import Fraction
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import soundfile
import soxr

from .._lifecycle import popen_quietly, started_from_main_thread
from .._threads import InOrder, core_share
from ..chapters import Chapter
from ..errors import ExportError
from ..formats import register_encoder
from . import mp3frames
from .tags import Metadata

__all__ = ["Encoder", "pcm24"]


class Encoder:
    """Writes one file's audio; the writer calls ``write`` per chunk, then ``close`` or ``abort``."""

    EVERY_CORE: ClassVar[bool] = False
    """Whether it encodes on every core the render may use (else on one, beside the mastering)."""

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


@register_encoder(".mp3")
class _LameEncoder(Encoder):
    """LAME (``lameenc``, VBR ``-V2``) in child processes, one per core this render may use.

    lameenc holds the GIL while it encodes, so threads would not overlap;
    processes do. The track goes to them in fixed pieces (``mp3frames``),
    each piece as soon as all of its samples are here, round the processes
    in turn, and the pieces are joined and written as they come back, behind
    room left for the info frame, which ``close`` fills in. A piece does not
    depend on which process encodes it or how many there are, so the file
    is the same on every machine. A track at a rate outside MPEG-1 is one
    piece, streamed to one process as it comes.

    They are plain subprocesses rather than multiprocessing ones so that
    calling ``render`` from a script without a ``__main__`` guard cannot
    start the caller's script again.
    """

    EVERY_CORE = True

    def __init__(
        self,
        file,
        path: Path,
        sample_rate: int,
        channels: int,
        suffix: str,
        metadata: Metadata,
        vbr_quality: int = 2,
    ):
        self._file = file
        self._path = str(path)
        self._args = [str(sample_rate), str(channels), str(os.getpid())]
        self._args += ["1" if started_from_main_thread() else "0", str(int(vbr_quality))]
        self._vbr_quality = int(vbr_quality)
        self._sample_bytes = 2 * channels
        self._split = mp3frames.splits(sample_rate)
        self._processes: list[_LameProcess] = []
        self._most = core_share() if self._split else 1
        self._pending = bytearray()  # samples not yet sent, from ``_pending_at`` on
        self._pending_at = 0
        self._samples = 0
        self._pieces: list[tuple[int, _LameProcess]] = []  # (first frame, its process), in order
        self._joiner = mp3frames.Joiner()
        self._info = mp3frames.StreamInfo()
        self._joined = 0  # pieces joined and written
        try:
            self._process_for(0)  # started now: its start-up overlaps with the first chunks
        except BaseException:
            self.abort()  # an interrupt here: the writer never learns of this encoder
            raise

    def _process_for(self, piece: int) -> _LameProcess:
        index = piece % self._most
        while len(self._processes) <= index:
            # The first process deletes the temporary file if this process dies (even by kill -9).
            extra = [] if self._processes else [self._path]
            self._processes.append(_LameProcess(self._args + extra))
        return self._processes[index]

    def write(self, chunk: np.ndarray) -> None:
        pcm = np.clip(np.round(chunk * 32767.0), -32768, 32767).astype("<i2").tobytes()
        self._samples += len(chunk)
        if not self._split:
            self._send(self._process_for(0), pcm, end=False)
            return
        self._pending += pcm
        while True:
            first, end = mp3frames.piece_span(len(self._pieces))
            if self._samples <= end * mp3frames.FRAME_SAMPLES:
                break  # not all of it yet, or it is the last piece: close sends that
            self._send_piece(first, end * mp3frames.FRAME_SAMPLES)
        self._write_ready()

    def _send_piece(self, first: int, end: int) -> None:
        """Send samples [first frame, end sample) as the next piece, and drop what no later piece needs."""
        piece = len(self._pieces)
        process = self._process_for(piece)
        start = first * mp3frames.FRAME_SAMPLES
        b = self._sample_bytes
        pcm = bytes(self._pending[(start - self._pending_at) * b : (end - self._pending_at) * b])
        self._send(process, pcm, end=True)
        self._pieces.append((first, process))
        keep = mp3frames.piece_span(piece + 1)[0] * mp3frames.FRAME_SAMPLES
        del self._pending[: (keep - self._pending_at) * b]
        self._pending_at = keep

    def _send(self, process: _LameProcess, pcm: bytes, *, end: bool) -> None:
        try:
            process.send(pcm, end=end)
        except BrokenPipeError:
            self._fail()

    def _write_ready(self) -> None:
        """Join and write the pieces that are back, in order."""
        while self._joined < len(self._pieces):
            first, process = self._pieces[self._joined]
            if not process.results:
                return
            try:
                frames = self._joiner.add(first, process.results.popleft())
            except ValueError as exc:
                raise ExportError(f"MP3 encoder failed: {exc}") from None
            self._emit(frames)
            self._joined += 1

    def _emit(self, frames: bytes) -> None:
        if not frames:
            return
        starting = self._info.frame_size() == 0
        self._info.add(frames)
        if starting:
            self._file.write(bytes(self._info.frame_size()))  # the info frame's room
        self._file.write(frames)

    def close(self) -> None:
        if self._split:
            first = mp3frames.piece_span(len(self._pieces))[0]
            self._send_piece(first, self._samples)
        else:
            self._send(self._processes[0], b"", end=True)
            self._pieces.append((0, self._processes[0]))
        # The first process, which deletes the temporary file should this one die, ends last.
        for process in reversed(self._processes):
            if not process.finish():
                self._fail()
        self._write_ready()
        if self._joined < len(self._pieces):
            raise ExportError("MP3 encoder failed: a piece did not come back")
        self._emit(self._joiner.finish())
        info = self._info.frame(samples=self._samples, vbr_quality=self._vbr_quality)
        if info:
            self._file.seek(0)
            self._file.write(info)
            self._file.seek(0, os.SEEK_END)

    def _fail(self) -> None:
        details = [p.stop() for p in self._processes]
        detail = next((d for d in details if d), "no message")
        raise ExportError(f"MP3 encoder failed: {detail}")

    def abort(self) -> None:
        for process in self._processes:
            process.stop()


class _LameProcess:
    """One ``meditation._lame_worker``: pieces go in through a feeder thread, their frames come back through a reader."""

    def __init__(self, args: list[str]):
        env = dict(os.environ)
        package_parent = str(Path(__file__).resolve().parent.parent.parent)
        env["PYTHONPATH"] = package_parent + os.pathsep + env.get("PYTHONPATH", "")
        # The encoder starts deaf to Ctrl-C; the parent stops it.
        self._process = popen_quietly(
            [sys.executable, "-m", "meditation._lame_worker", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.results: deque[bytes] = deque()  # each piece's frames, in the order sent
        self._feeder: InOrder | None = None
        self._reader: threading.Thread | None = None
        try:
            _widen_pipe(self._process.stdin)
            # Whole pieces queue here (about 5 MB each), so the mastering moves on to the next
            # process's piece while this one still encodes; two at most, to bound memory.
            self._feeder = InOrder(self._write, depth=2, name="meditation-mp3-feeder")
            self._reader = threading.Thread(
                target=self._read, name="meditation-mp3-reader", daemon=True
            )
            self._reader.start()
        except BaseException:
            self.stop()
            raise

    def send(self, pcm: bytes, *, end: bool) -> None:
        """Queue ``pcm`` for the current piece, and its end if ``end``; BrokenPipeError once the process is gone."""
        assert self._feeder is not None
        if self._feeder.failure is not None:
            raise BrokenPipeError
        self._feeder.put((pcm, end))

    def _write(self, item: tuple[bytes, bool]) -> None:
        pcm, end = item
        stdin = self._process.stdin
        if pcm:
            stdin.write(b"D" + len(pcm).to_bytes(4, "little"))
            stdin.write(pcm)
        if end:
            stdin.write(b"E")
            stdin.flush()

    def _read(self) -> None:
        stdout = self._process.stdout
        while True:
            head = stdout.read(8)
            if len(head) < 8:
                return
            size = int.from_bytes(head, "little")
            piece = stdout.read(size)
            if len(piece) < size:
                return
            self.results.append(piece)

    def finish(self) -> bool:
        """Wait for every piece sent so far; whether the process ended well."""
        assert self._feeder is not None and self._reader is not None
        self._feeder.finish()
        try:
            self._process.stdin.write(b"Q")  # the end of the work, not the death of this process
            self._process.stdin.close()
        except BrokenPipeError:
            pass
        self._reader.join()
        ok = self._process.wait() == 0 and self._feeder.failure is None
        if ok:
            self._process.stdout.close()
            self._process.stderr.close()
        return ok

    def stop(self) -> str:
        """Kill the process (if still running); its last line on stderr, if it said anything."""
        self._process.kill()
        self._process.wait()
        detail = ""
        try:
            lines = self._process.stderr.read().decode("utf-8", "replace").strip().splitlines()
            detail = lines[-1] if lines else ""
        except (OSError, ValueError):
            pass
        for stream in (self._process.stdin, self._process.stdout, self._process.stderr):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join()
        return detail


def _widen_pipe(stream) -> None:
    """Let the mixer run a few chunks ahead of the encoder (Linux pipes hold only 64 KiB by default)."""
    try:
        fcntl.fcntl(stream.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except OSError:
        pass  # a lower limit: the default still works, a little slower


class _ThreadedEncoder(Encoder):
    """An encoder that works in a thread of its own, a few chunks behind the writer.

    For libraries that release the GIL while they encode (libsndfile through
    cffi, FFmpeg, soxr): the encoding overlaps with the mastering that makes
    the next chunks. Subclasses ``_consume`` each chunk in order.
    """

    _worker = None

    @property
    def _WHAT(self) -> str:  # noqa: N802 - a constant, which subclasses may compute
        return "encoder"

    def _consume(self, chunk: np.ndarray) -> None:
        raise NotImplementedError

    def write(self, chunk: np.ndarray) -> None:
        self._check_worker()
        if self._worker is None:
            self._worker = InOrder(
                self._consume, depth=8, name="meditation-encoder"
            )  # a few chunks ahead, bounded memory
        self._worker.put(self._own(chunk))

    def _own(self, chunk: np.ndarray):
        """What goes to the worker for ``chunk``: a copy, as the caller may reuse its buffer meanwhile."""
        return np.array(chunk, dtype=np.float32)

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


_SFC_SET_ADD_PEAK_CHUNK = 0x1050  # sndfile.h
_WRITEBACK_BYTES = 4 << 20
_EARLY_WRITEBACK = sys.platform == "linux"


@register_encoder(".wav", ".flac", ".ogg")
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
        fmt, default_subtype = self._FORMATS[suffix]
        subtype = subtype or default_subtype
        # libsndfile writes to the descriptor itself and reports a failed
        # write as an error. Given a Python file object it would call back
        # into Python, and a full disk there printed dozens of "Exception
        # ignored from cffi callback" lines and ended in an AssertionError.
        self._sf = soundfile.SoundFile(
            file.fileno(), "w", sample_rate, channels, subtype=subtype, format=fmt, closefd=False
        )
        if fmt == "WAV" and subtype in ("FLOAT", "DOUBLE"):
            # libsndfile's PEAK chunk carries the wall-clock second it was written: two renders
            # of the same stems differed in those four bytes. soundfile has no wrapper for the
            # command that leaves it out (it must come before any audio).
            soundfile._snd.sf_command(
                self._sf._file, _SFC_SET_ADD_PEAK_CHUNK, soundfile._ffi.NULL, 0
            )

        # 24-bit WAV, the default: samples converted in numpy and handed to libsndfile as they go
        # in the file (ten minutes: 0.1 s of CPU, against 0.35 s through soundfile's write).
        self._raw = fmt == "WAV" and subtype == "PCM_24" and sys.byteorder == "little"
        self._queued = self._taken = 0  # chunks handed to the worker, and taken up by it
        self._fd = file.fileno()
        self._flushed = 0  # bytes of the file whose writeback has been started

    _WHAT = "libsndfile"

    def _own(self, chunk: np.ndarray):
        self._queued += 1
        if self._raw and self._queued - self._taken > 1:
            # The worker is behind: convert here (numpy, beside it) rather than wait for it.
            return pcm24(chunk)
        return super()._own(chunk)

    def _consume(self, chunk: np.ndarray) -> None:
        self._taken += 1
        if not self._raw:
            self._sf.write(chunk)
        else:
            data = chunk if chunk.dtype == np.uint8 else pcm24(chunk)
            # libsndfile's own raw write: it counts the frames for the header it writes on close.
            written = soundfile._snd.sf_write_raw(
                self._sf._file, soundfile._ffi.from_buffer(data), data.nbytes
            )
            if written != data.nbytes:
                raise soundfile.LibsndfileError(soundfile._snd.sf_error(self._sf._file))
        self._start_writeback()

    def _start_writeback(self) -> None:
        """Have the disk take what is written so far, now: the fsync that ends the file then
        waits for the last few megabytes only (50 ms less for a ten-minute WAV here).

        Linux starts the writeback of a range it is advised to drop from the cache (and drops
        only the pages already on disk); elsewhere the advice is ignored or missing.
        """
        if not _EARLY_WRITEBACK:
            return
        try:
            end = os.lseek(self._fd, 0, os.SEEK_CUR)
            if end - self._flushed >= _WRITEBACK_BYTES:
                os.posix_fadvise(
                    self._fd, self._flushed, end - self._flushed, os.POSIX_FADV_DONTNEED
                )
                self._flushed = end
        except OSError:
            pass  # advice only

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


_FULL_SCALE = np.float32(2**31)
_TOP = np.float32(2**31 - 128)  # the largest float32 under 2**31


def pcm24(chunk: np.ndarray) -> np.ndarray:
    """Float samples as 24-bit little-endian PCM bytes, the same bytes libsndfile writes.

    libsndfile with clipping on (soundfile turns it on) scales by 2**31, clips,
    rounds to the nearest integer (ties to even) and keeps the top three bytes.
    Packing every four samples (12 bytes) into three 32-bit words, one plane of
    words at a time, is what makes this fast: numpy copies three-byte items slowly.
    """
    samples = np.ascontiguousarray(chunk, dtype=np.float32).reshape(-1)
    scaled = np.multiply(samples, _FULL_SCALE)
    np.clip(scaled, -_FULL_SCALE, _TOP, out=scaled)
    np.rint(scaled, out=scaled)
    with np.errstate(invalid="ignore"):  # NaN: the CPU's conversion, as in libsndfile's lrintf
        words = scaled.astype(np.int32).view(np.uint32)
    m = len(words) // 4
    out = np.empty(len(words) * 3, np.uint8)
    if m:
        u0, u1, u2, u3 = np.ascontiguousarray(words[: 4 * m].reshape(m, 4).T)
        packed = out[: 12 * m].view(np.uint32).reshape(m, 3)
        low = np.empty(m, np.uint32)
        # Samples a, b, c, d (24 bits each, the top of u0..u3) in three words: a|b0, b1b2|c0c1, c2|d.
        np.right_shift(u0, 8, out=low)
        np.bitwise_and(u1, 0xFF00, out=u0)
        np.left_shift(u0, 16, out=u0)
        np.bitwise_or(low, u0, out=packed[:, 0])
        np.right_shift(u1, 16, out=low)
        np.bitwise_and(u2, 0xFFFF00, out=u1)
        np.left_shift(u1, 8, out=u1)
        np.bitwise_or(low, u1, out=packed[:, 1])
        np.right_shift(u2, 24, out=low)
        np.bitwise_and(u3, 0xFFFFFF00, out=u3)
        np.bitwise_or(low, u3, out=packed[:, 2])
    rest = words[4 * m :]
    out[12 * m :] = rest.view(np.uint8).reshape(-1, 4)[:, 1:].reshape(-1)
    return out


class _PyAVEncoder(_ThreadedEncoder):
    """An FFmpeg encoder and muxer through PyAV, fed float frames."""

    _CODEC: ClassVar[Literal["aac", "libopus"]]
    """The FFmpeg encoder (a literal, so PyAV's types know it makes an audio stream)."""
    _FORMAT = ""
    _BIT_RATE = 0
    _RATES: tuple[int, ...] = ()
    """Sample rates the codec takes; others are resampled (soxr) to ``_FALLBACK_RATE``."""
    _FALLBACK_RATE = 48000

    def __init__(
        self, file, path: Path, sample_rate: int, channels: int, suffix: str, metadata: Metadata
    ):
        self._rate = sample_rate if sample_rate in self._RATES else self._FALLBACK_RATE
        self._resampler = None
        if self._rate != sample_rate:
            self._resampler = soxr.ResampleStream(
                sample_rate, self._rate, channels, dtype="float32", quality="HQ"
            )
        self._layout = "stereo" if channels == 2 else "mono"
        self._samples = 0
        self._time_base = Fraction(1, self._rate)
        import av  # noqa: PLC0415 - start-up: PyAV takes ~35 ms to load, and WAV, FLAC and MP3 never need it

        self._frame = av.AudioFrame
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
        if chunk is None:
            packets = self._stream.encode(None)
        elif len(chunk) == 0:
            return
        else:
            planar = np.ascontiguousarray(np.asarray(chunk, dtype=np.float32).T)
            frame = self._frame.from_ndarray(planar, format="fltp", layout=self._layout)
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


@register_encoder(".m4a", ".m4b")
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


@register_encoder(".opus")
class _OpusEncoder(_PyAVEncoder):
    """Opus at 64 kbit/s VBR in Ogg (libopus through PyAV): small files for hours-long sleep tracks.

    Opus runs at 48 kHz, so any other mix rate is resampled with soxr on the
    way in; the Ogg pre-skip and the last page's granule position make
    decoders drop the codec's look-ahead and padding, keeping the length exact.
    """

    _CODEC, _FORMAT, _BIT_RATE = "libopus", "ogg", 64_000
    _RATES = (48000,)
