"""Frogs at a pond: a few croakers calling on and off, and a chorus on cue.

Perceptual model: a frog's croak is a train of glottal pulses (80-250 a
second) ringing the frog's vocal sac and mouth (a resonance of 400-2000
Hz), a tenth to a third of a second long, often doubled ("rib-bit"). Each
frog has its own pulse rate and resonance and calls at its own irregular
pace; at a pond several overlap, and now and then they all join in a
chorus for a few seconds (the ``chorus`` cue).

Implementation: each frog's croak is made once per frog from a pulse train
convolved with a short damped resonance (two variants: single and double),
and added at its jittered pace with slight level changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...errors import SoundscapeError
from .base import BLOCK_SIZE, NOMINAL_RMS_DB, Cue, Layer, check_range, register_layer
from .dsp import EventLayerMixin, cue_strength, layer_function, pan_gains

__all__ = ["Frogs", "frogs"]


@dataclass
class _Frog:
    croaks: list[np.ndarray]
    period_s: float
    left: float
    right: float
    next_s: float


@register_layer("frogs")
class Frogs(EventLayerMixin, Layer):
    """A pond's frogs: croaks on and off, and a chorus on cue."""

    description = "Frogs at a pond: a few croakers on and off, all joining in on cue."
    cue_actions = frozenset({"chorus"})
    ranges = {"frogs": (0, 12), "activity": (0.0, 4.0)}

    @dataclass(frozen=True)
    class Params:
        """Frogs parameters."""

        frogs: int = 4
        """How many frogs call."""
        activity: float = 1.0
        """Croaks come this many times more often than a typical frog's (0: only the chorus cue)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._init_events()
        rng = self.rng
        fs = self.sample_rate
        self._frogs = []
        power = 0.0
        for _ in range(max(int(self.params.frogs), 1)):
            pulse_hz = rng.uniform(80.0, 250.0)
            res_hz = min(rng.uniform(400.0, 2000.0), 0.4 * fs)
            kernel_t = np.arange(int(0.012 * fs)) / fs
            kernel = np.sin(2 * np.pi * res_hz * kernel_t) * np.exp(-kernel_t * res_hz / 6)
            croaks = []
            for double in (False, True):
                length = rng.uniform(0.1, 0.3)
                n = int(length * fs)
                train = np.zeros(n)
                train[(np.arange(0, length, 1 / pulse_hz) * fs).astype(int)] = 1.0
                if double:
                    gap = int(rng.uniform(0.08, 0.15) * fs)
                    train = np.concatenate([train, np.zeros(gap), train[: n * 2 // 3]])
                x = np.arange(len(train)) / len(train)
                train *= np.sin(np.pi * x) ** 0.5
                croak = np.convolve(train, kernel)
                croaks.append((croak / np.sqrt(np.mean(croak**2))).astype(np.float32))
            period = rng.uniform(2.0, 6.0)
            left, right = pan_gains(rng.uniform(-0.8, 0.8))
            level = math.exp(rng.uniform(-0.8, 0.0))
            self._frogs.append(
                _Frog(
                    [c * np.float32(level) for c in croaks],
                    period,
                    left,
                    right,
                    rng.uniform(0.0, period),
                )
            )
            power += level**2 * float(np.mean([len(c) for c in croaks])) / fs / period * 0.5
        activity = max(self.params.activity, 1e-9)
        # Croaks are sparse and peaky: the long-term level sits 10 dB under
        # nominal so that a single croak peaks well under full scale.
        self._gain = math.sqrt(10 ** ((NOMINAL_RMS_DB - 10.0) / 10) / (power * activity))
        self._longest = max(len(c) for f in self._frogs for c in f.croaks)

    def _duration_s(self, cue: Cue) -> float:
        value = cue.params.get("duration_s", 6.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SoundscapeError(
                f"layer 'frogs': cue {cue.action!r}: duration_s must be a number, not {value!r}"
            )
        check_range(f"layer 'frogs': cue {cue.action!r}: duration_s", value, 0.5, 60.0)
        return float(value)

    def _check_cue(self, cue: Cue) -> None:
        cue_strength(self.name, cue, ("strength", "duration_s"))
        self._duration_s(cue)

    def cue_duration_s(self, cue: Cue) -> float:
        cue_strength(self.name, cue, ("strength", "duration_s"))
        return self._duration_s(cue)

    def _cue_sound(self, cue: Cue, rng: np.random.Generator) -> np.ndarray:
        """A chorus: every frog croaking fast for ``duration_s``."""
        strength = cue_strength(self.name, cue, ("strength", "duration_s"))
        fs = self.sample_rate
        length = self._duration_s(cue)
        out = np.zeros((int(length * fs) + self._longest, 2), dtype=np.float32)
        for frog in self._frogs:
            t = 0.0 if frog is self._frogs[0] else float(rng.uniform(0.0, 0.5))
            while t < length:
                croak = frog.croaks[int(rng.integers(2))] * np.float32(0.4 * self._gain * strength)
                i = int(t * fs)
                out[i : i + len(croak), 0] += frog.left * croak
                out[i : i + len(croak), 1] += frog.right * croak
                t += frog.period_s * float(rng.uniform(0.1, 0.3))
        return np.clip(out, -1.0, 1.0)

    def _next_block(self) -> np.ndarray:
        out = np.zeros((BLOCK_SIZE, 2), dtype=np.float32)
        fs = self.sample_rate
        activity = self.params.activity
        if activity > 0:
            end_s = (self.block_start + BLOCK_SIZE) / fs
            for frog in self._frogs:
                while frog.next_s < end_s:
                    at = round(frog.next_s * fs)
                    k = int(self.rng.integers(2))
                    loud = self._gain * math.exp(0.2 * float(self.rng.standard_normal()))
                    croak = frog.croaks[k] * np.float32(loud)
                    self._events.append(
                        (at, np.outer(croak, [frog.left, frog.right]).astype(np.float32))
                    )
                    frog.next_s += frog.period_s / activity * float(self.rng.uniform(0.4, 1.6))
        self._mix_events(out, self.block_start)
        np.clip(out, -1.0, 1.0, out=out)
        return out


frogs = layer_function("frogs", takes_cues=True)
