"""Thunder: distant rolls, now and then, or where a cue puts one.

Perceptual model: thunder heard from afar is a low rumble (the sharp crack
is lost to distance: air absorbs the highs) that rolls — several swells
as sound arrives from different parts of the lightning channel — over five
to fifteen seconds. Nearer thunder keeps more of its highs and starts with a
crack. Each roll here is made anew: brownish noise, darker with distance,
under an envelope of a few overlapping swells of random onset, size and
length.

Rolls come as cues (``roll``) and, if ``rate_per_min`` is above zero, on
their own at random.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import BLOCK_SIZE, NOMINAL_RMS_DB, Cue, Layer, register_layer
from .dsp import EventLayerMixin, cue_strength, int16_noise, layer_function

__all__ = ["Thunder", "thunder"]


_ENV_HOP = 32
"""Samples between the points of a roll's envelope."""


@register_layer("thunder")
class Thunder(EventLayerMixin, Layer):
    """Distant thunder: seeded rolls, on cue or now and then."""

    description = "Distant thunder: low rolling rumbles, on cue or every few minutes."
    cue_actions = frozenset({"roll"})
    ranges = {"rate_per_min": (0.0, 10.0), "distance": (0.0, 1.0), "roll_s": (2.0, 30.0)}

    @dataclass(frozen=True)
    class Params:
        """Thunder parameters."""

        rate_per_min: float = 0.5
        """Rolls a minute on their own (0: only on cue)."""
        distance: float = 0.6
        """0 (near: a crack and bright rumble) .. 1 (far: a low, soft roll)."""
        roll_s: float = 9.0
        """Typical length of a roll, in seconds."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._init_events()

    def cue_duration_s(self, cue: Cue) -> float:
        cue_strength(self.name, cue)
        return 1.6 * self.params.roll_s

    def _cue_sound(self, cue: Cue, rng: np.random.Generator) -> np.ndarray:
        return self._roll(rng, cue_strength(self.name, cue))

    def _roll(self, rng: np.random.Generator, strength: float) -> np.ndarray:
        from scipy import signal  # noqa: PLC0415 - scipy.signal takes ~0.7 s to import; checking a preset must not pay it

        p = self.params
        fs = self.sample_rate
        length_s = p.roll_s * math.exp(rng.uniform(-0.3, 0.3))
        n = int(1.6 * length_s * fs)
        # The envelope is smooth (rises of 50 ms and more): made on a grid of
        # _ENV_HOP samples and drawn in straight lines between its points.
        rows = -(-n // _ENV_HOP)
        t = np.arange(rows + 1) * (_ENV_HOP / fs)
        env = np.zeros(rows + 1)
        for i in range(int(rng.integers(3, 8))):
            at = rng.uniform(0.0, 0.6 * length_s) if i else 0.0  # a roll starts at its cue
            rise = rng.uniform(0.05, 0.4)
            fall = rng.uniform(0.4, max(0.5, 0.25 * length_s))
            x = np.maximum(t - at, 0.0)
            env += rng.uniform(0.3, 1.0) * (1 - np.exp(-x / rise)) * np.exp(-x / fall)
        env /= env.max()
        cutoff = 450.0 * (1.0 - p.distance) + 110.0
        # One cascade in float32 sections: a roll is long, and made while the track plays.
        sos = np.vstack(
            [
                signal.butter(2, cutoff, fs=fs, output="sos"),
                signal.butter(1, 25.0, "highpass", fs=fs, output="sos"),
            ]
        ).astype(np.float32)
        y = signal.sosfilt(sos, int16_noise(rng, (2, n)))
        # Rolls peak ~4 dB (RMS) over the nominal layer level: thunder is an event.
        gain = 10 ** ((NOMINAL_RMS_DB + 4.0) / 20) * strength
        rms = math.sqrt(float(np.mean(np.square(y, dtype=np.float64))))
        env *= gain / rms
        frac = np.arange(_ENV_HOP, dtype=np.float32) / np.float32(_ENV_HOP)
        env32 = env.astype(np.float32)
        line = (env32[:-1, None] + (env32[1:] - env32[:-1])[:, None] * frac).reshape(-1)[:n]
        fade = min(n, int(0.5 * fs))
        line[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
        out = np.empty((n, 2), dtype=np.float32)
        out[:, 0] = y[0] * line
        out[:, 1] = y[1] * line
        if p.distance < 0.5:  # near enough to hear the crack
            k = min(int(0.15 * fs), n - fade)
            crack = rng.standard_normal((k, 2)) * np.exp(-np.arange(k) / (0.03 * fs))[:, None]
            out[:k] += (0.5 - p.distance) * 4 * gain * crack
        np.clip(out, -1.0, 1.0, out=out)
        return out

    def _next_block(self) -> np.ndarray:
        out = np.zeros((BLOCK_SIZE, 2), dtype=np.float32)
        self._scatter_events(self.params.rate_per_min, self._roll, softest=0.5)
        self._mix_events(out, self.block_start)
        np.clip(out, -1.0, 1.0, out=out)
        return out


thunder = layer_function("thunder", takes_cues=True)
