"""A campfire: the soft roar of flames, a faint hiss, and sharp crackles.

Perceptual model (after Farnell, *Designing Sound*, "Fire"): a fire is three
sounds. The *lapping* of the flames is a low, soft noise that flickers a few
times a second; the *hiss* of gas escaping is a quiet high noise; and the
*crackles* — wood splitting, sap bursting — are very short, loud, broadband
clicks, often in little bursts, with a few ringing snaps among them. The
crackles are rare and loud, so every band's envelope is extremely
heavy-tailed (real recordings: kurtosis ~11), and because a click is
broadband the bands move somewhat together (~0.2).

Implementation: one noise band for lapping and hiss (gain flickered on
random knots), crackles and snaps as grains from banks (``dsp.GrainBank``),
bursts of one to six, scattered at Poisson times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import BLOCK_SIZE, NOMINAL_RMS_DB, SpanLayer, register_layer, soft_limit
from .dsp import GrainBank, GrainTail, NoiseBed, decaying_noise, layer_function, resonate

__all__ = ["Campfire", "campfire"]

_SPAN_BLOCKS = 4
_SPAN = _SPAN_BLOCKS * BLOCK_SIZE
_CRACKLE_SHARE = 0.5
# Crackle loudnesses: spread over ~24 dB, loud ones rare.
_LOUDNESS = np.exp(np.array([-1.6, -0.8, 0.0, 0.4, 0.6]))
_LOUDNESS_WEIGHT = np.array([0.35, 0.3, 0.2, 0.1, 0.05])
_FLICKER_KNOT_S = 0.08


@register_layer("campfire")
class Campfire(SpanLayer):
    """A wood fire: lapping flames, hiss and crackles."""

    description = "A crackling wood fire: soft lapping flames, a faint hiss, sharp crackles."
    span_blocks = _SPAN_BLOCKS
    ranges = {"crackle_rate_hz": (0.0, 60.0), "roar": (0.0, 1.0)}

    @dataclass(frozen=True)
    class Params:
        """Campfire parameters."""

        crackle_rate_hz: float = 2.5
        """Bursts of crackles a second."""
        roar: float = 0.5
        """0..1: how strong the flames' low lapping is next to the crackles."""

    def __init__(self, **kwargs):
        from scipy import signal  # noqa: PLC0415 - scipy.signal takes ~0.7 s to import; checking a preset must not pay it

        super().__init__(**kwargs)
        p = self.params
        fs = self.sample_rate
        rng = self.rng
        total = 10 ** (NOMINAL_RMS_DB / 10)
        share = _CRACKLE_SHARE * (1.2 - 0.6 * p.roar) if p.crackle_rate_hz > 0 else 0.0
        sos = signal.butter(1, [60.0, 700.0], btype="bandpass", fs=fs, output="sos")
        self._bed_sos = sos
        self._knot = 2 ** int(round(math.log2(_FLICKER_KNOT_S * fs)))
        self._last = np.ones(2, dtype=np.float32)
        self._ramp = np.arange(1, self._knot + 1, dtype=np.float32) / self._knot

        grains = []
        weights = []
        lowpass = signal.butter(2, min(4000.0, 0.3 * fs), fs=fs, output="sos")
        for i in range(24):
            if i < 16:  # clicks: a fraction of a millisecond of broadband noise
                decay = rng.uniform(0.0003, 0.0012)
                n = int(8 * decay * fs) + 8
                g = decaying_noise(rng, n, decay, fs, attack_s=3e-4)
                # Bright, but with little left near Nyquist: a click with energy
                # there peaks between samples far above its sample peak.
                g = signal.sosfilt(lowpass, g)
                weights.append(1.0)
            else:  # snaps: a short ring
                decay = rng.uniform(0.002, 0.008)
                n = int(6 * decay * fs) + 8
                f = rng.uniform(1500.0, min(5000.0, 0.4 * fs))
                g = resonate(decaying_noise(rng, n, decay, fs, attack_s=1e-4), f, 8.0, fs)
                weights.append(0.4)
            grains.append((g / math.sqrt(float(np.dot(g, g)))).astype(np.float32))
        self._burst_mean = 2.5
        rate = max(p.crackle_rate_hz, 1e-9) * self._burst_mean
        loud_ms = float(np.sum(_LOUDNESS_WEIGHT * _LOUDNESS**2))
        scale = math.sqrt(total * share * fs / (rate * loud_ms * 0.5)) if share else 0.0
        self._bed = NoiseBed(self._bed_sos, rms=math.sqrt(total * (1 - share)))
        pans = np.linspace(-0.7, 0.7, 5)
        self._banks = [
            GrainBank(grains, weights=weights, loudness=(scale * v,), pans=pans) for v in _LOUDNESS
        ]
        self._tail = GrainTail(_SPAN, self._banks[0].longest + int(0.06 * fs))

    def _render_span(self, start: int) -> np.ndarray:
        rng = self.rng
        fs = self.sample_rate
        y = self._bed.render(rng, _SPAN)
        # Flicker: gain knots (lognormal, mean power 1) joined by straight lines.
        n_knots = _SPAN // self._knot
        knots = np.exp(0.3 * rng.standard_normal((n_knots, 2)) - 0.09).astype(np.float32)
        starts = np.concatenate([self._last[None], knots[:-1]])
        # Channel-first, the ramp along the last axis: numpy's fast inner loops.
        gain = (starts.T[:, :, None] + (knots - starts).T[:, :, None] * self._ramp).reshape(2, -1)
        self._last = knots[-1]
        out = np.empty((_SPAN, 2), dtype=np.float32)
        out[:, 0] = y[0] * gain[0]
        out[:, 1] = y[1] * gain[1]
        bursts = int(rng.poisson(self.params.crackle_rate_hz * _SPAN / fs))
        if bursts:
            # A burst: one to six crackles within ~50 ms, each of one loudness.
            sizes = rng.geometric(1 / self._burst_mean, bursts).clip(1, 6)
            at = rng.integers(0, _SPAN, bursts)
            loud = rng.choice(len(self._banks), bursts, p=_LOUDNESS_WEIGHT)
            for a, size, k in zip(at.tolist(), sizes.tolist(), loud.tolist(), strict=True):
                span = min(int(0.05 * fs), self._tail.buffer.shape[0] - a - self._banks[k].longest)
                self._banks[k].scatter(self._tail, rng, size, max(span, 1), at=a)
        out += self._tail.take()
        soft_limit(out)
        return out


campfire = layer_function("campfire")
