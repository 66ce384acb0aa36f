"""An owl in the night: a tawny owl's hoots, on cue or now and then.

Perceptual model: the tawny owl's call is a long, soft, hollow "hooo", a
pause of a few seconds, then a quavering "hu... hu-hu-hoooo", all near
400 Hz, sliding a little in pitch, breathy and a little hoarse at the
start of each note. Each call here is made anew, with the owl's own pitch
and small differences every time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import BLOCK_SIZE, NOMINAL_RMS_DB, Cue, Layer, register_layer
from .dsp import EventLayerMixin, cue_strength, layer_function, pan_gains

__all__ = ["Owl", "owl"]


@register_layer("owl")
class Owl(EventLayerMixin, Layer):
    """A tawny owl: a hoot, a pause, a quavering hoot."""

    description = "A tawny owl hooting in the distance, on cue or every minute or so."
    cue_actions = frozenset({"hoot"})
    ranges = {"rate_per_min": (0.0, 10.0), "pitch_hz": (250.0, 700.0), "pan": (-1.0, 1.0)}

    @dataclass(frozen=True)
    class Params:
        """Owl parameters."""

        rate_per_min: float = 0.8
        """Calls a minute on its own (0: only on cue)."""
        pitch_hz: float = 420.0
        """Pitch of the hoots."""
        pan: float = -0.4
        """Where the owl sits, -1 (left) .. 1 (right)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._init_events()

    def cue_duration_s(self, cue: Cue) -> float:
        cue_strength(self.name, cue)
        return 6.0

    def _cue_sound(self, cue: Cue, rng: np.random.Generator) -> np.ndarray:
        return self._call(rng, cue_strength(self.name, cue))

    def _call(self, rng: np.random.Generator, strength: float) -> np.ndarray:
        fs = self.sample_rate
        f0 = self.params.pitch_hz * math.exp(rng.uniform(-0.03, 0.03))
        pause = rng.uniform(2.5, 4.0)
        # (start s, length s, pitch ratio at start, at end, level)
        notes = [(0.0, 0.9, 1.0, 0.93, 1.0)]
        t = pause
        for length in (0.18, 0.15, 1.1):
            notes.append((t, length, 0.97, 0.9 if length > 1 else 0.95, 0.8))
            t += length + rng.uniform(0.08, 0.2)
        out = np.zeros(int((t + 0.2) * fs))
        for start, length, r0, r1, level in notes:
            i0 = int(start * fs)
            n = int(length * fs)
            x = np.arange(n) / n
            f = f0 * (r0 + (r1 - r0) * x)
            if length > 1:  # the final note quavers
                f *= 1 + 0.02 * np.sin(2 * np.pi * 7.0 * x * length)
            phase = 2 * np.pi * np.cumsum(f) / fs
            env = np.sin(np.pi * np.minimum(x / 0.3, 1.0) / 2) ** 2 * (1 - x) ** 0.7
            tone = np.sin(phase) + 0.15 * np.sin(2 * phase)
            breath = rng.standard_normal(n) * 0.08 * np.exp(-x * 6)
            out[i0 : i0 + n] += level * env * (tone + breath)
        left, right = pan_gains(self.params.pan)
        gain = 10 ** ((NOMINAL_RMS_DB + 3.0) / 20) * strength / math.sqrt(0.5)
        return (out[:, None] * np.array([left, right]) * gain).astype(np.float32)

    def _next_block(self) -> np.ndarray:
        out = np.zeros((BLOCK_SIZE, 2), dtype=np.float32)
        self._scatter_events(self.params.rate_per_min, self._call, softest=0.6)
        self._mix_events(out, self.block_start)
        np.clip(out, -1.0, 1.0, out=out)
        return out


owl = layer_function("owl", takes_cues=True)
