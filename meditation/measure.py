"""The measure pass: the mix's loudness and true peak and, for short tracks, a spool of it.

``render`` feeds one while the speech is still being synthesized (``premix``);
``master.master_to_file`` makes its own otherwise, then reads the spool back
(``replay``) instead of mixing again.
"""

from __future__ import annotations

import tempfile

import numpy as np

from ._threads import InOrder
from .loudness import RangeMeter, TruePeakMeter
from .mix import CHUNK, MixChunk
from .progress import progress

__all__ = ["MeasurePass", "measure_extent", "measure", "replay"]

_SPOOL_MAX_S = 30 * 60


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

    Metering runs in a thread of its own (``InOrder``), the true peak in
    another: both spend their time in numpy and scipy, which release the
    GIL, and on the feeding thread the true peak (8×, as much work as the
    loudness) held back the mixing. The spool is written on the feeding
    thread, which otherwise waits for the meter (the measure pass of a
    ten-minute ambient took 10% less time than with the writes in the
    meter's thread). ``render`` feeds one while the speech is still being
    synthesized (``premix``); ``master_to_file`` feeds its own otherwise.
    """

    def __init__(
        self,
        sample_rate: int,
        loudness_range: tuple[int, int] | None,
        *,
        spool: bool,
        true_peak: bool = True,
    ):
        self.meter = RangeMeter(sample_rate, loudness_range)
        self.peaks: TruePeakMeter | None = TruePeakMeter() if true_peak else None
        """The mix's true peak; None when the final pass measures its own (``true_peak=False``)."""
        self.position = 0
        """Samples fed so far."""
        self.spool = tempfile.TemporaryFile(prefix="meditation-mix-") if spool else None
        self._spooling = spool
        # Three threads share two cores here: 16 chunks (4 MB, the same arrays in both queues)
        # let a thread that was held up catch up (measured 5% faster than 4 on a ten-minute ambient).
        self._behind: InOrder | None = InOrder(self.meter.feed, depth=16, name="meditation-meter")
        self._peaks_behind: InOrder | None = (
            InOrder(self.peaks.feed, depth=16, name="meditation-peaks")
            if self.peaks is not None
            else None
        )

    def feed(self, mix: np.ndarray) -> None:
        """The next chunk of the mix, ``(n, 2)``."""
        behind, peaks = self._behind, self._peaks_behind
        if behind is None:
            raise ValueError("the measure pass was finished")
        if behind.failure is not None or (peaks is not None and peaks.failure is not None):
            self.finish()  # raised on the feeding thread
        behind.put(mix)
        if peaks is not None:
            peaks.put(mix)
        if self._spooling and self.spool is not None:  # while the meters work on it
            self.spool.write(np.ascontiguousarray(mix, dtype=np.float32).data)
        self.position += len(mix)

    def drop_spool(self) -> None:
        """Stop spooling (the track turned out long): the later passes will mix again."""
        self._spooling = False

    def _join(self) -> BaseException | None:
        """End the metering threads (once); what failed in them, if anything."""
        failure = None
        for name in ("_behind", "_peaks_behind"):
            behind = getattr(self, name)
            setattr(self, name, None)
            if behind is not None:
                behind.finish()
                failure = failure or behind.failure
        return failure

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


def measure(chunks, measured: MeasurePass, stop: int, sample_rate: int) -> None:
    """The measure pass up to sample ``stop``: this thread makes the mix while another meters and spools the chunk before."""
    with progress("measure", stop / sample_rate, "s") as bar:
        for chunk in chunks(False):
            measured.feed(chunk.mix)
            bar.update(len(chunk.mix) / sample_rate)
            if chunk.start + len(chunk.mix) >= stop:
                break
    measured.finish()


def replay(spool, total: int):
    """A ``chunks`` function that reads the spooled mix back, chunk by chunk."""

    def chunks(keep_layers: bool):
        spool.seek(0)
        for start in range(0, total, CHUNK):
            n = min(CHUNK, total - start)
            mix = np.frombuffer(spool.read(n * 8), dtype=np.float32).reshape(n, 2)
            yield MixChunk(start, mix, None, {})

    return chunks
