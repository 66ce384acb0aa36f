"""Waves on a shore: each swell breaks, washes up the beach and hisses back.

Perceptual model: a wave is heard as a sequence, not a swell of noise: the
break (a broad roar that rises in under a second), the wash running up the
sand in a few surges, and the retreat, a bright fizzing hiss of foam and
draining water that peaks as the roar fades. Waves come every ``swell_s``
seconds give or take a third, each of its own size, and a distant surf
never quite stops. The whole spectrum rises and falls with each wave (real
recordings: cross-band envelope correlation ~0.45) but the hiss lags the
roar, and much of the envelope's movement is slow (0.5-2 Hz: a third).

Implementation: two noise bands (roar, foam), one section each, whose gains
are the sum of the live waves' envelopes on a ~170 Hz control grid; the foam
gain also flickers at random per control step (the fizz).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import BLOCK_SIZE, NOMINAL_RMS_DB, SpanLayer, register_layer, soft_limit
from .dsp import NoiseBed, layer_function

__all__ = ["Waves", "waves"]

_SPAN_BLOCKS = 4
_SPAN = _SPAN_BLOCKS * BLOCK_SIZE
# Time constants of a wave, in seconds: the break's rise, the surges of the
# wash (Hz), and when the foam's hiss peaks after the break.
_RISE_S = 0.35
_SURGE_HZ = 0.9
_FOAM_PEAK_S = 1.8
_FLOOR = 0.12  # distant surf, relative to a wave's peak
_FOAM_SHARE = 0.6  # foam power relative to the roar's at equal envelope


@register_layer("waves")
class Waves(SpanLayer):
    """Waves breaking on a shore: roar, wash and a hissing retreat."""

    description = "Waves on a shore: each breaks, washes up the sand and hisses back."
    span_blocks = _SPAN_BLOCKS
    ranges = {"swell_s": (3.0, 30.0), "size": (0.0, 1.0), "stereo_width": (0.0, 1.0)}

    @dataclass(frozen=True)
    class Params:
        """Waves parameters."""

        swell_s: float = 9.0
        """Mean time between waves, in seconds."""
        size: float = 0.5
        """0 (lapping ripples) .. 1 (heavy surf): how long and bright each wave is."""
        stereo_width: float = 0.7
        """0..1: how far waves break to either side."""

    def __init__(self, **kwargs):
        from scipy import signal  # noqa: PLC0415 - scipy.signal takes ~0.7 s to import; checking a preset must not pay it

        super().__init__(**kwargs)
        p = self.params
        fs = self.sample_rate
        self._hop = 2 ** int(round(math.log2(fs / 170.0)))
        self._dt = self._hop / fs
        top = min(9000.0, 0.45 * fs)
        roar = signal.butter(
            1, [150.0, 1800.0 + 1500.0 * p.size], btype="bandpass", fs=fs, output="sos"
        )
        foam = signal.butter(1, [2500.0, top], btype="bandpass", fs=fs, output="sos")
        self._roar = NoiseBed(roar)
        self._foam = NoiseBed(foam, rms=math.sqrt(_FOAM_SHARE))
        self._wash_s = (0.3 + 0.25 * p.size) * p.swell_s
        self._waves: list[tuple[float, float, float, float]] = []  # start s, size, pan, phase
        self._next_s = float(self.rng.uniform(0.0, 0.5 * p.swell_s))
        # Long-term power: the waves overlap (their gains add), so it is
        # measured on a long run of waves from a fixed generator.
        self._gain = 1.0
        probe = Waves.__new__(Waves)
        probe.__dict__.update(self.__dict__)
        probe.rng = np.random.default_rng(0)
        probe._waves, probe._next_s = [], 0.0
        gains = np.concatenate([probe._envelopes(i * _SPAN) for i in range(600)])
        power = float(np.mean(gains[:, 0] ** 2 + _FOAM_SHARE * gains[:, 2] ** 2))
        self._gain = math.sqrt(10 ** (NOMINAL_RMS_DB / 10) / power)

    def _shapes(self, t: np.ndarray, phase: float) -> tuple[np.ndarray, np.ndarray]:
        """Envelopes of the roar and of the foam ``t`` seconds after a unit wave breaks."""
        t = np.maximum(t, 0.0)
        wash = np.exp(-t / self._wash_s)
        surges = 1.0 + 0.7 * np.sin(2 * np.pi * _SURGE_HZ * t + phase) * (1 - np.exp(-t))
        roar = (1.0 - np.exp(-t / _RISE_S)) * wash * surges
        x = t / _FOAM_PEAK_S
        foam = x * np.exp(1.0 - x) * np.exp(-t / (2 * self._wash_s)) ** 0.5
        return roar, foam

    def _envelopes(self, start: int) -> np.ndarray:
        """Gains (roar L, roar R, foam L, foam R) per control step of the span."""
        p = self.params
        fs = self.sample_rate
        rng = self.rng
        n_steps = _SPAN // self._hop
        t0 = start / fs
        t = t0 + np.arange(n_steps) * self._dt
        end = t0 + _SPAN / fs
        while self._next_s < end:
            size = max(0.4, 1.0 + 0.15 * float(rng.standard_normal()))
            pan = float(rng.uniform(-1, 1)) * p.stereo_width
            self._waves.append((self._next_s, size, pan, float(rng.uniform(0, 2 * np.pi))))
            self._next_s += p.swell_s * float(rng.uniform(0.7, 1.3))
        gains = np.full((n_steps, 4), _FLOOR)
        live = []
        for w_start, size, pan, phase in self._waves:
            if t0 - w_start > 6 * self._wash_s:
                continue
            live.append((w_start, size, pan, phase))
            r, f = self._shapes(t - w_start, phase)
            r = np.where(t >= w_start, r, 0.0) * size
            f = np.where(t >= w_start, f, 0.0) * size
            left = math.sqrt(0.5 * (1 - pan))
            right = math.sqrt(0.5 * (1 + pan))
            gains[:, 0] += r * left * math.sqrt(2)
            gains[:, 1] += r * right * math.sqrt(2)
            gains[:, 2] += f * left * math.sqrt(2)
            gains[:, 3] += f * right * math.sqrt(2)
        self._waves = live
        # The fizz: the foam flickers from step to step.
        gains[:, 2:] *= np.exp(0.2 * rng.standard_normal((n_steps, 2)) - 0.02)
        return (gains * self._gain).astype(np.float32)

    def _render_span(self, start: int) -> np.ndarray:
        rng = self.rng
        hop = self._hop
        out = self._roar.render_stereo(rng, _SPAN)
        foam = self._foam.render_stereo(rng, _SPAN)
        g = self._envelopes(start)
        out *= np.repeat(g[:, :2], hop, axis=0)
        foam *= np.repeat(g[:, 2:], hop, axis=0)
        out += foam
        soft_limit(out)
        return out


waves = layer_function("waves")
