"""Binaural, monaural and isochronic beats that follow the story's scenes.

Three ways to present a slow beat under the narration:

* **binaural**: a pure carrier in each ear, the left ``beat_hz / 2`` below it
  and the right as far above, so no beat exists in the air -- the listener's
  hearing forms it. It needs headphones; over speakers it is a soft chord.
* **monaural**: the same two tones summed in both ears, so the beat is in the
  sound itself (works on speakers).
* **isochronic**: one carrier switched on and off ``beat_hz`` times a second.
  The gate opens and closes with raised-cosine ramps, never a step, so it
  pulses without clicking.

Carrier and beat frequency change per scene (``[layers.beats.scenes]``,
gliding over the scene's crossfade) or at any cue (``action = "glide"``). A
glide runs along a raised cosine in log-frequency, so it is monotone and
starts and ends without a kink. Oscillators integrate their instantaneous
frequency sample by sample (phase carried from block to block), so a glide
never makes the phase jump.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import SoundscapeError
from .base import BLOCK_SIZE, NOMINAL_RMS_DB, Cue, Layer, check_range, register_layer
from .dsp import layer_function

__all__ = ["Beats", "beats", "MODES"]

MODES = ("binaural", "monaural", "isochronic")

_CARRIER_RANGE_HZ = (40.0, 1000.0)
_BEAT_RANGE_HZ = (0.5, 40.0)
_DEFAULT_GLIDE_S = 10.0


@register_layer("beats")
class Beats(Layer["Beats.Params"]):
    """Pure-tone beats (binaural, monaural or isochronic) whose frequencies glide with the scenes."""

    description = (
        "Binaural, monaural or isochronic beats; carrier and beat glide from scene to scene."
    )
    cue_actions = frozenset({"scene", "glide"})
    follows_scenes = True
    """The planner sends this layer a ``scene`` cue at every scene start (name and crossfade)."""

    @dataclass(frozen=True)
    class Params:
        mode: str = "binaural"
        """``binaural`` (headphones), ``monaural`` or ``isochronic``."""
        carrier_hz: float = 200.0
        """Pitch of the tone(s), in hertz (binaural: the mean of the two ears)."""
        beat_hz: float = 10.0
        """Beat frequency in hertz: the ear difference, or the isochronic gate rate."""
        duty: float = 0.5
        """Isochronic: fraction of each beat cycle the tone is on (ramps included)."""
        ramp: float = 0.4
        """Isochronic: fraction of the on-time spent in each raised-cosine ramp (0.05..0.5)."""
        scenes: Mapping[str, Any] = field(default_factory=dict)
        """Per scene (heading, case-insensitive; ``default`` for the others): ``{carrier_hz, beat_hz}``."""

    ranges = {
        "carrier_hz": _CARRIER_RANGE_HZ,
        "beat_hz": _BEAT_RANGE_HZ,
        "duty": (0.1, 0.9),
        "ramp": (0.05, 0.5),
    }

    @classmethod
    def check_params(cls, params: Beats.Params) -> None:
        p = params
        if p.mode not in MODES:
            raise SoundscapeError(f"beats: mode {p.mode!r} is not one of {', '.join(MODES)}")
        super().check_params(params)  # carrier_hz, beat_hz, duty, ramp: see ``ranges``
        if not isinstance(p.scenes, Mapping):
            raise SoundscapeError(
                "beats: scenes must be a table of scene = { carrier_hz, beat_hz }"
            )
        for scene, values in p.scenes.items():
            if not isinstance(values, Mapping):
                raise SoundscapeError(
                    f"beats: scenes.{scene} must be a table like {{ beat_hz = 6.0 }}"
                )
            _check_freqs(f"layer 'beats': scenes.{scene}", values)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        p = self.params
        sr = self.sample_rate
        if p.carrier_hz + p.beat_hz > 0.45 * sr:
            raise SoundscapeError(f"beats: carrier_hz {p.carrier_hz} is too high for {sr} Hz audio")
        self._scene_targets = {str(k).lower(): dict(v) for k, v in p.scenes.items()}
        self._pieces = self._schedule(self.cues)
        # Phases in cycles, carried from block to block: [left/lower, right/upper, gate].
        self._phase = np.array([self.rng.uniform(), self.rng.uniform(), 0.0])
        if p.mode == "isochronic":
            self._amp = (
                math.sqrt(2.0)
                * 10 ** (NOMINAL_RMS_DB / 20)
                / math.sqrt(_gate_mean_square(p.duty, p.ramp))
            )
        elif p.mode == "monaural":
            self._amp = 2.0 * 10 ** (NOMINAL_RMS_DB / 20)  # two tones of half this amplitude each
        else:
            self._amp = math.sqrt(2.0) * 10 ** (NOMINAL_RMS_DB / 20)

    # -- the frequency schedule -------------------------------------------------

    def _target(self, cue: Cue) -> tuple[dict, float]:
        """What a cue asks for: (frequencies to glide to, glide time in seconds)."""
        if cue.action == "scene":
            name = str(cue.params.get("scene", "")).lower()
            values = self._scene_targets.get(name, self._scene_targets.get("default", {}))
            glide = float(cue.params.get("fade_s", _DEFAULT_GLIDE_S))
        else:
            values = {k: v for k, v in cue.params.items() if k != "glide_s"}
            unknown = set(values) - {"carrier_hz", "beat_hz"}
            if unknown:
                raise SoundscapeError(
                    f"beats: a glide cue takes carrier_hz, beat_hz, glide_s (not {', '.join(sorted(unknown))})"
                )
            _check_freqs("beats: glide cue", values)
            glide = float(cue.params.get("glide_s", _DEFAULT_GLIDE_S))
            if not 0.0 <= glide <= 3600.0:
                raise SoundscapeError(f"beats: glide_s {glide} is out of range (0..3600)")
        return values, glide

    def _schedule(self, cues: Sequence[Cue]) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
        """Pieces (start sample, glide samples, log-freqs from, log-freqs to); freqs are (carrier, beat).

        A glide that starts before the previous one is over takes over from
        wherever the previous one had got to, so every piece is monotone.
        """
        sr = self.sample_rate
        now = np.log([self.params.carrier_hz, self.params.beat_hz])
        pieces = [(0, 1, now, now)]
        for cue in cues:
            values, glide_s = self._target(cue)
            start = max(0, int(round(cue.time_s * sr)))
            current = _piece_value(pieces[-1], start)
            target = current.copy()
            if "carrier_hz" in values:
                target[0] = math.log(float(values["carrier_hz"]))
            if "beat_hz" in values:
                target[1] = math.log(float(values["beat_hz"]))
            length = max(1, int(round(glide_s * sr)))
            if start == 0:
                pieces[-1] = (0, 1, target, target)  # the opening value, not a glide
            else:
                pieces.append((start, length, current, target))
        return pieces

    def frequencies_hz(self, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Instantaneous (carrier, beat) frequency of samples [start, start + n), in hertz."""
        starts = np.array([p[0] for p in self._pieces])
        first, last = np.searchsorted(starts, [start, start + n - 1], side="right") - 1
        s, length, lo, hi = self._pieces[first]
        if first == last and start - s >= length:
            # Between glides (nearly always): one frequency for the whole block, by the same formula.
            x = np.ones(1)
            w = 0.5 - 0.5 * np.cos(np.pi * x)
            held = np.exp(lo[:, None] + (hi - lo)[:, None] * w[None, :])
            return np.repeat(held[0], n), np.repeat(held[1], n)
        t = np.arange(start, start + n, dtype=np.int64)
        out = np.empty((2, n))
        which = np.searchsorted(starts, t, side="right") - 1
        for k in np.unique(which):
            sel = which == k
            s, length, lo, hi = self._pieces[k]
            x = np.clip((t[sel] - s) / length, 0.0, 1.0)
            w = 0.5 - 0.5 * np.cos(np.pi * x)
            out[:, sel] = np.exp(lo[:, None] + (hi - lo)[:, None] * w[None, :])
        return out[0], out[1]

    def cue_duration_s(self, cue: Cue) -> float:
        return self._target(cue)[1] if cue.action in self.cue_actions else 0.0

    def add_cues(self, later: Sequence[Cue]) -> bool:
        self._checked_later(later)
        self._pieces = self._schedule(
            self.cues
        )  # each piece follows from the ones before: the earlier ones stay
        return True

    # -- audio ----------------------------------------------------------------

    def _advance(self, which: int, freq_hz: np.ndarray) -> np.ndarray:
        """Phase (cycles) of each sample of this block for oscillator ``which``; carries the phase on."""
        steps = freq_hz / self.sample_rate
        phase = np.empty_like(steps)
        phase[0] = self._phase[which]
        np.cumsum(steps[:-1], out=phase[1:])
        phase[1:] += self._phase[which]
        self._phase[which] = (phase[-1] + steps[-1]) % 1.0
        return phase

    def _next_block(self) -> np.ndarray:
        carrier, beat = self.frequencies_hz(self.block_start, BLOCK_SIZE)
        out = np.empty((BLOCK_SIZE, 2), dtype=np.float32)
        amp = self._amp
        mode = self.params.mode
        if mode == "isochronic":
            tone = np.sin(2 * np.pi * self._advance(0, carrier))
            gate = _gate(self._advance(2, beat) % 1.0, self.params.duty, self.params.ramp)
            out[:, 0] = amp * tone * gate
            out[:, 1] = out[:, 0]
            return out
        low = np.sin(2 * np.pi * self._advance(0, carrier - beat / 2))
        high = np.sin(2 * np.pi * self._advance(1, carrier + beat / 2))
        if mode == "binaural":
            out[:, 0] = amp * low
            out[:, 1] = amp * high
        else:
            out[:, 0] = (amp / 2) * (low + high)
            out[:, 1] = out[:, 0]
        return out

    def click_threshold(self) -> float:
        """Largest sample-to-sample step this layer can make without a click, at unit level.

        A sine of amplitude A at f hertz steps at most 2πfA/sr per sample; the
        isochronic gate's ramps add a little. Anything above 1.25× the highest
        carrier's own step would be a discontinuity.
        """
        logs = np.array([end for p in self._pieces for end in (p[2], p[3])])
        top = math.exp(logs[:, 0].max()) + math.exp(logs[:, 1].max()) / 2
        return 1.25 * 2 * math.pi * top * self._amp / self.sample_rate


def _check_freqs(where: str, values: Mapping[str, Any]) -> None:
    for key, (low, high) in (("carrier_hz", _CARRIER_RANGE_HZ), ("beat_hz", _BEAT_RANGE_HZ)):
        if key not in values:
            continue
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SoundscapeError(f"{where}: {key} must be a number, not {value!r}")
        check_range(f"{where}: {key}", value, low, high)
    unknown = set(values) - {"carrier_hz", "beat_hz"}
    if unknown:
        raise SoundscapeError(
            f"{where}: unknown key {', '.join(sorted(unknown))} (known: carrier_hz, beat_hz)"
        )


def _piece_value(piece, at: int) -> np.ndarray:
    s, length, lo, hi = piece
    x = min(max((at - s) / length, 0.0), 1.0)
    return lo + (hi - lo) * (0.5 - 0.5 * math.cos(math.pi * x))


def _gate(theta: np.ndarray, duty: float, ramp: float) -> np.ndarray:
    """Isochronic gate over one cycle (theta in [0, 1)): raised-cosine rise, hold, raised-cosine fall, off."""
    r = duty * ramp
    g = np.zeros_like(theta)
    rise = theta < r
    g[rise] = 0.5 - 0.5 * np.cos(np.pi * theta[rise] / r)
    g[(theta >= r) & (theta < duty - r)] = 1.0
    fall = (theta >= duty - r) & (theta < duty)
    g[fall] = 0.5 + 0.5 * np.cos(np.pi * (theta[fall] - (duty - r)) / r)
    return g


def _gate_mean_square(duty: float, ramp: float) -> float:
    theta = (np.arange(100000) + 0.5) / 100000
    return float(np.mean(_gate(theta, duty, ramp) ** 2))


beats = layer_function("beats", takes_cues=True)
