"""Crickets and night insects: several singers, each with its own pitch and rhythm.

Perceptual model: a field cricket sings by rubbing a file on its wing, so its
song is a pure-ish tone (3-7 kHz) cut into pulses some 20-60 a second, the
pulses grouped into chirps of a few, repeated about once a second; others
trill, pulsing for seconds on end. A summer night is several of them at
once, each at its own pitch, pulse rate and tempo, and none in step with
another. Heard through band envelopes, that is fast modulation (32-128 Hz
holds over half the power) in bands that do not move together.

Implementation: each singer's chirp (or trill) is made once as a grain and
added at its own jittered tempo (``dsp.GrainTail``), with a distance (level)
and a place in the field; a faint high hiss is the insects too far to tell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import BLOCK_SIZE, NOMINAL_RMS_DB, SpanLayer, register_layer, soft_limit
from .dsp import GrainBank, GrainTail, layer_function, pan_gains

__all__ = ["Crickets", "crickets"]

_SPAN_BLOCKS = 4
_SPAN = _SPAN_BLOCKS * BLOCK_SIZE
# Insects too far to tell apart: pips, this share of the power, this many a second.
_CHORUS_SHARE = 0.2
_CHORUS_RATE_HZ = 350.0


@dataclass
class _Singer:
    grain: np.ndarray
    period_s: float
    left: float
    right: float
    next_s: float


@register_layer("crickets")
class Crickets(SpanLayer):
    """A chorus of crickets: pulsed tones at several pitches and tempos."""

    description = "Crickets on a summer night: several singers, each with its own chirp."
    span_blocks = _SPAN_BLOCKS
    ranges = {"singers": (1, 16), "tempo": (0.25, 4.0)}

    @dataclass(frozen=True)
    class Params:
        """Crickets parameters."""

        singers: int = 7
        """How many crickets sing."""
        tempo: float = 1.0
        """Chirps come this many times faster than a typical cricket's (warm nights are faster)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        p = self.params
        fs = self.sample_rate
        rng = self.rng
        top = 0.42 * fs
        self._singers = []
        powers = []
        for i in range(int(p.singers)):
            carrier = min(rng.uniform(3200.0, 6500.0), top)
            pulse_hz = rng.uniform(25.0, 60.0)
            trill = i % 3 == 2
            pulses = int(rng.integers(25, 80)) if trill else int(rng.integers(3, 7))
            duty = rng.uniform(0.35, 0.6)
            period = pulses / pulse_hz * rng.uniform(1.6, 3.0) if trill else rng.uniform(0.5, 1.4)
            length = int(pulses * fs / pulse_hz)
            t = np.arange(length) / fs
            phase = (t * pulse_hz) % 1.0
            env = np.where(phase < duty, np.sin(np.pi * phase / duty) ** 2, 0.0)
            # Each pulse glides down a little (~2 %), as the file's teeth slow.
            tone = np.sin(2 * np.pi * carrier * (t - 0.01 * phase * phase / pulse_hz))
            grain = (env * tone).astype(np.float32)
            level = math.exp(rng.uniform(-1.0, 0.3))  # near and far singers
            left, right = pan_gains(rng.uniform(-0.9, 0.9))
            period /= p.tempo
            self._singers.append(
                _Singer(grain * level, period, left, right, rng.uniform(0.0, period))
            )
            powers.append(float(np.dot(grain, grain)) * level**2 / fs / period * 0.5)
        total = 10 ** (NOMINAL_RMS_DB / 10)
        self._gain = math.sqrt(total * (1 - _CHORUS_SHARE) / sum(powers))
        for s in self._singers:
            s.grain = s.grain * np.float32(self._gain)
        # The distant chorus: short pips all over the spectrum, independent.
        pips = []
        for _ in range(48):
            f = math.exp(rng.uniform(math.log(60.0), math.log(min(7000.0, top))))
            n = int(rng.uniform(0.004, 0.01) * fs)
            t = np.arange(n) / fs
            g = np.sin(np.pi * np.arange(n) / n) ** 2 * np.sin(2 * np.pi * f * t)
            pips.append((g / math.sqrt(float(np.dot(g, g)))).astype(np.float32))
        scale = math.sqrt(total * _CHORUS_SHARE * fs / (_CHORUS_RATE_HZ * 0.5))
        self._chorus = GrainBank(pips, loudness=(scale,), pans=np.linspace(-1, 1, 7))
        longest = max(max(len(s.grain) for s in self._singers), self._chorus.longest)
        self._tail = GrainTail(_SPAN, longest)

    def _render_span(self, start: int) -> np.ndarray:
        fs = self.sample_rate
        rng = self.rng
        end_s = (start + _SPAN) / fs
        for s in self._singers:
            while s.next_s < end_s:
                offset = max(0, round(s.next_s * fs) - start)
                jitter = math.exp(0.15 * float(rng.standard_normal()))
                self._tail.add_mono(offset, s.grain, s.left * jitter, s.right * jitter)
                s.next_s += s.period_s * float(rng.uniform(0.85, 1.15))
        self._chorus.scatter(self._tail, rng, int(rng.poisson(_CHORUS_RATE_HZ * _SPAN / fs)), _SPAN)
        out = self._tail.take()
        soft_limit(out)
        return out


crickets = layer_function("crickets")
