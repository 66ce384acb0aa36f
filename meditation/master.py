"""Mastering: loudness measurement (ITU-R BS.1770-4) and a true-peak limiter.

Both stream: they see the track chunk by chunk, so memory does not grow with
its length. The meter reuses pyloudnorm's K-weighting filter design (a
maintained reference) but runs the filters with carried state and keeps only
one mean-square value per 100 ms, which pyloudnorm's whole-array API cannot.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal

__all__ = ["LoudnessMeter", "TruePeakLimiter", "integrated_loudness", "true_peak_db"]

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
            [np.concatenate([f.b, f.a]) for f in (reference._filters["high_shelf"], reference._filters["high_pass"])]
        )
        self._zi = np.zeros((2, 2, 2))  # sections × 2 state values × channels
        self._hop = int(round(_HOP_S * sample_rate))
        self._leftover = np.zeros(0)
        self._hop_power: list[float] = []

    def feed(self, chunk: np.ndarray) -> None:
        """Add the next ``(n, 2)`` chunk."""
        weighted, self._zi = signal.sosfilt(self._sos, chunk.astype(np.float64), axis=0, zi=self._zi)
        # Channel weights are 1.0 for left and right: sum their mean squares.
        power = np.concatenate([self._leftover, np.sum(weighted * weighted, axis=1)])
        whole = len(power) // self._hop
        if whole:
            self._hop_power.extend(power[: whole * self._hop].reshape(whole, self._hop).mean(axis=1))
        self._leftover = power[whole * self._hop :]

    def integrated_lufs(self) -> float:
        """Gated integrated loudness of everything fed so far (-inf for silence)."""
        hops = np.asarray(self._hop_power)
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


def _interpolator() -> np.ndarray:
    # A 4× interpolation filter as BS.1770 Annex 2 suggests for true-peak estimation.
    taps = signal.firwin(12 * _OVERSAMPLE, 1.0 / _OVERSAMPLE, window=("kaiser", 6.0)) * _OVERSAMPLE
    return taps.astype(np.float64)


def true_peak_db(audio: np.ndarray) -> float:
    """True peak (4× oversampled) of a whole array, in dBTP."""
    taps = _interpolator()
    up = signal.upfirdn(taps, audio.astype(np.float64), up=_OVERSAMPLE, axis=0)
    return float(20 * np.log10(np.max(np.abs(up)) + 1e-20))


class TruePeakLimiter:
    """A look-ahead limiter that keeps the 4× oversampled peak under a ceiling.

    The gain is computed without recursion: the gain each sample needs is
    spread by a running minimum over the look-ahead and release window, then
    smoothed by two moving averages that the minimum window fully covers, so
    the smoothed gain never exceeds what any sample needs. Output is delayed by
    ``latency`` samples; ``flush`` returns the rest.
    """

    def __init__(self, sample_rate: int, *, ceiling_db: float, attack_s: float = 0.005, release_s: float = 0.06):
        self.ceiling = 10 ** (ceiling_db / 20)
        self._smooth_a = max(1, int(attack_s * sample_rate)) | 1
        self._smooth_b = max(1, int(release_s * sample_rate / 2)) | 1
        half = self._smooth_a // 2 + self._smooth_b // 2
        self._ahead = half  # samples of future the minimum must see
        self._behind = half + int(release_s * sample_rate)  # hold: the gain recovers after this
        self.latency = 2 * half
        self._taps = _interpolator()
        self._tp_history = np.zeros((len(self._taps) // _OVERSAMPLE, 2))
        self._x = np.zeros((0, 2), dtype=np.float32)
        self._need = np.ones(self._behind + 2 * half)  # required gain for context before pending samples
        self._emitted_context = len(self._need)

    def _required_gain(self, chunk: np.ndarray) -> np.ndarray:
        history = len(self._tp_history)
        if float(np.max(np.abs(chunk), initial=0.0)) < 0.5 * self.ceiling:
            # Inter-sample peaks of band-limited audio stay far below 6 dB over
            # the sample peak, so quiet chunks need no oversampling.
            self._tp_history = np.concatenate([self._tp_history, chunk.astype(np.float64)])[-history:]
            return np.ones(len(chunk))
        padded = np.concatenate([self._tp_history, chunk.astype(np.float64)])
        up = signal.upfirdn(self._taps, padded, up=_OVERSAMPLE, axis=0)
        # Phase k of sample i lives at up[i*4 + k + delay]; take each sample's loudest phase.
        delay = (len(self._taps) - 1) // 2
        start = history * _OVERSAMPLE + delay
        body = up[start : start + len(chunk) * _OVERSAMPLE]
        if len(body) < len(chunk) * _OVERSAMPLE:
            body = np.concatenate([body, np.zeros((len(chunk) * _OVERSAMPLE - len(body), 2))])
        peak = np.abs(body).reshape(len(chunk), _OVERSAMPLE, 2).max(axis=(1, 2))
        peak = np.maximum(peak, np.abs(chunk).max(axis=1))
        self._tp_history = padded[-history:]
        return np.minimum(1.0, self.ceiling / np.maximum(peak, 1e-12))

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Feed a chunk; returns the limited samples that are ready (possibly fewer)."""
        self._x = np.concatenate([self._x, chunk])
        self._need = np.concatenate([self._need, self._required_gain(chunk)])
        return self._emit(final=False)

    def flush(self) -> np.ndarray:
        """Return the delayed tail."""
        self._need = np.concatenate([self._need, np.ones(self._ahead + self.latency)])
        return self._emit(final=True)

    def _emit(self, *, final: bool) -> np.ndarray:
        context = self._emitted_context
        ready = len(self._x) if final else max(0, len(self._need) - context - self._ahead - self.latency)
        ready = min(ready, len(self._x))
        if ready == 0:
            return np.zeros((0, 2), dtype=np.float32)
        # Gain for samples [context, context+ready) of self._need.
        window = self._behind + self._ahead + 1
        held = ndimage.minimum_filter1d(self._need, size=window, origin=(window // 2) - self._ahead, mode="nearest")
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
