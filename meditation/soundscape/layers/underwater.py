"""Underwater: a muffled rumble that swells slowly, and now and then a few bubbles rising.

Perceptual model: under water the ear loses the highs (the sound is carried
by the water and the bones of the head, not the air in the ear canal), so
what is left is a dark, close rumble; it seems to breathe as the pressure
of the water above rises and falls, slowly and never quite regularly. Now
and then a bubble or a short string of them rises past: each a little
rising whistle (a bubble rings at its Minnaert frequency, which climbs as it
rises and shrinks, van den Doel 2005), ringing for a few milliseconds.

Implementation: low-passed noise (``dsp.NoiseBed``) under a gain that
follows a smooth random swell, two cascaded AR(1) steps a span, interpolated
across each span; bubbles are grains from a bank scattered in clusters at a
Poisson rate into a tail that carries across spans.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import BLOCK_SIZE, NOMINAL_RMS_DB, SpanLayer, register_layer, soft_limit
from .dsp import GrainBank, GrainTail, NoiseBed, layer_function

__all__ = ["Underwater", "underwater"]

_SPAN_BLOCKS = 2
_SPAN = _SPAN_BLOCKS * BLOCK_SIZE
_N_BUBBLES = 16
_MOST_IN_A_STRING = 6
_STRING_GAP_S = (0.04, 0.2)  # between bubbles of one string
_BUBBLE_PEAK = 6.0  # a bubble's peak over the rumble's RMS: heard, not startling
_BUBBLE_HZ = (250.0, 1200.0)  # Minnaert frequencies of bubbles of about 3 to 13 mm


def bubble(f0: float, sample_rate: int) -> np.ndarray:
    """One bubble ringing at ``f0`` Hz and rising: a unit-peak decaying chirp, float64."""
    # Half van den Doel's damping of a free bubble (1/s): a string is heard as separate
    # "blups" through the rumble, not as clicks.
    decay = 0.5 * (0.13 * f0 + 0.0072 * f0**1.5)
    n = int(6.0 / decay * sample_rate) + 16
    t = np.arange(n) / sample_rate
    rise = 0.1 * decay  # the pitch climbs as the bubble nears the surface
    phase = 2 * np.pi * f0 * (t + 0.5 * rise * t * t)
    attack = np.minimum(1.0, t / 0.001)
    return np.sin(phase) * np.exp(-decay * t) * attack


@register_layer("underwater")
class Underwater(SpanLayer):
    """Under water: a dark rumble that swells slowly, with an occasional string of bubbles."""

    description = "Under water: a muffled rumble swelling slowly, and now and then bubbles rising."
    span_blocks = _SPAN_BLOCKS
    ranges = {
        "muffle_hz": (80.0, 1000.0),
        "swell": (0.0, 1.0),
        "swell_s": (2.0, 60.0),
        "bubbles_per_min": (0.0, 60.0),
    }

    @dataclass(frozen=True)
    class Params:
        """Underwater parameters."""

        muffle_hz: float = 320.0
        """Where the rumble's highs are cut, in Hz: lower is deeper and more muffled."""
        swell: float = 0.5
        """0..1: how much the rumble rises and falls with the pressure (0: steady)."""
        swell_s: float = 10.0
        """Typical time of a rise and fall of the swell, in seconds (never exactly periodic)."""
        bubbles_per_min: float = 6.0
        """How often a bubble or a short string of bubbles rises past, per minute (0: none)."""

    def __init__(self, **kwargs):
        from scipy import signal  # noqa: PLC0415 - scipy.signal takes ~0.7 s to import; checking a preset must not pay it

        super().__init__(**kwargs)
        p = self.params
        fs = self.sample_rate
        rng = self.rng
        rms = math.sqrt(10 ** (NOMINAL_RMS_DB / 10))
        top = min(p.muffle_hz, 0.4 * fs)
        sos = signal.butter(2, [25.0, top], btype="bandpass", fs=fs, output="sos")
        self._bed = NoiseBed(sos, rms=rms)
        # The swell: unit-variance smooth noise, one step a span: two one-pole smoothers in
        # cascade (impulse response (1-a)^2 (n+1) a^n, power (1-a)^4 (1+a^2) / (1-a^2)^3).
        a = math.exp(-_SPAN / fs / (p.swell_s / 4))
        self._pole = a
        self._drive = math.sqrt((1 - a * a) ** 3 / (1 + a * a)) / (1 - a) ** 2
        level = float(rng.standard_normal())
        self._state = (level, level)
        self._depth = 0.8 * p.swell
        # exp(d x) of unit-normal x has mean power exp(2 d^2): divided out, the level stays put.
        self._bias = math.exp(-(self._depth**2))
        self._gain = self._swell_gain()
        grains = []
        for _ in range(_N_BUBBLES):
            f0 = math.exp(rng.uniform(*np.log(_BUBBLE_HZ)))
            grains.append(bubble(min(f0, 0.3 * fs), fs).astype(np.float32))
        self._bank = GrainBank(grains, loudness=[_BUBBLE_PEAK * rms * v for v in (0.4, 0.7, 1.0)])
        self._rate = p.bubbles_per_min / 60.0
        self._gap = (int(_STRING_GAP_S[0] * fs), int(_STRING_GAP_S[1] * fs))
        spread = (_MOST_IN_A_STRING - 1) * self._gap[1]
        self._tail = GrainTail(_SPAN, self._bank.longest + spread)

    def _swell_gain(self) -> float:
        a = self._pole
        first, second = self._state
        first = a * first + (1 - a) * self._drive * float(self.rng.standard_normal())
        second = a * second + (1 - a) * first
        self._state = (first, second)
        return self._bias * math.exp(self._depth * second)

    def _bubbles(self) -> None:
        rng = self.rng
        bank = self._bank.variants
        for _ in range(int(rng.poisson(self._rate * _SPAN / self.sample_rate))):
            offset = int(rng.integers(0, _SPAN))
            for _ in range(min(_MOST_IN_A_STRING, 1 + int(rng.poisson(1.5)))):
                kind = bank[int(rng.integers(0, len(bank)))]
                self._tail.add(offset, kind[int(rng.integers(0, len(kind)))])
                offset += int(rng.integers(*self._gap))

    def _render_span(self, start: int) -> np.ndarray:
        out = self._bed.render(self.rng, _SPAN).T.copy()
        before, self._gain = self._gain, self._swell_gain()
        ramp = np.linspace(before, self._gain, _SPAN, endpoint=False, dtype=np.float32)
        out *= ramp[:, None]
        self._bubbles()
        out += self._tail.take()
        soft_limit(out)
        return out


underwater = layer_function("underwater")
