"""Reading audio files: libsndfile first (WAV, FLAC, Ogg), else FFmpeg through PyAV (MP3, MP4, M4A, Opus…).

One decoder for every place that reads audio back: a recording or bed
layer, the check of a written file's true peak, and the loudness series of
a finished track. Blocks are float32 ``(n, channels)``, so a long file is
never held twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import soundfile

__all__ = ["DecodeError", "read_blocks", "read_audio", "as_stereo"]

BLOCK = 1 << 16


class DecodeError(Exception):
    """The file cannot be decoded; the message says why in one line (without the path)."""


def read_blocks(path: str | os.PathLike, block: int = BLOCK) -> Iterator[tuple[np.ndarray, int]]:
    """Decode a file as float32 ``(n, channels)`` blocks, each with the file's sample rate.

    Raises
    ------
    DecodeError
        Unreadable, not audio, or damaged.
    """
    path = str(path)
    try:
        handle = soundfile.SoundFile(path)
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        handle = None
    except OSError as exc:
        raise DecodeError(str(exc.strerror or exc)) from None
    if handle is not None and handle.format == "MP3":
        # soundfile asks for the position before every read, and a seek in libsndfile's MP3
        # decoder drops the bit reservoir: frames after a block's start came out as clicks (up to
        # 0.9 of full scale). FFmpeg reads MP3 straight through, gapless like libsndfile.
        handle.close()
        handle = None
    elif handle is not None:
        with handle:
            sr = handle.samplerate
            try:
                while True:
                    data = handle.read(block, dtype="float32", always_2d=True)
                    if not len(data):
                        return
                    yield data, sr
            except (soundfile.LibsndfileError, RuntimeError) as exc:
                raise DecodeError(str(exc)) from None
    yield from _read_blocks_av(path)


def _read_blocks_av(path: str) -> Iterator[tuple[np.ndarray, int]]:
    import av  # noqa: PLC0415 - PyAV takes ~35 ms to load, and most files never need it

    try:
        container = av.open(path)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise DecodeError(f"not an audio file this tool can decode ({_short(exc)})") from None
    with container:
        if not container.streams.audio:
            raise DecodeError("it has no audio stream")
        stream = container.streams.audio[0]
        try:
            for frame in container.decode(stream):
                data: np.ndarray = frame.to_ndarray()  # its dtype is the frame format's
                if data.dtype.kind in "iu":
                    data = data.astype(np.float32) / float(np.iinfo(data.dtype).max)
                # Planar formats come as (channels, n); packed ones as (1, n * channels).
                channels = len(frame.layout.channels)
                data = data.reshape(-1, channels) if frame.format.is_packed else data.T
                yield np.ascontiguousarray(data, dtype=np.float32), frame.sample_rate
        except av.FFmpegError as exc:
            raise DecodeError(_short(exc)) from None


def read_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """The whole file as float32 ``(n, channels)`` and its sample rate."""
    blocks, sr = [], 0
    for data, rate in read_blocks(path):
        blocks.append(data)
        sr = rate
    if not blocks:
        return np.zeros((0, 2), dtype=np.float32), sr
    return np.concatenate(blocks), sr


def as_stereo(block: np.ndarray) -> np.ndarray:
    """(n, 2) view of a block: mono is heard in both ears, extra channels are dropped."""
    if block.shape[1] == 1:
        return np.repeat(block, 2, axis=1)
    return block[:, :2]


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160]
