"""A soft swell that paces guided breathing.

Perceptual model: a breathing guide works when the ear can follow it without
attending to it. A sound that swells as the lungs fill, stays put while the
breath is held, and ebbs as they empty is followed effortlessly, the way one
breathes along with someone breathing beside one. Two timbres do that:

* ``"noise"``: band-limited noise around the range of an audible breath
  (a low-passed hush, no hiss), different in each ear so it sounds wide and
  airy rather than like a radio between stations;
* ``"tone"``: a soft sine with a faint octave, for those who find noise
  restless.

The swell follows a raised cosine through each inhale and exhale: it starts
and ends with no slope, so joining a hold never leaves a corner the ear
would hear as a step. A hold keeps the level the breath reached (full after
an inhale, silence after an exhale), and outside exercises the layer is silent.

The phases come as cues, one per phase (action ``"in"``, ``"hold"`` or
``"out"``, ``params = {"duration_s": ...}``); ``breath_cues`` makes them
from a timeline's ``breaths``. The envelope is a function of the absolute
sample index, so the audio does not depend on how it is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# scipy.signal is imported where a layer runs: it takes most of a second to
# load, and reading or checking a preset (batch, studio) needs none of it.
from ...errors import SoundscapeError
from .base import BLOCK_SIZE, NOMINAL_RMS_DB, Cue, Layer, noise_gain, register_layer
from .dsp import layer_function

__all__ = ["BreathLayer", "breath", "breath_cues", "BREATH_LEVEL_DB"]

BREATH_LEVEL_DB = -10.0
"""Level (relative to the voice) of the breath layer added to a preset that does not list it."""

_SOUNDS = ("noise", "tone")
_OCTAVE_LEVEL = 0.25  # of the tone's fundamental: a little body, still soft


@register_layer("breath")
class BreathLayer(Layer["BreathLayer.Params"]):
    """A swell that rises through each inhale, holds, and falls through each exhale."""

    description = (
        "Paces guided breathing: a soft swell that rises on each inhale and falls on each exhale."
    )
    cue_actions = frozenset({"in", "hold", "out"})

    @dataclass(frozen=True)
    class Params:
        sound: str = "noise"
        """``"noise"`` (a soft, breath-like hush) or ``"tone"`` (a gentle sine)."""
        tone_hz: float = 196.0
        """Pitch of the tone, in hertz (196 = G3), when ``sound = "tone"``."""
        cutoff_hz: float = 900.0
        """Upper edge of the noise band, in hertz: lower is darker and softer."""

    ranges = {"tone_hz": (60.0, 1000.0), "cutoff_hz": (200.0, 8000.0)}

    @classmethod
    def check_params(cls, params: BreathLayer.Params) -> None:
        if params.sound not in _SOUNDS:
            raise SoundscapeError(
                f"layer 'breath': sound {params.sound!r} is not one of {', '.join(map(repr, _SOUNDS))}"
            )
        super().check_params(params)

    def __init__(self, **kwargs: Any) -> None:
        from scipy import signal  # noqa: PLC0415 - scipy.signal takes ~0.7 s to import; checking a preset must not pay it

        super().__init__(**kwargs)
        sr = self.sample_rate
        self._spans = self._phases(self.cues)
        target = 10.0 ** (NOMINAL_RMS_DB / 20.0)
        p = self.params
        if p.sound == "noise":
            self._sos = signal.butter(
                2,
                [min(120.0, 0.4 * p.cutoff_hz), min(p.cutoff_hz, 0.45 * sr)],
                btype="bandpass",
                fs=sr,
                output="sos",
            )
            self._scale = target / noise_gain(self._sos)
            self._zi = np.zeros((self._sos.shape[0], 2, 2))
        else:
            # A sine of amplitude a has RMS a/sqrt(2); the octave adds its power.
            self._scale = target * math.sqrt(2.0) / math.sqrt(1.0 + _OCTAVE_LEVEL**2)

    def _phases(self, cues) -> np.ndarray:
        """Phases in samples: (start, end, level at start, level at end); each follows from the one before."""
        sr = self.sample_rate
        spans = []
        level = 0.0
        previous_end = None
        for cue in cues:
            start = int(round(cue.time_s * sr))
            end = int(round((cue.time_s + self.cue_duration_s(cue)) * sr))
            if previous_end != start:
                level = 0.0  # a new exercise starts from empty lungs
            begin, level = level, {"in": 1.0, "out": 0.0}.get(cue.action, level)
            spans.append((start, end, begin, level))
            previous_end = end
        return np.array(spans, dtype=np.float64).reshape(-1, 4)

    def add_cues(self, later) -> bool:
        self._checked_later(later)
        self._spans = self._phases(self.cues)
        return True

    def cue_duration_s(self, cue: Cue) -> float:
        try:
            return float(cue.params["duration_s"])
        except (KeyError, TypeError, ValueError):
            raise SoundscapeError(
                f"breath: a {cue.action!r} cue needs params.duration_s (seconds)"
            ) from None

    def envelope(self, start: int, n: int) -> np.ndarray:
        """The swell's level (0 to 1) for samples [start, start + n)."""
        out = np.zeros(n, dtype=np.float64)
        spans = self._spans
        if not len(spans):
            return out
        first = max(0, int(np.searchsorted(spans[:, 1], start, side="right")))
        for s0, s1, a, b in spans[first:]:
            if s0 >= start + n:
                break
            lo, hi = max(int(s0), start), min(int(s1), start + n)
            if lo >= hi:
                continue
            x = (np.arange(lo, hi, dtype=np.float64) - s0) / max(1.0, s1 - s0)
            shape = 0.5 - 0.5 * np.cos(np.pi * x)  # 0 → 1 with no slope at either end
            out[lo - start : hi - start] = a + (b - a) * shape
        return out

    def _next_block(self) -> np.ndarray:
        from scipy import signal  # noqa: PLC0415 - scipy.signal takes ~0.7 s to import; checking a preset must not pay it

        start = self.block_start
        env = self.envelope(start, BLOCK_SIZE)
        if not env.any():
            return np.zeros((BLOCK_SIZE, 2), dtype=np.float32)
        if self.params.sound == "noise":
            white = self.rng.standard_normal((BLOCK_SIZE, 2))
            source, self._zi = signal.sosfilt(self._sos, white, axis=0, zi=self._zi)
        else:
            t = np.arange(start, start + BLOCK_SIZE, dtype=np.float64) / self.sample_rate
            phase = 2 * np.pi * self.params.tone_hz * t
            mono = np.sin(phase) + _OCTAVE_LEVEL * np.sin(2 * phase)
            source = np.repeat(mono[:, None], 2, axis=1)
        return (source * (env * self._scale)[:, None]).astype(np.float32)


def breath_cues(breaths: Sequence, sample_rate: int) -> list[Cue]:
    """One cue per breathing phase, from a timeline's ``breaths`` (``start``, ``phase``, ``length`` in samples)."""
    return [
        Cue(b.start / sample_rate, b.phase, {"duration_s": b.length / sample_rate}) for b in breaths
    ]


breath = layer_function("breath", takes_cues=True)
