"""Your own recording (rain, a fire, a stream) as a layer that loops for any length.

A plain loop of a 60-second recording is heard within minutes: the same
gust, the same drip, every minute, and often a click where the end meets the
start. Here the layer instead plays a never-ending chain of *segments* taken
from the recording at varying, seeded offsets and lengths, each joined to the
next with a crossfade centred on a quiet moment of both (low energy, so the
join falls where there is least to hear). Because offsets and lengths are
drawn afresh for every segment, the chain has no period at all; the longest
stretch that ever repeats exactly is one segment, well under the recording's
length.

The crossfade is equal-power (sine/cosine), corrected for the correlation of
the two pieces it joins, so the level holds through the join whether the
pieces are unrelated noise (the usual case) or similar material.

Level: the recording's integrated loudness (ITU-R BS.1770) is measured once,
and the layer brings it to the loudness of a layer at ``NOMINAL_RMS_DB``, so
``level_db`` means the same for a whisper-quiet and a loud recording.

Memory: one decoded copy of the recording at the track's sample rate, shared
by every instance that plays the same file (the two mastering passes, stems);
nothing grows with the track's length.
"""

from __future__ import annotations

import copy
import functools
import math
import os
import stat as stat_module
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soxr
from scipy import signal

from ...decode import DecodeError, as_stereo, read_blocks
from ...errors import SoundscapeError
from ...loudness import LoudnessMeter
from .base import BLOCK_SIZE, NOMINAL_RMS_DB, Cue, Layer, register_layer, soft_limit

__all__ = [
    "Recording",
    "RecordingInfo",
    "inspect_recording",
    "decode_recording",
    "recording",
    "TARGET_LUFS",
    "MIN_SAMPLE_RATE",
    "check_recording_rate",
]

TARGET_LUFS = NOMINAL_RMS_DB + 10 * math.log10(2.0) - 0.691
"""BS.1770 loudness of a stereo layer whose channels sit at ``NOMINAL_RMS_DB`` RMS (broadband)."""

_MIN_DURATION_S = 1.0
_SILENT_LUFS = -70.0  # BS.1770's absolute gate: nothing above it means nothing to hear
_FRAME_S = 0.02  # energy frames for finding quiet join points
_SNAP_S = 1.0  # a join moves at most this far to find a lull
_REHEARSAL_SEGMENTS = 64
_GAP_SHARE = 0.01  # stretches 20 dB under the median energy are gaps, not lulls


@dataclass(frozen=True)
class RecordingInfo:
    """What the layer needs to know about a file before decoding it."""

    path: Path
    sample_rate: int
    channels: int
    frames: int
    loudness_lufs: float

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate


def inspect_recording(path: str | os.PathLike) -> RecordingInfo:
    """Check that ``path`` is a usable recording and measure its loudness, streaming.

    Raises
    ------
    SoundscapeError
        One line, naming the file: missing, unreadable, empty, too short or silent.
    """
    p = Path(path)
    try:
        stat = p.stat()
    except FileNotFoundError:
        raise SoundscapeError(f"recording {str(p)!r} does not exist") from None
    except OSError as exc:
        raise SoundscapeError(f"cannot read recording {str(p)!r}: {exc.strerror or exc}") from None
    if p.is_dir():
        raise SoundscapeError(f"recording {str(p)!r} is a folder, not an audio file")
    if not stat_module.S_ISREG(stat.st_mode):
        raise SoundscapeError(
            f"recording {str(p)!r} is {_kind_of(stat.st_mode)}, not an audio file"
        )
    return _inspect(str(p.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=32)
def _inspect(path: str, mtime_ns: int, size: int) -> RecordingInfo:
    """Cached by path, modification time and size: a batch checks each file once."""
    if size == 0:
        raise SoundscapeError(f"recording {path!r} is empty")
    frames = 0
    meter = None
    sample_rate = channels = 0
    for block, sample_rate in _read_blocks(path):
        if meter is None:
            meter = LoudnessMeter(sample_rate)
            channels = block.shape[1]
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            at = (frames + int(np.argmin(finite))) / sample_rate
            raise SoundscapeError(
                f"recording {path!r} holds samples that are not numbers (NaN or infinity), "
                f"the first at {at:.2f} s"
            )
        meter.feed(as_stereo(block))
        frames += len(block)
    if frames == 0 or meter is None:
        raise SoundscapeError(f"recording {path!r} is empty (no audio frames)")
    if frames < _MIN_DURATION_S * sample_rate:
        raise SoundscapeError(
            f"recording {path!r} is too short to loop ({frames / sample_rate:.2f} s; at least {_MIN_DURATION_S:g} s)"
        )
    loudness = meter.integrated_lufs()
    if not np.isfinite(loudness) or loudness < _SILENT_LUFS:
        raise SoundscapeError(f"recording {path!r} is silent")
    return RecordingInfo(Path(path), sample_rate, channels, frames, loudness)


MIN_SAMPLE_RATE = 8000
"""Lowest sample rate a recording may have: the loudness meter's filters need it (as does the track)."""


def check_recording_rate(path: str | os.PathLike, sample_rate: int) -> None:
    """Raise SoundscapeError (one line) when a recording's sample rate is too low to measure or play."""
    if sample_rate < MIN_SAMPLE_RATE:
        raise SoundscapeError(
            f"recording {str(path)!r} has a sample rate of {sample_rate} Hz; "
            f"at least {MIN_SAMPLE_RATE} Hz is needed"
        )


def _kind_of(mode: int) -> str:
    """What a non-regular file is, in words."""
    kinds = [
        (stat_module.S_ISFIFO, "a named pipe (FIFO)"),
        (stat_module.S_ISCHR, "a character device"),
        (stat_module.S_ISBLK, "a block device"),
        (stat_module.S_ISSOCK, "a socket"),
    ]
    return next((word for test, word in kinds if test(mode)), "a special file")


_DC_CUTOFF_HZ = 10.0  # under any sound a bed is meant to carry


def _read_blocks(path: str) -> Iterator[tuple[np.ndarray, int]]:
    """Decode the recording as float32 ``(n, channels)`` blocks, DC removed; one line naming the file if it cannot be.

    A constant offset is inaudible but not harmless: the master measured
    loudness without it and let it through, so a bed at 0.5 DC left a 0.3
    full-scale offset in a "-16 LUFS" track. Both the loudness measurement
    and the decoded copy see the file through the same high-pass, so a file
    of DC alone is "silent".
    """
    blocker = None
    try:
        for block, sample_rate in read_blocks(path):
            if blocker is None:
                check_recording_rate(path, sample_rate)
                blocker = _DcBlocker(sample_rate)
            yield blocker.process(block), sample_rate
    except DecodeError as exc:
        raise SoundscapeError(f"cannot read recording {path!r}: {exc}") from None


class _DcBlocker:
    """2nd-order Butterworth high-pass at ``_DC_CUTOFF_HZ``, state carried across blocks.

    The state starts settled on the first sample, so a file that opens on an
    offset does not start with a thump; NaN passes through to the check after.
    """

    def __init__(self, sample_rate: int):
        self._sos = signal.butter(2, _DC_CUTOFF_HZ, btype="highpass", fs=sample_rate, output="sos")
        self._zi = None

    def process(self, block: np.ndarray) -> np.ndarray:
        x = np.asarray(block, dtype=np.float64)
        if self._zi is None:
            first = np.nan_to_num(x[0]) if len(x) else np.zeros(x.shape[1])
            self._zi = signal.sosfilt_zi(self._sos)[:, :, None] * first[None, None, :]
        y, self._zi = signal.sosfilt(self._sos, x, axis=0, zi=self._zi)
        return y.astype(np.float32)


# One decoded copy per (file, rate), alive while any layer holds it.
_DECODED: weakref.WeakValueDictionary[tuple, np.ndarray] = weakref.WeakValueDictionary()


def decode_recording(info: RecordingInfo, sample_rate: int) -> np.ndarray:
    """The whole recording as float32 ``(n, channels)`` at ``sample_rate`` (resampled with soxr), decoded once."""
    key = (str(info.path), info.frames, info.sample_rate, sample_rate)
    cached = _DECODED.get(key)
    if cached is not None:
        return cached

    channels = min(info.channels, 2)
    ratio = sample_rate / info.sample_rate
    # Filled block by block: the file's samples never exist twice in memory.
    out = np.empty((int(math.ceil(info.frames * ratio)) + 64, channels), dtype=np.float32)
    n = 0
    stream = (
        soxr.ResampleStream(info.sample_rate, sample_rate, channels, dtype="float32", quality="HQ")
        if ratio != 1
        else None
    )

    def put(block: np.ndarray) -> None:
        nonlocal n
        block = block[: len(out) - n]
        out[n : n + len(block)] = block
        n += len(block)

    for block, _ in _read_blocks(str(info.path)):
        block = np.ascontiguousarray(block[:, :channels])
        put(stream.resample_chunk(block) if stream is not None else block)
    if stream is not None:
        put(stream.resample_chunk(np.zeros((0, channels), dtype=np.float32), last=True))
    audio = out[:n]
    _DECODED[key] = audio
    return audio


@register_layer("recording")
class Recording(Layer["Recording.Params"]):
    """A recording looped as a seamless, never-repeating chain of crossfaded segments."""

    description = (
        "Your own recording (WAV, FLAC, Ogg, MP3), looped without seams or a short period."
    )
    cue_actions = frozenset()

    @dataclass(frozen=True)
    class Params:
        file: str = ""
        """The audio file; in a preset, relative to the preset's folder."""
        crossfade_s: float = 2.0
        """Longest crossfade between segments, in seconds (shorter for short recordings)."""

    ranges = {"crossfade_s": (0.05, 10.0)}

    @classmethod
    def check_params(cls, params: Recording.Params) -> None:
        super().check_params(params)  # crossfade_s: see ``ranges``
        if not isinstance(params.file, str) or not params.file:
            raise SoundscapeError('recording: give the audio file as file = "name.flac"')
        inspect_recording(params.file)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.info = inspect_recording(self.params.file)
        self._gain = np.float32(10 ** ((TARGET_LUFS - self.info.loudness_lufs) / 20))
        self._audio: np.ndarray | None = (
            None  # decoded on the first block: planning never pays for it
        )
        self._segments: list[list] = []  # [out_start, src_start, src_end, r_in] in order
        self.joins: list[int] = []
        """Output sample at the middle of every crossfade so far (one number per segment: tiny)."""

    def cue_duration_s(self, cue: Cue) -> float:
        raise SoundscapeError("layer 'recording' takes no cues")

    # -- planning the chain -------------------------------------------------------

    def _decoded(self) -> np.ndarray:
        """The recording's samples, decoded (and the chain prepared) on first use."""
        return self._prepare() if self._audio is None else self._audio

    def _prepare(self) -> np.ndarray:
        audio = self._audio = decode_recording(self.info, self.sample_rate)
        sr = self.sample_rate
        length = len(audio)
        self._xfade = int(min(self.params.crossfade_s * sr, length // 8))
        self._xfade = max(self._xfade, min(64, length // 8))
        # Energy per frame, smoothed over a crossfade: a join is quiet when the
        # whole stretch it spans is, not just one instant of it.
        frame = max(1, int(_FRAME_S * sr))
        n_frames = length // frame
        power = np.empty(n_frames)
        for i in range(0, n_frames, 4096):  # in slices: no full-size temporary
            part = audio[i * frame : min(n_frames, i + 4096) * frame].astype(np.float64)
            power[i : i + len(part) // frame] = np.mean(
                np.square(part).reshape(-1, frame * part.shape[1]), axis=1
            )
        width = max(1, self._xfade // frame)
        smooth = np.convolve(power, np.ones(width) / width, mode="same")
        centres = (np.arange(n_frames) * frame + frame // 2).astype(np.int64)
        half = self._xfade // 2
        valid = (centres - half >= 0) & (centres + self._xfade - half <= length)
        self._centres, self._energy = centres[valid], smooth[valid]
        if len(self._centres) == 0:
            raise SoundscapeError(f"recording {str(self.info.path)!r} is too short to loop")
        # Near-silent stretches (a fade at the file's ends, a gap) never host a
        # join: a segment starting there would bring the silence along.
        self._usable = self._energy >= _GAP_SHARE * np.median(self._energy)
        self._snap = max(self._xfade, int(_SNAP_S * sr))
        self._frame, self._power = frame, power
        # Segments last between a quarter and two thirds of the recording (but
        # always longer than two crossfades), so they differ from one another.
        self._min_len = max(2 * self._xfade + 1, length // 4)
        self._max_len = max(self._min_len + 1, (2 * length) // 3)
        self._gain = np.float32(self._gain * self._chain_correction())
        return audio

    def _chain_correction(self) -> float:
        """Gain that gives the chain the recording's own mean power.

        Joins sit in lulls, so with short recordings (where crossfades take a
        large share of the time) the chain would play quieter than the file
        whose loudness set the level. A rehearsal of the chain's first
        segments, on a copy of the random generator, measures by how much.
        """
        saved = self.rng, self._segments, self.joins
        self.rng, self._segments, self.joins = copy.deepcopy(self.rng), [], []
        try:
            while len(self._segments) < _REHEARSAL_SEGMENTS:
                self._next_segment()
            chain = self._segments
        finally:
            self.rng, self._segments, self.joins = saved
        f, x = self._frame, self._xfade
        energy = length = 0.0
        for _, a, b, _ in chain[1:-1]:
            frames = np.arange(a // f, min(b // f, len(self._power)))
            pos = (frames * f + f // 2 - a).astype(np.float64)  # frame centre within the segment
            w = np.ones(len(frames))
            head, tail = pos < x, pos > (b - a) - x
            w[head] = np.sin(0.5 * np.pi * pos[head] / x) ** 2
            w[tail] *= np.cos(0.5 * np.pi * (pos[tail] - ((b - a) - x)) / x) ** 2
            energy += float(np.sum(self._power[frames] * w)) * f
            length += (b - a) - x
        mean = float(np.mean(self._power))
        if energy <= 0 or mean <= 0:
            return 1.0
        return math.sqrt(mean / (energy / length))

    def _pick(self, lo: int, hi: int) -> int:
        """A join centre in source samples [lo, hi]: a random place, moved to the quietest moment near it.

        Random first, quiet second: the segments cover the whole recording
        evenly (choosing only its quietest parts would play it quieter than
        it is), yet every join falls in a local lull.
        """
        target = lo + (hi - lo) * float(self.rng.random())
        for a, b in ((max(lo, target - self._snap), min(hi, target + self._snap)), (lo, hi)):
            i0, i1 = np.searchsorted(self._centres, [a, b + 1])
            if i1 <= i0:
                continue
            energy = np.where(self._usable[i0:i1], self._energy[i0:i1], np.inf)
            if np.isfinite(energy).any():
                return int(self._centres[i0 + int(np.argmin(energy))])
        i0, i1 = np.searchsorted(self._centres, [lo, hi + 1])
        if i1 <= i0:
            return int(min(max(int(target), self._centres[0]), self._centres[-1]))
        return int(self._centres[i0 + int(np.argmin(self._energy[i0:i1]))])

    def _next_segment(self) -> None:
        half = self._xfade // 2
        length = len(self._decoded())
        latest_start = max(half, length - (self._xfade - half) - self._min_len)
        start_centre = self._pick(half, latest_start)
        src_start = start_centre - half
        lo = min(src_start + self._min_len, length) - (self._xfade - half)
        hi = min(src_start + self._max_len, length) - (self._xfade - half)
        src_end = self._pick(lo, max(lo, hi)) + (self._xfade - half)
        src_end = min(max(src_end, src_start + 2 * self._xfade + 1), length)
        if not self._segments:
            self._segments.append([0, src_start, src_end, 0.0])
            return
        prev = self._segments[-1]
        out_start = prev[0] + (prev[2] - prev[1]) - self._xfade
        r = self._correlation(prev[2] - self._xfade, src_start)
        self._segments.append([out_start, src_start, src_end, r])
        self.joins.append(out_start + self._xfade // 2)

    def _correlation(self, a: int, b: int) -> float:
        """Normalised correlation of the two pieces a crossfade overlaps (sets the fade law)."""
        audio = self._decoded()
        x = audio[a : a + self._xfade].astype(np.float64).ravel()
        y = audio[b : b + self._xfade].astype(np.float64).ravel()
        denom = math.sqrt(float(x @ x) * float(y @ y))
        return 0.0 if denom <= 0 else float(np.clip((x @ y) / denom, -0.5, 1.0))

    def _fade(self, r: float, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """(fade-in, fade-out) gains for crossfade samples [lo, hi): equal power for pieces of correlation r."""
        x = (np.arange(lo, hi) + 0.5) / self._xfade
        g_in, g_out = np.sin(0.5 * np.pi * x), np.cos(0.5 * np.pi * x)
        norm = 1.0 / np.sqrt(1.0 + 2.0 * r * g_in * g_out)
        return (g_in * norm).astype(np.float32), (g_out * norm).astype(np.float32)

    # -- audio --------------------------------------------------------------------

    def _next_block(self) -> np.ndarray:
        audio = self._decoded()
        b0 = self.block_start
        b1 = b0 + BLOCK_SIZE
        # The chain runs one segment past the block, so every fade-out knows its partner.
        while (
            not self._segments
            or self._segments[-1][0] + (self._segments[-1][2] - self._segments[-1][1])
            <= b1 + self._xfade
        ):
            self._next_segment()
        while (
            len(self._segments) > 1
            and self._segments[0][0] + (self._segments[0][2] - self._segments[0][1]) <= b0
        ):
            self._segments.pop(0)
        out = np.zeros((BLOCK_SIZE, 2), dtype=np.float32)
        for k, (o, a, b, r_in) in enumerate(self._segments):
            end = o + (b - a)
            lo, hi = max(b0, o), min(b1, end)
            if lo >= hi:
                continue
            piece = audio[a + lo - o : a + hi - o] * self._gain
            weight = np.ones(hi - lo, dtype=np.float32)
            if o > 0 and lo < o + self._xfade:  # fading in
                stop = min(hi, o + self._xfade)
                weight[: stop - lo] = self._fade(r_in, lo - o, stop - o)[0]
            if k + 1 < len(self._segments) and hi > end - self._xfade:  # fading out
                begin = max(lo, end - self._xfade)
                r_out = self._segments[k + 1][3]
                weight[begin - lo :] *= self._fade(
                    r_out, begin - (end - self._xfade), hi - (end - self._xfade)
                )[1]
            out[lo - b0 : hi - b0] += piece * weight[:, None]
        soft_limit(out)
        return out


def recording(
    n_samples: int,
    *,
    sample_rate: int,
    rng: np.random.Generator,
    cues: Sequence[Cue] = (),
    **params,
) -> np.ndarray:
    """Render ``n_samples`` of a looped recording in one call: float32, shape (n_samples, 2)."""
    return Recording(sample_rate=sample_rate, rng=rng, params=params, cues=cues).render(n_samples)
