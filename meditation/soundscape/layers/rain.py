"""Rain: a hiss of distant drops with the near ones heard one by one.

Perceptual model: rain is recognised by many small independent impacts, each
a short noise burst coloured by what it hits (a leaf rings high and short, a
roof lower and fuller, a window glassy and sharp, a tent drums low), over the
steady hiss of drops too far or too many to tell apart. Because the drops
are independent and each one rings in a narrow band, the bands of the sound
rise and fall independently (the band-envelope statistics of real rain:
kurtosis ~0.5-1, cross-band correlation under 0.1); a swell of filtered
noise alone has neither.

Implementation: the hiss is uniform noise through one band-pass section per
ear; drops are grains (a decaying noise burst through a resonance) baked at
a few loudnesses and stereo positions and added at Poisson times (see
``dsp.GrainBank``), so a drop costs one slice add.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...errors import SoundscapeError
from .base import BLOCK_SIZE, NOMINAL_RMS_DB, SpanLayer, register_layer, soft_limit
from .dsp import GrainBank, GrainTail, NoiseBed, decaying_noise, layer_function, resonate

__all__ = ["Rain", "rain", "SURFACES"]

_SPAN_BLOCKS = 4
_SPAN = _SPAN_BLOCKS * BLOCK_SIZE


@dataclass(frozen=True)
class _Surface:
    drop_hz: tuple[float, float]
    """Range of the drops' ringing frequency."""
    q: tuple[float, float]
    decay_ms: tuple[float, float]
    bed_hz: tuple[float, float]
    """Band of the hiss."""
    drop_share: float
    """Share of the power in drops (the rest is hiss)."""


SURFACES = {
    "leaves": _Surface((1500.0, 7000.0), (2.0, 5.0), (1.0, 4.0), (1200.0, 9000.0), 0.38),
    "roof": _Surface((600.0, 4000.0), (1.5, 4.0), (2.0, 7.0), (400.0, 6000.0), 0.5),
    "window": _Surface((2000.0, 8000.0), (4.0, 10.0), (1.0, 3.0), (1500.0, 8000.0), 0.4),
    "tent": _Surface((150.0, 1500.0), (4.0, 8.0), (3.0, 9.0), (300.0, 5000.0), 0.85),
}
_N_GRAINS = 32
# Drop loudnesses: spread over ~16 dB, near drops louder and rarer.
_LOUDNESS = np.exp(np.array([-1.0, -0.4, 0.2, 0.7]))
_LOUDNESS_WEIGHT = np.array([0.4, 0.3, 0.2, 0.1])


@register_layer("rain")
class Rain(SpanLayer):
    """Rain on a surface: independent drops over a hiss."""

    description = "Rain from drizzle to downpour, on leaves, a roof, a window or a tent."
    span_blocks = _SPAN_BLOCKS
    ranges = {"intensity": (0.0, 1.0), "stereo_width": (0.0, 1.0)}

    @dataclass(frozen=True)
    class Params:
        """Rain parameters."""

        intensity: float = 0.5
        """0 (drizzle, ~40 drops a second heard) .. 1 (downpour, ~500 and a loud hiss)."""
        surface: str = "leaves"
        """What the drops hit: leaves, roof, window or tent."""
        stereo_width: float = 1.0
        """0..1: how widely drops spread across the field."""

    @classmethod
    def check_params(cls, params: Rain.Params) -> None:
        super().check_params(params)
        if params.surface not in SURFACES:
            raise SoundscapeError(
                f"layer 'rain': surface {params.surface!r} is not one of {', '.join(SURFACES)}"
            )

    def __init__(self, **kwargs):
        from scipy import signal  # noqa: PLC0415 - scipy.signal takes ~0.7 s to import; checking a preset must not pay it

        super().__init__(**kwargs)
        p = self.params
        fs = self.sample_rate
        s = SURFACES[p.surface]
        rng = self.rng
        # More rain: more drops, and more of the sound in the hiss of drops
        # too many to tell apart.
        self._rate = 40.0 * (500.0 / 40.0) ** p.intensity
        drop_share = s.drop_share * (1.0 - 0.35 * p.intensity)
        total = 10 ** (NOMINAL_RMS_DB / 10)

        hi = min(s.bed_hz[1], 0.45 * fs)
        sos = signal.butter(1, [s.bed_hz[0], hi], btype="bandpass", fs=fs, output="sos")
        self._bed = NoiseBed(sos, rms=math.sqrt(total * (1.0 - drop_share)))

        top = 0.42 * fs
        grains = []
        for _ in range(_N_GRAINS):
            f = math.exp(rng.uniform(math.log(s.drop_hz[0]), math.log(min(s.drop_hz[1], top))))
            decay = rng.uniform(*s.decay_ms) * 1e-3
            n = int(6 * decay * fs) + 16
            g = resonate(decaying_noise(rng, n, decay, fs), f, rng.uniform(*s.q), fs)
            g[-n // 8 :] *= np.linspace(1.0, 0.0, n // 8 + (n % 8 > 0))[: len(g[-n // 8 :])]
            grains.append((g / math.sqrt(float(np.dot(g, g)))).astype(np.float32))
        # Every grain has unit energy: scale so the drops carry their share.
        loud_ms = float(np.sum(_LOUDNESS_WEIGHT * _LOUDNESS**2))
        scale = math.sqrt(total * drop_share * fs / (self._rate * loud_ms * 0.5))
        levels = []
        weights = []
        for level, w in zip(_LOUDNESS, _LOUDNESS_WEIGHT, strict=True):
            levels.append(level * scale)
            weights.append(w)
        pans = np.linspace(-1.0, 1.0, 7) * p.stereo_width
        # One bank per loudness, chosen by its weight.
        self._banks = [GrainBank(grains, loudness=(lv,), pans=pans) for lv in levels]
        self._bank_weights = np.array(weights) / np.sum(weights)
        self._tail = GrainTail(_SPAN, self._banks[0].longest)

    def _render_span(self, start: int) -> np.ndarray:
        out = self._bed.render_stereo(self.rng, _SPAN)
        counts = self.rng.poisson(self._rate * _SPAN / self.sample_rate * self._bank_weights)
        for bank, count in zip(self._banks, counts.tolist(), strict=True):
            bank.scatter(self._tail, self.rng, count, _SPAN)
        out += self._tail.take()
        soft_limit(out)
        return out


rain = layer_function("rain")
