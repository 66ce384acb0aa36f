"""Wind in trees: the rustle of many leaves, busier in the gusts, over a soft low sigh.

Perceptual model: what we hear of wind in a wood is the leaves, thousands of
tiny independent flutters, each a brief noise burst in its own band; a gust
makes more of them rather than making one sound louder. So, unlike the bare
wind, the bands hardly move together (real recordings: cross-band envelope
correlation ~0.05), and the gusts show as a change in density.

Implementation: leaf flutters are grains from a bank (``dsp.GrainBank``)
scattered at a Poisson rate that follows a slow random gust (one value per
span, an AR(1) process); under them a quiet low band of moving air.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import BLOCK_SIZE, NOMINAL_RMS_DB, SpanLayer, register_layer, soft_limit
from .dsp import GrainBank, GrainTail, NoiseBed, decaying_noise, layer_function, resonate

__all__ = ["Trees", "trees"]

_SPAN_BLOCKS = 4
_SPAN = _SPAN_BLOCKS * BLOCK_SIZE
_N_GRAINS = 40
_LEAF_SHARE = 0.75
_LOUDNESS = (0.5, 0.8, 1.3)


@register_layer("trees")
class Trees(SpanLayer):
    """Wind in leafy trees: a dense, gusting rustle of independent leaves."""

    description = "Wind in leafy trees: a rustle that thickens and thins with the gusts."
    span_blocks = _SPAN_BLOCKS
    ranges = {"gustiness": (0.0, 1.0), "density": (0.0, 1.0), "gust_s": (1.0, 60.0)}

    @dataclass(frozen=True)
    class Params:
        """Trees parameters."""

        density: float = 0.15
        """0..1: how many leaves flutter (about 150 to 1500 a second)."""
        gustiness: float = 0.35
        """0..1: how much the gusts thicken and thin the rustle."""
        gust_s: float = 6.0
        """Typical length of a gust, in seconds."""

    def __init__(self, **kwargs):
        from scipy import signal  # noqa: PLC0415 - scipy.signal takes ~0.7 s to import; checking a preset must not pay it

        super().__init__(**kwargs)
        p = self.params
        fs = self.sample_rate
        rng = self.rng
        total = 10 ** (NOMINAL_RMS_DB / 10)
        self._rate = 150.0 * 10**p.density
        sos = signal.butter(1, [80.0, 500.0], btype="bandpass", fs=fs, output="sos")
        self._bed = NoiseBed(sos, rms=math.sqrt(total * (1 - _LEAF_SHARE)))
        grains = []
        for _ in range(_N_GRAINS):
            f = math.exp(rng.uniform(math.log(900.0), math.log(min(7000.0, 0.4 * fs))))
            decay = rng.uniform(0.002, 0.012)
            n = int(5 * decay * fs) + 16
            g = resonate(decaying_noise(rng, n, decay, fs, attack_s=0.002), f, 5.0, fs)
            g *= np.hanning(2 * n)[n:] ** 0.5
            grains.append((g / math.sqrt(float(np.dot(g, g)))).astype(np.float32))
        loud_ms = float(np.mean(np.square(_LOUDNESS)))
        scale = math.sqrt(total * _LEAF_SHARE * fs / (self._rate * loud_ms * 0.5))
        self._bank = GrainBank(
            grains, loudness=[scale * v for v in _LOUDNESS], pans=np.linspace(-1, 1, 7)
        )
        self._tail = GrainTail(_SPAN, self._bank.longest)
        self._pole = math.exp(-_SPAN / fs / p.gust_s)
        self._gust = float(rng.standard_normal())
        # Density swings by up to ~x3 each way at gustiness 1; the mean of the
        # lognormal factor is divided out so the long-term level stays put.
        self._depth = 1.1 * p.gustiness
        self._bias = math.exp(-0.5 * self._depth**2)

    def _render_span(self, start: int) -> np.ndarray:
        rng = self.rng
        out = self._bed.render_stereo(rng, _SPAN)
        self._gust = self._pole * self._gust + math.sqrt(1 - self._pole**2) * float(
            rng.standard_normal()
        )
        rate = self._rate * self._bias * math.exp(self._depth * self._gust)
        self._bank.scatter(
            self._tail, rng, int(rng.poisson(rate * _SPAN / self.sample_rate)), _SPAN
        )
        out += self._tail.take()
        soft_limit(out)
        return out


trees = layer_function("trees")
