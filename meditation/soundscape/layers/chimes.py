"""Wind chimes: tuned metal bars struck by a gusting wind.

Perceptual model: each bar of a chime rings at its own pitch with the
inharmonic overtones of a free bar (1, 2.76, 5.40 times the fundamental),
the overtones dying away much faster than the fundamental; bars are tuned
to a pentatonic scale, so any mix of them is consonant. The clapper strikes
them when the wind blows: strikes bunch in the gusts and almost stop in the
lulls, each of its own strength.

Implementation: one grain per bar, made once; strikes at a Poisson rate
that follows a slow random gust (an AR(1) process stepped per span), with
random bar and strength (a few steps), each a slice add (``dsp.GrainTail``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import BLOCK_SIZE, NOMINAL_RMS_DB, SpanLayer, register_layer, soft_limit
from .dsp import GrainTail, layer_function, pan_gains

__all__ = ["Chimes", "chimes"]

_SPAN_BLOCKS = 4
_SPAN = _SPAN_BLOCKS * BLOCK_SIZE
_MODES = np.array([1.0, 2.756, 5.404])
_MODE_AMPS = np.array([1.0, 0.5, 0.25])
# Pentatonic scale degrees (semitones) for the bars.
_SCALE = (0, 2, 4, 7, 9, 12, 14, 16)
_STRENGTHS = (0.35, 0.6, 1.0)


@register_layer("chimes")
class Chimes(SpanLayer):
    """Wind chimes: pentatonic bars struck in the gusts."""

    description = "Wind chimes: tuned metal bars ringing when the breeze gusts."
    span_blocks = _SPAN_BLOCKS
    ranges = {
        "strikes_per_s": (0.0, 10.0),
        "root_hz": (200.0, 2000.0),
        "bars": (2, 8),
        "decay_s": (0.5, 10.0),
    }

    @dataclass(frozen=True)
    class Params:
        """Chimes parameters."""

        strikes_per_s: float = 0.8
        """Mean strikes a second (many more in a gust, almost none in a lull)."""
        root_hz: float = 660.0
        """Pitch of the lowest bar."""
        bars: int = 5
        """How many bars (tuned up a pentatonic scale)."""
        decay_s: float = 3.0
        """Time for a bar's fundamental to fall 60 dB."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        p = self.params
        fs = self.sample_rate
        rng = self.rng
        n = int(p.decay_s * fs)
        t = np.arange(n) / fs
        self._bars = []
        energy = 0.0
        for k in range(int(p.bars)):
            f0 = p.root_hz * 2 ** (_SCALE[k] / 12) * (1 + rng.uniform(-0.004, 0.004))
            g = np.zeros(n)
            for ratio, amp in zip(_MODES, _MODE_AMPS, strict=True):
                f = f0 * ratio
                if f >= 0.45 * fs:
                    continue
                t60 = p.decay_s / ratio
                g += amp * np.sin(2 * np.pi * f * t) * np.exp(-t * math.log(1000) / t60)
            g *= np.minimum(1.0, t / 0.0005)
            g[-n // 10 :] *= np.linspace(1.0, 0.0, len(g[-n // 10 :]))
            pan = pan_gains(-0.6 + 1.2 * k / max(int(p.bars) - 1, 1))
            self._bars.append((g.astype(np.float32), pan))
            energy += float(np.dot(g, g))
        mean_energy = energy / len(self._bars) * 0.5 * float(np.mean(np.square(_STRENGTHS)))
        rate = max(p.strikes_per_s, 0.1)
        self._gain = math.sqrt(10 ** ((NOMINAL_RMS_DB - 4.0) / 10) * fs / (rate * mean_energy))
        self._tail = GrainTail(_SPAN, n)
        self._gust = float(rng.standard_normal())
        self._pole = math.exp(-_SPAN / fs / 5.0)

    def _render_span(self, start: int) -> np.ndarray:
        rng = self.rng
        p = self.params
        self._gust = self._pole * self._gust + math.sqrt(1 - self._pole**2) * float(
            rng.standard_normal()
        )
        # Lognormal with unit mean: strikes bunch in gusts.
        rate = p.strikes_per_s * math.exp(1.2 * self._gust - 0.72)
        count = int(rng.poisson(rate * _SPAN / self.sample_rate))
        for _ in range(count):
            grain, (left, right) = self._bars[int(rng.integers(len(self._bars)))]
            s = _STRENGTHS[int(rng.integers(len(_STRENGTHS)))] * self._gain
            self._tail.add_mono(int(rng.integers(_SPAN)), grain, s * left, s * right)
        out = self._tail.take()
        soft_limit(out)
        return out


chimes = layer_function("chimes")
