"""Stage 7: mastering — gain to the loudness target, the true-peak limiter, and
the passes that write the output (and stems).

Everything streams: it sees the track chunk by chunk, so memory does not grow
with its length. The measure pass (``measure``) gives the mix's loudness; the
final pass scales it, limits it (``limiter``) and encodes it, and when the
limiter takes too much loudness away, trial passes search the gain
(``GainSearch``) before the last one is written. The meters are in ``loudness``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .export import AudioWriter, Metadata
from .files import make_folder
from .formats import encoder_for
from .limiter import TruePeakLimiter
from .loudness import RangeMeter, TruePeakMeter, file_true_peak_db
from .measure import MeasurePass, measure, measure_extent, replay
from .progress import progress

if TYPE_CHECKING:
    from .mix import MixChunk
    from .settings import RenderSettings

__all__ = [
    "master_to_file",
    "mix_true_peak_first",
    "Mastered",
    "GainSearch",
    "MAX_LIMITING_DB",
]

# MP3 decoders can overshoot the encoder's input by a few tenths of a dB:
# limit lossy formats a little lower so the decoded file still meets the ceiling.
_LOSSY_MARGIN_DB = {".mp3": 0.7, ".ogg": 0.7, ".opus": 0.7, ".m4a": 0.7, ".m4b": 0.7}

_INTERSAMPLE_MARGIN_DB = 0.15
"""The limiter's 8× estimate can miss an inter-sample peak by a little where it
limits hard (ffmpeg's ebur128 read 0.05 dB more on a train of sharp crackles,
``tests/test_master.py``): every format is limited this much under the
ceiling so other meters agree."""

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
            measure(chunks, measured, stop, sr)
        except BaseException:
            measured.close()
            raise
    with measured:
        measured.finish()
        # The shortcut of the final pass needs the true peak of the whole mix.
        mix = (
            _MixMeasure(measured.meter, measured.peaks.finish_db())
            if measured.position >= total and measured.peaks is not None
            else None
        )
        source = replay(measured.spool, total) if measured.spool is not None else chunks
        return _normalize_limit_encode(
            _Pass(source, settings, metadata, stems, total, voice, loudness_range, mix),
            measured.meter.integrated_lufs(),
        )


def mix_true_peak_first(output: Path) -> bool:
    """Whether the measure pass should take the mix's true peak (8x, costly on speech) for ``output``.

    Yes for lossless files: their final pass is cheap, and knowing the mix's
    peak lets it skip metering where the limiter cannot act. Yes for MP3 too,
    whose encoder works on every core: the final pass is then on the way to
    the end, and the mix's catch-up after the last word leaves some of a core
    free for the meter (issue 21: the dream's MP3 0.24 s sooner at rate 0.8,
    0.36 s at its own pace, A/B on 2 cores). No for the other lossy formats:
    their encoder, one thread slower than the final pass, keeps one core busy
    after the mix is measured, and the final pass meters its own output on
    the other (the dream's MP3 came 0.5 s sooner that way when LAME was one
    process).
    """
    suffix = output.suffix.lower()
    encoder = encoder_for(suffix)
    return suffix not in _LOSSY_MARGIN_DB or bool(getattr(encoder, "EVERY_CORE", False))


@dataclass(frozen=True)
class _MixMeasure:
    """What the measure pass learnt of the whole mix: the final pass can skip metering when its limiter cannot act."""

    meter: RangeMeter
    true_peak_db: float

    def untouched_by(self, gain: float, ceiling_db: float) -> bool:
        """Whether the limiter passes every sample of the mix at ``gain`` through.

        It acts only where an 8× oversampled peak of its input goes over the
        ceiling, judged next to samples within 6 dB of it; the mix's true
        peak was judged the same way, at every such sample, so a scaled peak
        under the ceiling (with room for float rounding) means no sample is
        touched and the output is exactly the scaled mix.
        """
        return bool(self.true_peak_db + 20 * np.log10(gain) < ceiling_db - 0.001)


@dataclass(frozen=True)
class _Pass:
    """What every pass of the final stage reads and writes: the same for each written and trial pass."""

    chunks: Callable[[bool], Iterator[MixChunk]]
    """``chunks(keep_layers)``: a fresh, identical stream of the mix each call."""
    settings: RenderSettings
    metadata: Metadata
    stems: Path | None
    total: int
    voice: bool
    loudness_range: tuple[int, int] | None
    mix: _MixMeasure | None = None
    """The measure pass's figures for the whole mix, when it saw all of it: a pass the limiter leaves alone is not metered."""


def _normalize_limit_encode(inputs: _Pass, measured: float) -> Mastered:
    settings = inputs.settings
    target = settings.loudness_lufs
    lossy = settings.output.suffix.lower() in _LOSSY_MARGIN_DB
    ceiling = (
        settings.true_peak_db
        - _LOSSY_MARGIN_DB.get(settings.output.suffix.lower(), 0.0)
        - _INTERSAMPLE_MARGIN_DB
    )

    def final(gain: float, ceiling_db: float, commit_if: float | None = None):
        return _final(inputs, gain, ceiling_db, commit_if=commit_if)

    def trial(gain: float, ceiling_db: float) -> float:
        return _limit_and_encode(inputs, None, gain, ceiling_db)[0]

    if not np.isfinite(measured):
        loudness, peak, _ = final(1.0, ceiling)
        return Mastered(loudness, peak)
    base_db = target - measured

    def gain(extra_db: float) -> float:
        return 10 ** ((base_db + extra_db) / 20)

    # The limiter shaves peaks and with them some loudness. Usually little:
    # the first written pass lands and is kept. When it does not (speech-
    # sparse tracks need their speech loud), search the gain against the
    # limited loudness with trial passes that are measured but not encoded,
    # then write once more.
    loudness, peak, committed = final(gain(0.0), ceiling, commit_if=target)
    if committed:
        return Mastered(loudness, peak)
    first: tuple[float, float] | None = (0.0, loudness)
    for _ in range(3):
        search = GainSearch(target, max_extra_db=MAX_LIMITING_DB)
        if first is not None:
            search.add(*first)
        for _ in range(_MAX_TRIALS):
            extra = search.next_extra_db()
            if extra is None:
                break
            search.add(extra, trial(gain(extra), ceiling))
        loudness, peak, _ = final(gain(search.best_extra_db()), ceiling)
        # Heavy limiting leaves little room for a lossy codec's overshoot:
        # check the decoded file, and limit lower if it went over.
        over = file_true_peak_db(settings.output) - settings.true_peak_db if lossy else 0.0
        if over <= 0:
            break
        ceiling -= over + 0.1
        first = None
    warnings: tuple[str, ...] = ()
    if abs(loudness - target) > _PROMISE_LU:
        warnings = (
            f"loudness target {target:g} LUFS is out of reach under the {settings.true_peak_db:g} dBTP ceiling "
            f"without limiting the peaks by more than {MAX_LIMITING_DB:g} dB: the track is at {loudness:.1f} LUFS",
        )
    return Mastered(loudness, peak, warnings)


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
        if below and above:
            lo, hi = max(below), min(above)
            if hi[0] - lo[0] < 1e-3:
                return None  # a step in L(x) (gating) narrower than we can resolve
            # Regula falsi, kept away from the ends so the bracket shrinks.
            f_lo, f_hi = lo[1] - self.target, hi[1] - self.target
            x = lo[0] - f_lo * (hi[0] - lo[0]) / (f_hi - f_lo)
            margin = 0.1 * (hi[0] - lo[0])
            return float(min(max(x, lo[0] + margin), hi[0] - margin))
        if below:  # everything measured is too quiet
            lo = max(below)
            if lo[0] >= self.max_extra_db:
                return None  # out of reach without limiting more than allowed
            slope = 1.0
            if len(below) >= 2:
                (x0, l0), (x1, l1) = sorted(below)[-2:]
                slope = min(1.0, max(0.1, (l1 - l0) / (x1 - x0))) if x1 > x0 else 1.0
            return float(min(self.max_extra_db, lo[0] + (self.target - lo[1]) / slope))
        # Everything measured is too loud: at most 1 LU per dB, so stepping down by the excess cannot overshoot much.
        hi = min(above)
        return float(hi[0] - (hi[1] - self.target))


def _final(
    inputs: _Pass, gain: float, ceiling_db: float, commit_if: float | None = None
) -> tuple[float, float, bool]:
    """A pass that writes the files; with ``commit_if``, kept only when the loudness is within tolerance of it."""
    writers = _Writers(inputs.settings, inputs.metadata, inputs.stems)
    try:
        loudness, peak = _limit_and_encode(inputs, writers, gain, ceiling_db)
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
            settings.output,
            sample_rate=settings.sample_rate,
            metadata=metadata,
            mp3_quality=settings.mp3_quality,
        )
        self.folder = stems
        self.stems: dict[str, AudioWriter] = {}
        self.sample_rate = settings.sample_rate
        if stems is not None:
            make_folder(stems)  # removed again if the run fails (files.all_or_nothing)

    def write_stems(self, chunk: MixChunk, gain: float, *, voice: bool = True) -> None:
        if self.folder is None:
            raise ValueError("no stems were asked for")
        parts = chunk.layers
        if voice:
            if chunk.voice is None:
                raise ValueError("a mix read back from its spool has no stems")
            # With speakers, a voice stem each (``voice-echo``); else the one ``voice``.
            voices = chunk.voices if chunk.voices is not None else {"voice": chunk.voice}
            parts = {**voices, **chunk.layers}
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


def _limit_and_encode(
    inputs: _Pass, writers: _Writers | None, gain: float, ceiling_db: float
) -> tuple[float, float]:
    """One pass: gain, limiter, meter, and (with ``writers``) the output and stems; returns (loudness, true peak).

    With ``inputs.mix`` (the measure pass's figures for the whole mix) and a
    gain at which the limiter cannot act, the output is the mix scaled (the
    limiter is left out: it would pass every sample through, only later), and
    its loudness and true peak are the mix's scaled: nothing is metered again.
    Trial passes (no ``writers``) always meter and limit.
    """
    sr = inputs.settings.sample_rate
    total, voice, mix = inputs.total, inputs.voice, inputs.mix if writers is not None else None
    # The mix whose figures are the output's, scaled; None: meter the output.
    scaled = mix if mix is not None and mix.untouched_by(gain, ceiling_db) else None
    # Where it cannot act, the limiter's output is its input delayed: leave it out.
    limiter = TruePeakLimiter(sr, ceiling_db=ceiling_db) if scaled is None else None
    meter = None if scaled is not None else RangeMeter(sr, inputs.loudness_range)
    peaks = TruePeakMeter() if writers is not None and scaled is None else None

    def emit(block: np.ndarray) -> None:
        if len(block):
            if writers is not None:
                writers.main.write(block)
            if peaks is not None:
                peaks.feed(block)
            if meter is not None:
                meter.feed(block)

    stems = writers if writers is not None and writers.folder is not None else None
    with progress("master", total / sr, "s") as bar:
        for chunk in inputs.chunks(stems is not None):
            if stems is not None:
                stems.write_stems(chunk, gain, voice=voice)
            block = chunk.mix * np.float32(gain)
            emit(limiter.process(block) if limiter is not None else block)
            bar.update(len(chunk.mix) / sr)
        if limiter is not None:
            emit(limiter.flush())
    if scaled is not None:
        return scaled.meter.integrated_lufs(gain), scaled.true_peak_db + 20 * float(np.log10(gain))
    assert meter is not None  # made whenever the mix's figures are not the output's
    return meter.integrated_lufs(), peaks.finish_db() if peaks is not None else float("-inf")
