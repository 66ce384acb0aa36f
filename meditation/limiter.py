"""A look-ahead true-peak limiter (8x oversampled peaks, ``loudness.peaks_at``)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .loudness import HALF_TAPS, frame_levels, largest_magnitude, peaks_at

__all__ = ["TruePeakLimiter"]


class TruePeakLimiter:
    """A look-ahead limiter that keeps the 8× oversampled peak under a ceiling.

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
        self._history = np.zeros((HALF_TAPS, 2))  # input not yet judged, plus context before it
        self._x = np.zeros((0, 2), dtype=np.float32)
        self._need = np.ones(
            self._behind + 2 * half
        )  # required gain for context before pending samples
        self._emitted_context = len(self._need)
        self.engaged = False
        """Whether any sample so far was turned down."""

    def _required_gain(self, chunk: np.ndarray) -> np.ndarray:
        """Gain needed by each sample whose neighbourhood is now complete (all but the newest ``HALF_TAPS``)."""
        # Points after sample i need samples up to i+HALF_TAPS: the newest wait for the next chunk.
        ready = len(self._history) + len(chunk) - 2 * HALF_TAPS
        quiet = 0.5 * self.ceiling
        if ready <= 0 or (
            float(largest_magnitude(chunk)) <= quiet
            and float(largest_magnitude(self._history)) <= quiet
        ):
            # Nothing within 6 dB of the ceiling (the common case): no float64 copy of the chunk.
            if len(chunk) >= 2 * HALF_TAPS:
                self._history = chunk[-2 * HALF_TAPS :].astype(np.float64)
            else:
                padded = np.concatenate([self._history, chunk.astype(np.float64)])
                self._history = padded[-2 * HALF_TAPS :]
            return np.ones(max(ready, 0))
        padded = np.concatenate([self._history, chunk.astype(np.float64)])
        self._history = padded[-2 * HALF_TAPS :]
        need = np.ones(ready)
        level = frame_levels(padded)
        # Only where the signal comes within 6 dB of the ceiling can its true peak reach it:
        # the points after sample i are judged when sample i or i+1 is that loud. (Judging
        # them by samples i-1 and i missed the overshoot just before a sharp click's first
        # loud sample: +0.7 dB over the ceiling on a click train.)
        loud = level > 0.5 * self.ceiling
        near = np.flatnonzero(
            loud[HALF_TAPS : HALF_TAPS + ready] | loud[HALF_TAPS + 1 : HALF_TAPS + ready + 1]
        )
        if len(near):
            # A mono voice doubled (mix.limit_crest): one channel's peaks are both's, at half the cost.
            if np.array_equal(padded[:, 0], padded[:, 1]):
                padded = padded[:, :1]
            peaks = peaks_at(padded, near + HALF_TAPS, self.ceiling)
            need[near] = np.minimum(1.0, self.ceiling / np.maximum(peaks, 1e-12))
        return need

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Feed a chunk; returns the limited samples that are ready (possibly fewer)."""
        self._x = np.concatenate([self._x, chunk]) if len(self._x) else chunk
        self._need = np.concatenate([self._need, self._required_gain(chunk)])
        return self._emit(final=False)

    def flush(self) -> np.ndarray:
        """Return the delayed tail."""
        tail = self._required_gain(np.zeros((HALF_TAPS, 2), dtype=np.float32))
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
            # The product in float64, rounded once to float32 as it is stored (no float64 copy).
            out = np.empty((ready, self._x.shape[1]), dtype=np.float32)
            np.multiply(self._x[:ready], gain[context : context + ready, None], out=out)
            np.clip(out, -self.ceiling, self.ceiling, out=out)
        self._x = self._x[ready:]
        keep = self._behind + self._smooth_a + self._smooth_b
        self._need = self._need[context + ready - keep :]
        self._emitted_context = keep
        return out


def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average of odd width, edges held."""
    return ndimage.uniform_filter1d(x, size=width, mode="nearest")
