"""Stage 7: mastering — loudness measurement (ITU-R BS.1770-4), gain, a
true-peak limiter, and the passes that write the output (and stems).

Everything streams: it sees the track chunk by chunk, so memory does not grow
with its length. The meter reuses pyloudnorm's K-weighting filter design (a
maintained reference) but runs the filters with carried state and keeps only
one mean-square value per 100 ms, which pyloudnorm's whole-array API cannot.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage, signal

from ._threads import InOrder
from .export import AudioWriter, Metadata
from .progress import progress

if TYPE_CHECKING:
    from .settings import RenderSettings

__all__ = [
    "LoudnessMeter",
    "TruePeakLimiter",
    "integrated_loudness",
    "true_peak_db",
    "TruePeakMeter",
    "master_to_file",
    "Mastered",
    "GainSearch",
    "MAX_LIMITING_DB",
]

_BLOCK_S = 0.4
_HOP_S = 0.1
_ABSOLUTE_GATE_LUFS = -70.0
_RELATIVE_GATE_LU = -10.0


class LoudnessMeter:
    """Streaming integrated loudness of a stereo signal (BS.1770-4 gating)."""

    def __init__(self, sample_rate: int):
        import pyloudnorm

        reference = pyloudnorm.Meter(sample_rate)
        self._sos = np.array(
            [
                np.concatenate([f.b, f.a])
                for f in (reference._filters["high_shelf"], reference._filters["high_pass"])
            ]
        )
        self._zi = np.zeros((2, 2, 2))  # sections × 2 state values × channels
        self._hop = int(round(_HOP_S * sample_rate))
        self._leftover = np.zeros(0)
        self._hop_power: list[float] = []

    def feed(self, chunk: np.ndarray) -> None:
        """Add the next ``(n, 2)`` chunk."""
        weighted, self._zi = signal.sosfilt(
            self._sos, chunk.astype(np.float64), axis=0, zi=self._zi
        )
        # Channel weights are 1.0 for left and right: sum their mean squares.
        power = np.concatenate([self._leftover, np.sum(weighted * weighted, axis=1)])
        whole = len(power) // self._hop
        if whole:
            self._hop_power.extend(
                power[: whole * self._hop].reshape(whole, self._hop).mean(axis=1)
            )
        self._leftover = power[whole * self._hop :]

    def integrated_lufs(self, gain: float = 1.0) -> float:
        """Gated integrated loudness of everything fed so far (-inf for silence), or of it scaled by ``gain``.

        K-weighting is linear, so the scaled stream's 100 ms powers are these
        times ``gain²``; the gates are applied afresh to them.
        """
        hops = np.asarray(self._hop_power) * (float(gain) ** 2)
        per_block = int(round(_BLOCK_S / _HOP_S))
        if len(hops) < per_block:
            return float("-inf")
        blocks = np.convolve(hops, np.ones(per_block) / per_block, mode="valid")
        with np.errstate(divide="ignore"):
            loudness = -0.691 + 10 * np.log10(blocks)
        gated = blocks[loudness > _ABSOLUTE_GATE_LUFS]
        if len(gated) == 0:
            return float("-inf")
        relative = -0.691 + 10 * np.log10(gated.mean()) + _RELATIVE_GATE_LU
        with np.errstate(divide="ignore"):
            final = gated[-0.691 + 10 * np.log10(gated) > relative]
        return float(-0.691 + 10 * np.log10(final.mean()))


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness of a whole ``(n, 2)`` array in LUFS."""
    meter = LoudnessMeter(sample_rate)
    meter.feed(audio)
    return meter.integrated_lufs()


_OVERSAMPLE = 4
_HALF_TAPS = 6  # the interpolators look 6 samples either side


def _fractional_filters() -> np.ndarray:
    """Kaiser-windowed sinc interpolators for the 3 points between samples (4× oversampling).

    BS.1770-4 Annex 2 estimates true peak by 4× oversampling; evaluating only
    the in-between points, and only where the signal is loud, gives the same
    peaks at a fraction of the cost of filtering everything.
    """
    k = np.arange(-_HALF_TAPS + 1, _HALF_TAPS + 1)  # offsets of the samples used
    filters = []
    for phase in range(1, _OVERSAMPLE):
        t = k - phase / _OVERSAMPLE
        window = np.kaiser(2 * _HALF_TAPS + 1, 6.0)
        w = np.interp(t, np.arange(-_HALF_TAPS, _HALF_TAPS + 1), window)
        h = np.sinc(t) * w
        filters.append(h / h.sum())
    return np.asarray(filters)  # (3 phases, 12 taps)


_FILTERS = _fractional_filters()
_OFFSETS = np.arange(-_HALF_TAPS + 1, _HALF_TAPS + 1)


def _peaks_at(padded: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Largest |value| at and just after each position (sample and 3 interpolated points), over channels.

    ``padded`` must have at least ``_HALF_TAPS`` samples of context on either side of every position.
    """
    if len(positions) == 0:
        return np.zeros(0)
    first, last = int(positions[0]), int(positions[-1])
    if len(positions) * 8 > last - first:
        # Dense: filter the whole stretch (fast C loops) and pick the positions.
        stretch = padded[first - _HALF_TAPS + 1 : last + _HALF_TAPS + 1]
        peak = _level(padded[positions])
        for h in _FILTERS:
            # correlate1d centres an even filter one sample right of the middle tap.
            values = ndimage.correlate1d(stretch, h, axis=0, mode="constant", origin=-1)
            np.maximum(peak, _level(values[positions - first + _HALF_TAPS - 1]), out=peak)
        return peak
    around = padded[positions[:, None] + _OFFSETS[None, :]]  # (n, 12, channels)
    between = np.matmul(around.transpose(0, 2, 1), _FILTERS.T)  # (n, channels, 3)
    peak = np.abs(between).max(axis=(1, 2))
    return np.maximum(peak, _level(padded[positions]))


def _level(frames: np.ndarray) -> np.ndarray:
    """Per-frame max |sample| over channels (column-wise: much faster than .max(axis=1))."""
    level = np.abs(frames[:, 0])
    for c in range(1, frames.shape[1]):
        np.maximum(level, np.abs(frames[:, c]), out=level)
    return level


def true_peak_db(audio: np.ndarray) -> float:
    """True peak (4× oversampled) of a whole ``(n, channels)`` array, in dBTP."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim == 1:
        audio = audio[:, None]
    if len(audio) == 0:
        return float("-inf")
    meter = TruePeakMeter(audio.shape[1])
    meter.feed(audio)
    return meter.finish_db()


class TruePeakMeter:
    """The running true peak (4× oversampled) of a stream fed block by block.

    Each block is judged with its neighbours' samples (the stream is padded
    with silence only at its two ends), and only next to samples within 6 dB
    of the peak so far: inter-sample peaks of real audio stay well within
    6 dB of the samples around them, so nothing quieter can raise it. On a
    steady bed that is a few percent of the samples, where judging each
    block against its own loudest sample filtered nearly all of them.
    """

    def __init__(self, channels: int = 2):
        self._history = np.zeros((_HALF_TAPS, channels))  # context, then samples not yet judged
        self._peak = 0.0

    def feed(self, block: np.ndarray) -> None:
        """Add the next ``(n, channels)`` block."""
        if (
            len(block) >= 2 * _HALF_TAPS
            and 2 * max(np.abs(block).max(), np.abs(self._history).max()) <= self._peak
        ):
            self._history = np.asarray(
                block[-2 * _HALF_TAPS :], dtype=np.float64
            )  # nothing here can raise the peak
        elif len(block):
            self._judge(np.concatenate([self._history, np.asarray(block, dtype=np.float64)]))

    def finish_db(self) -> float:
        """The true peak of everything fed, in dBTP (about -400 for silence); the stream ends here."""
        self._judge(np.concatenate([self._history, np.zeros((_HALF_TAPS, self._history.shape[1]))]))
        return float(20 * np.log10(self._peak + 1e-20))

    def _judge(self, padded: np.ndarray) -> None:
        # Points after sample i need samples up to i+6: the newest 6 wait for the next block.
        ready = len(padded) - 2 * _HALF_TAPS
        self._history = padded[-2 * _HALF_TAPS :]
        if ready <= 0:
            return
        level = _level(padded)
        loudest = float(level[_HALF_TAPS : _HALF_TAPS + ready + 1].max())
        if 2 * loudest <= self._peak:
            return
        loud = level >= 0.5 * max(loudest, self._peak)
        near = np.flatnonzero(
            loud[_HALF_TAPS : _HALF_TAPS + ready] | loud[_HALF_TAPS + 1 : _HALF_TAPS + ready + 1]
        )
        for i in range(0, len(near), 1 << 16):
            self._peak = max(
                self._peak,
                float(_peaks_at(padded, near[i : i + (1 << 16)] + _HALF_TAPS).max(initial=0.0)),
            )


class TruePeakLimiter:
    """A look-ahead limiter that keeps the 4× oversampled peak under a ceiling.

    The gain is computed without recursion: the gain each sample needs is
    spread by a running minimum over the look-ahead and release window, then
    smoothed by two moving averages that the minimum window fully covers, so
    the smoothed gain never exceeds what any sample needs. Output is delayed by
    ``latency`` samples; ``flush`` returns the rest.
    """

    def __init__(
        self,
        sample_rate: int,
        *,
        ceiling_db: float,
        attack_s: float = 0.005,
        release_s: float = 0.06,
    ):
        self.ceiling = 10 ** (ceiling_db / 20)
        self._smooth_a = max(1, int(attack_s * sample_rate)) | 1
        self._smooth_b = max(1, int(release_s * sample_rate / 2)) | 1
        half = self._smooth_a // 2 + self._smooth_b // 2
        self._ahead = half  # samples of future the minimum must see
        self._behind = half + int(release_s * sample_rate)  # hold: the gain recovers after this
        self.latency = 2 * half
        self._history = np.zeros((_HALF_TAPS, 2))  # input not yet judged, plus context before it
        self._x = np.zeros((0, 2), dtype=np.float32)
        self._need = np.ones(
            self._behind + 2 * half
        )  # required gain for context before pending samples
        self._emitted_context = len(self._need)
        self.engaged = False
        """Whether any sample so far was turned down."""

    def _required_gain(self, chunk: np.ndarray) -> np.ndarray:
        """Gain needed by each sample whose neighbourhood is now complete (all but the newest 6)."""
        padded = np.concatenate([self._history, chunk.astype(np.float64)])
        # Points after sample i need samples up to i+6: the newest 6 samples wait for the next chunk.
        ready = len(padded) - 2 * _HALF_TAPS
        self._history = padded[-2 * _HALF_TAPS :]
        need = np.ones(max(ready, 0))
        if ready <= 0 or np.abs(padded).max() <= 0.5 * self.ceiling:
            return need
        level = _level(padded)
        # Only where the signal comes within 6 dB of the ceiling can its true peak reach it.
        loud = level > 0.5 * self.ceiling
        near = np.flatnonzero(
            loud[_HALF_TAPS - 1 : _HALF_TAPS + ready] | loud[_HALF_TAPS : _HALF_TAPS + ready + 1]
        )
        near = near[near < ready]
        if len(near):
            peaks = _peaks_at(padded, near + _HALF_TAPS)
            need[near] = np.minimum(1.0, self.ceiling / np.maximum(peaks, 1e-12))
        return need

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Feed a chunk; returns the limited samples that are ready (possibly fewer)."""
        self._x = np.concatenate([self._x, chunk]) if len(self._x) else chunk
        self._need = np.concatenate([self._need, self._required_gain(chunk)])
        return self._emit(final=False)

    def flush(self) -> np.ndarray:
        """Return the delayed tail."""
        tail = self._required_gain(np.zeros((_HALF_TAPS, 2), dtype=np.float32))
        self._need = np.concatenate([self._need, tail, np.ones(self._ahead + self.latency)])
        return self._emit(final=True)

    def _emit(self, *, final: bool) -> np.ndarray:
        context = self._emitted_context
        known = len(self._need) - context  # pending samples whose own need is known
        ready = len(self._x) if final else max(0, known - self._ahead - self.latency)
        ready = min(ready, len(self._x))
        if ready == 0:
            return np.zeros((0, 2), dtype=np.float32)
        window = self._behind + self._ahead + 1
        span = self._need[: context + ready + self._ahead + self._smooth_a + self._smooth_b]
        if span.min() >= 1.0:
            out = np.asarray(
                self._x[:ready], dtype=np.float32
            )  # nothing near the ceiling: pass through
        else:
            self.engaged = True
            held = ndimage.minimum_filter1d(
                span, size=window, origin=(window // 2) - self._ahead, mode="nearest"
            )
            gain = _moving_average(_moving_average(held, self._smooth_a), self._smooth_b)
            out = (self._x[:ready] * gain[context : context + ready, None]).astype(np.float32)
            np.clip(out, -self.ceiling, self.ceiling, out=out)
        self._x = self._x[ready:]
        keep = self._behind + self._smooth_a + self._smooth_b
        self._need = self._need[context + ready - keep :]
        self._emitted_context = keep
        return out


def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average of odd width, edges held."""
    return ndimage.uniform_filter1d(x, size=width, mode="nearest")


# MP3 decoders can overshoot the encoder's input by a few tenths of a dB:
# limit lossy formats a little lower so the decoded file still meets the ceiling.
_LOSSY_MARGIN_DB = {".mp3": 0.7, ".ogg": 0.7, ".opus": 0.7, ".m4a": 0.7, ".m4b": 0.7}

_INTERSAMPLE_MARGIN_DB = 0.15
"""The limiter's 4× estimate can miss an inter-sample peak by a little where it
limits hard (0.07 dB measured, 16× oversampled, on a fully limited track):
every format is limited this much under the ceiling so other meters agree."""

_SPOOL_MAX_S = 30 * 60

_COMMIT_TOLERANCE_LU = 0.2
"""A written pass whose loudness is this close to the target is kept."""

_PROMISE_LU = 0.4
"""Farther than this from the target (0.5 LU less a codec's share) is reported as out of reach."""

_SEARCH_TOLERANCE_LU = 0.05
"""Trial passes stop once they are this close."""

_MAX_TRIALS = 10

MAX_LIMITING_DB = 8.0
"""Most gain added beyond what the unlimited mix needs: past this the limiter
flattens speech audibly, and the track is left quieter with a warning."""


@dataclass(frozen=True)
class Mastered:
    """What the mastering stage measured on what it wrote."""

    loudness_lufs: float
    true_peak_db: float
    warnings: tuple[str, ...] = ()
    """One line each, for the user (e.g. a loudness target out of reach)."""


def master_to_file(
    chunks,
    settings: RenderSettings,
    *,
    title: str,
    total: int,
    stems: Path | None = None,
    voice: bool = True,
    metadata: Metadata | None = None,
    loudness_range: tuple[int, int] | None = None,
    measured: MeasurePass | None = None,
) -> Mastered:
    """Measure, normalize, limit and encode the mix (and stems) into ``settings.output``.

    Parameters
    ----------
    chunks : callable
        ``chunks(keep_layers)`` starts a fresh, identical stream of MixChunks
        each time it is called.
    settings : RenderSettings
        Output path, loudness target, true-peak ceiling and sample rate.
    title : str
        Title tag (when ``metadata`` is not given).
    total : int
        Length of the track in samples.
    stems : Path, optional
        Folder for one float WAV per part (voice, each layer), at the mix's
        gain before the limiter: they sum to the mix the limiter sees.
    voice : bool
        Whether the mix has a voice part (for the stems).
    metadata : Metadata, optional
        Tags, chapters and cover for the output.
    loudness_range : (int, int), optional
        Samples [start, end) whose loudness meets the target and is
        reported; None means the whole track.
    measured : MeasurePass, optional
        The measure pass, already fed as ``measure_extent`` says (its spool
        only if it holds the whole mix); without it, it is made here.

    Returns
    -------
    Mastered
        Loudness and true peak of the written output, and any warnings.
    """
    sr = settings.sample_rate
    metadata = metadata or Metadata(title=title, artist=settings.artist)
    if measured is None:
        spool, stop = measure_extent(
            total, sr, stems=stems is not None, loudness_range=loudness_range
        )
        measured = MeasurePass(sr, loudness_range, spool=spool)
        try:
            _measure(chunks, measured, stop, sr)
        except BaseException:
            measured.close()
            raise
    with measured:
        measured.finish()
        # The shortcut of the final pass needs the true peak of the whole mix.
        mix = (
            _MixMeasure(measured.meter, measured.peaks.finish_db())
            if measured.position >= total
            else None
        )
        source = _replay(measured.spool, total) if measured.spool is not None else chunks
        return _normalize_limit_encode(
            source,
            settings,
            metadata,
            stems,
            mix,
            measured.meter.integrated_lufs(),
            total,
            voice,
            loudness_range,
        )


def measure_extent(
    total: int, sample_rate: int, *, stems: bool, loudness_range: tuple[int, int] | None
) -> tuple[bool, int]:
    """How the measure pass goes: (spool the mix?, up to which sample).

    Short tracks keep the measured mix in a temporary file, so the later
    passes read it back instead of synthesizing and mixing it again; long
    ones (hours of ambience) regenerate it, keeping disk use bounded.
    Without a spool to fill, measuring stops where the measured range ends:
    a long ambient tail is mixed once, in the final pass, not twice.
    """
    spool = not stems and total <= _SPOOL_MAX_S * sample_rate
    stop = total if spool or loudness_range is None else min(total, loudness_range[1])
    return spool, stop


class MeasurePass:
    """The measure pass, fed the mix in order: its loudness, its true peak and, for short tracks, a spool of it.

    Metering and spooling run in a thread of their own (``InOrder``), the
    true peak on the feeding one: both spend their time in numpy and scipy,
    which release the GIL. ``render`` feeds one while the speech is still
    being synthesized (``premix``); ``master_to_file`` feeds its own otherwise.
    """

    def __init__(self, sample_rate: int, loudness_range: tuple[int, int] | None, *, spool: bool):
        self.meter = _RangeMeter(sample_rate, loudness_range)
        self.peaks = TruePeakMeter()
        self.position = 0
        """Samples fed so far."""
        self.spool = tempfile.TemporaryFile(prefix="meditation-mix-") if spool else None
        self._spooling = spool
        self._behind: InOrder | None = InOrder(self._consume, depth=4, name="meditation-meter")

    def _consume(self, mix: np.ndarray) -> None:
        self.meter.feed(mix)
        if self._spooling:
            self.spool.write(np.ascontiguousarray(mix, dtype=np.float32).tobytes())

    def feed(self, mix: np.ndarray) -> None:
        """The next chunk of the mix, ``(n, 2)``."""
        if (
            self._behind.failure is not None
        ):  # e.g. disk full while spooling: raised on the feeding thread
            self.finish()
        self._behind.put(mix)
        self.peaks.feed(mix)
        self.position += len(mix)

    def drop_spool(self) -> None:
        """Stop spooling (the track turned out long): the later passes will mix again."""
        self._spooling = False

    def _join(self) -> BaseException | None:
        """End the metering thread (once); what failed in it, if anything."""
        behind, self._behind = self._behind, None
        if behind is None:
            return None
        behind.finish()
        return behind.failure

    def finish(self) -> None:
        """Wait for the metering thread; raise what failed in it."""
        failure = self._join()
        if failure is not None:
            raise failure
        if not self._spooling and self.spool is not None:
            self.spool.close()
            self.spool = None

    def close(self) -> None:
        """Stop and let go of the spool, whatever state the pass is in (also on errors)."""
        try:
            self._join()
        finally:
            if self.spool is not None:
                self.spool.close()
                self.spool = None

    def __enter__(self) -> MeasurePass:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _RangeMeter:
    """A LoudnessMeter that hears only samples [start, end) of the stream it is fed."""

    def __init__(self, sample_rate: int, span: tuple[int, int] | None):
        self._meter = LoudnessMeter(sample_rate)
        self.span = span
        """Samples [start, end) heard; None: all. A render still growing its timeline narrows it as it learns (``premix``)."""
        self._position = 0

    def feed(self, block: np.ndarray) -> None:
        start = self._position
        self._position += len(block)
        if self.span is None:
            self._meter.feed(block)
            return
        lo, hi = max(start, self.span[0]), min(self._position, self.span[1])
        if lo < hi:
            self._meter.feed(block[lo - start : hi - start])

    def integrated_lufs(self, gain: float = 1.0) -> float:
        return self._meter.integrated_lufs(gain)


@dataclass(frozen=True)
class _MixMeasure:
    """What the measure pass learnt of the whole mix: the final pass can skip metering when its limiter cannot act."""

    meter: _RangeMeter
    true_peak_db: float

    def untouched_by(self, gain: float, ceiling_db: float) -> bool:
        """Whether the limiter passes every sample of the mix at ``gain`` through.

        It acts only where a 4× oversampled peak of its input goes over the
        ceiling, judged next to samples within 6 dB of it; the mix's true
        peak was judged the same way, at every such sample, so a scaled peak
        under the ceiling (with room for float rounding) means no sample is
        touched and the output is exactly the scaled mix.
        """
        return self.true_peak_db + 20 * np.log10(gain) < ceiling_db - 0.001


def _measure(chunks, measured: MeasurePass, stop: int, sample_rate: int) -> None:
    """The measure pass up to sample ``stop``: this thread makes the mix while another meters and spools the chunk before."""
    with progress("measure", stop / sample_rate, "s") as bar:
        for chunk in chunks(False):
            measured.feed(chunk.mix)
            bar.update(len(chunk.mix) / sample_rate)
            if chunk.start + len(chunk.mix) >= stop:
                break
    measured.finish()


def _normalize_limit_encode(
    chunks, settings, metadata, stems, mix, measured, total, voice, loudness_range
) -> Mastered:
    target = settings.loudness_lufs
    lossy = settings.output.suffix.lower() in _LOSSY_MARGIN_DB
    ceiling = (
        settings.true_peak_db
        - _LOSSY_MARGIN_DB.get(settings.output.suffix.lower(), 0.0)
        - _INTERSAMPLE_MARGIN_DB
    )
    if not np.isfinite(measured):
        loudness, peak, _ = _final(
            chunks,
            settings,
            metadata,
            stems,
            1.0,
            ceiling,
            total,
            voice,
            loudness_range=loudness_range,
            mix=mix,
        )
        return Mastered(loudness, peak)
    base_db = target - measured

    def gain(extra_db: float) -> float:
        return 10 ** ((base_db + extra_db) / 20)

    # The limiter shaves peaks and with them some loudness. Usually little:
    # the first written pass lands and is kept. When it does not (speech-
    # sparse tracks need their speech loud), search the gain against the
    # limited loudness with trial passes that are measured but not encoded,
    # then write once more.
    loudness, peak, committed = _final(
        chunks,
        settings,
        metadata,
        stems,
        gain(0.0),
        ceiling,
        total,
        voice,
        commit_if=target,
        loudness_range=loudness_range,
        mix=mix,
    )
    if committed:
        return Mastered(loudness, peak)
    first = (0.0, loudness)
    for _ in range(3):
        search = GainSearch(target, max_extra_db=MAX_LIMITING_DB)
        if first is not None:
            search.add(*first)
        for _ in range(_MAX_TRIALS):
            extra = search.next_extra_db()
            if extra is None:
                break
            search.add(
                extra,
                _limit_and_encode(
                    chunks,
                    None,
                    settings,
                    gain(extra),
                    ceiling,
                    total,
                    voice=voice,
                    loudness_range=loudness_range,
                )[0],
            )
        loudness, peak, _ = _final(
            chunks,
            settings,
            metadata,
            stems,
            gain(search.best_extra_db()),
            ceiling,
            total,
            voice,
            loudness_range=loudness_range,
            mix=mix,
        )
        # Heavy limiting leaves little room for a lossy codec's overshoot:
        # check the decoded file, and limit lower if it went over.
        over = _decoded_true_peak_db(settings.output) - settings.true_peak_db if lossy else 0.0
        if over <= 0:
            break
        ceiling -= over + 0.1
        first = None
    warnings = ()
    if abs(loudness - target) > _PROMISE_LU:
        warnings = (
            f"loudness target {target:g} LUFS is out of reach under the {settings.true_peak_db:g} dBTP ceiling "
            f"without limiting the peaks by more than {MAX_LIMITING_DB:g} dB: the track is at {loudness:.1f} LUFS",
        )
    return Mastered(loudness, peak, warnings)


def _decoded_true_peak_db(path: Path) -> float:
    """True peak of a written file as a player decodes it (libsndfile, or FFmpeg through PyAV for MP4)."""
    import soundfile

    try:
        audio, _ = soundfile.read(path, dtype="float32", always_2d=True)
    except soundfile.LibsndfileError:
        import av

        with av.open(str(path)) as container:
            frames = [f.to_ndarray() for f in container.decode(audio=0)]
        audio = np.concatenate([f.T for f in frames]) if frames else np.zeros((0, 2))
    return true_peak_db(audio)


class GainSearch:
    """Find the extra gain (dB) at which the limited loudness meets a target.

    The limited loudness L(x) of the mix at extra gain x dB rises with x, by
    at most 1 LU per dB (the limiter only takes level away, and takes more
    the louder its input). Points are measured passes; the next point is a
    secant step, kept inside the bracket once the target is bracketed
    (regula falsi with the Illinois fix), extrapolated from the measured
    slope while it is not.
    """

    def __init__(
        self, target_lufs: float, *, max_extra_db: float, tolerance_lu: float = _SEARCH_TOLERANCE_LU
    ):
        self.target = target_lufs
        self.max_extra_db = max_extra_db
        self.tolerance = tolerance_lu
        self.points: list[tuple[float, float]] = []  # (extra dB, loudness LUFS)
        self._stale = 0  # Illinois: how often the same bracket end has been kept

    def add(self, extra_db: float, loudness_lufs: float) -> None:
        """Record a measured pass."""
        self.points.append((float(extra_db), float(loudness_lufs)))

    def best_extra_db(self) -> float:
        """The measured point closest to the target (ties: the lower gain)."""
        return min(self.points, key=lambda p: (abs(p[1] - self.target), p[0]))[0]

    def next_extra_db(self) -> float | None:
        """Where to measure next; None when done (close enough, or out of reach)."""
        if not self.points:
            return 0.0
        if min(abs(loudness - self.target) for _, loudness in self.points) <= self.tolerance:
            return None
        below = [p for p in self.points if p[1] < self.target]
        above = [p for p in self.points if p[1] > self.target]
        lo = max(below, default=None)
        hi = min(above, default=None)
        if lo is not None and hi is not None:
            if hi[0] - lo[0] < 1e-3:
                return None  # a step in L(x) (gating) narrower than we can resolve
            # Regula falsi, kept away from the ends so the bracket shrinks.
            f_lo, f_hi = lo[1] - self.target, hi[1] - self.target
            x = lo[0] - f_lo * (hi[0] - lo[0]) / (f_hi - f_lo)
            margin = 0.1 * (hi[0] - lo[0])
            return float(min(max(x, lo[0] + margin), hi[0] - margin))
        if hi is None:
            if lo[0] >= self.max_extra_db:
                return None  # out of reach without limiting more than allowed
            slope = 1.0
            if len(below) >= 2:
                (x0, l0), (x1, l1) = sorted(below)[-2:]
                slope = min(1.0, max(0.1, (l1 - l0) / (x1 - x0))) if x1 > x0 else 1.0
            return float(min(self.max_extra_db, lo[0] + (self.target - lo[1]) / slope))
        # Everything measured is too loud: at most 1 LU per dB, so stepping down by the excess cannot overshoot much.
        return float(hi[0] - (hi[1] - self.target))


def _replay(spool, total: int):
    """A ``chunks`` function that reads the spooled mix back, chunk by chunk."""
    from .mix import CHUNK, MixChunk

    def chunks(keep_layers: bool):
        spool.seek(0)
        for start in range(0, total, CHUNK):
            n = min(CHUNK, total - start)
            mix = np.frombuffer(spool.read(n * 8), dtype=np.float32).reshape(n, 2)
            yield MixChunk(start, mix, None, {})

    return chunks


def _final(
    chunks,
    settings,
    metadata,
    stems,
    gain,
    ceiling_db,
    total,
    voice,
    commit_if: float | None = None,
    loudness_range=None,
    mix=None,
) -> tuple[float, float, bool]:
    """A pass that writes the files; with ``commit_if``, kept only when the loudness is within tolerance of it."""
    writers = _Writers(settings, metadata, stems)
    try:
        loudness, peak = _limit_and_encode(
            chunks,
            writers,
            settings,
            gain,
            ceiling_db,
            total,
            voice=voice,
            loudness_range=loudness_range,
            mix=mix,
        )
    except _Mispredicted:
        writers.discard()
        return _final(
            chunks,
            settings,
            metadata,
            stems,
            gain,
            ceiling_db,
            total,
            voice,
            commit_if,
            loudness_range,
        )  # metered
    except BaseException:
        writers.discard()
        raise
    if (
        commit_if is not None
        and np.isfinite(loudness)
        and abs(loudness - commit_if) > _COMMIT_TOLERANCE_LU
    ):
        writers.discard()
        return loudness, peak, False
    writers.commit()
    return loudness, peak, True


class _Writers:
    """The output file and, if asked, one stem file per part; committed or discarded together.

    Stems are 32-bit float WAV: they carry the mix's gain before the limiter,
    so the voice of a loud track goes past full scale, and float keeps it
    instead of clipping it.
    """

    def __init__(self, settings: RenderSettings, metadata: Metadata, stems: Path | None):
        self.main = AudioWriter(
            settings.output, sample_rate=settings.sample_rate, metadata=metadata
        )
        self.folder = stems
        self.stems: dict[str, AudioWriter] = {}
        self.sample_rate = settings.sample_rate
        if stems is not None:
            stems.mkdir(parents=True, exist_ok=True)

    def write_stems(self, chunk, gain: float, *, voice: bool = True) -> None:
        parts = {"voice": chunk.voice, **chunk.layers} if voice else chunk.layers
        for name, audio in parts.items():
            if name not in self.stems:
                self.stems[name] = AudioWriter(
                    self.folder / f"{name}.wav", sample_rate=self.sample_rate, subtype="FLOAT"
                )
            self.stems[name].write(audio * np.float32(gain))

    def commit(self) -> None:
        for w in self.stems.values():
            w.commit()
        self.main.commit()

    def discard(self) -> None:
        self.main._discard()
        for w in self.stems.values():
            w._discard()


class _Mispredicted(Exception):
    """The limiter acted on a pass that was not metered because it could not: ``_final`` runs it again, metered."""


def _limit_and_encode(
    chunks,
    writers: _Writers | None,
    settings: RenderSettings,
    gain: float,
    ceiling_db: float,
    total: int,
    *,
    voice: bool,
    loudness_range=None,
    mix: _MixMeasure | None = None,
) -> tuple[float, float]:
    """One pass: gain, limiter, meter, and (with ``writers``) the output and stems; returns (loudness, true peak).

    With ``mix`` (the measure pass's figures for the whole mix) and a gain
    at which the limiter cannot act, the output is the mix scaled, and its
    loudness and true peak are the mix's scaled: nothing is metered again.
    """
    sr = settings.sample_rate
    limiter = TruePeakLimiter(sr, ceiling_db=ceiling_db)
    untouched = mix is not None and mix.untouched_by(gain, ceiling_db)
    meter = None if untouched else _RangeMeter(sr, loudness_range)
    peaks = TruePeakMeter() if writers is not None and not untouched else None

    def emit(block: np.ndarray) -> None:
        if len(block):
            if writers is not None:
                writers.main.write(block)
            if peaks is not None:
                peaks.feed(block)
            if meter is not None:
                meter.feed(block)

    keep = writers is not None and writers.folder is not None
    with progress("master", total / sr, "s") as bar:
        for chunk in chunks(keep):
            if keep:
                writers.write_stems(chunk, gain, voice=voice)
            emit(limiter.process(chunk.mix * np.float32(gain)))
            bar.update(len(chunk.mix) / sr)
        emit(limiter.flush())
    if untouched:
        if limiter.engaged:  # should not happen (see _MixMeasure.untouched_by); never report figures that are not the output's
            raise _Mispredicted
        return mix.meter.integrated_lufs(gain), mix.true_peak_db + 20 * float(np.log10(gain))
    return meter.integrated_lufs(), peaks.finish_db() if peaks is not None else float("-inf")
