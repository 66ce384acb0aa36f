"""Ambience streams put together: several plans side by side, and bells struck to the sample.

The mixer takes any object with ``names`` and ``render(n) -> {name: stem}``
(``mix.Ambience``); a timer session (bells over a bed) and a night in
movements (one plan per place) are several such streams heard as one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..levels import NOMINAL_RMS_DB, VOICE_RMS_DB
from ..timeline import LayerLevels
from .layers import Cue
from .layers.bell import Bell
from .plan import AmbiencePlan

__all__ = ["Together", "Prefixed", "StruckBell", "layer_levels"]


class Together:
    """Several ambience streams as one: their layers side by side, in order."""

    def __init__(self, parts: Sequence):
        self._parts = list(parts)
        self.names = tuple(n for p in self._parts for n in p.names)

    def render(self, n: int) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for part in self._parts:
            out.update(part.render(n))
        return out


class Prefixed:
    """An ambience stream whose layers are named ``PREFIX.layer`` (two places may both have a river)."""

    def __init__(self, part, prefix: str):
        self._part = part
        self._prefix = prefix
        self.names = tuple(f"{prefix}.{n}" for n in part.names)

    def render(self, n: int) -> dict[str, np.ndarray]:
        return {f"{self._prefix}.{k}": v for k, v in self._part.render(n).items()}


class StruckBell:
    """The bell layer struck at given samples (and strengths), as one named stem at ``level_db``.

    ``level_db`` is relative to the narration, like a preset layer's.
    """

    def __init__(
        self,
        name: str,
        strikes: Sequence[int],
        *,
        sample_rate: int,
        seed: int,
        params: Mapping[str, Any],
        level_db: float,
        strengths: Sequence[float] | None = None,
    ):
        rng = np.random.default_rng(np.random.SeedSequence([seed, *name.encode("utf-8")]))
        strengths = [1.0] * len(strikes) if strengths is None else list(strengths)
        # A strike's time in seconds rounds back to its sample (the layer rounds time × rate).
        cues = [
            Cue(s / sample_rate, "strike", {"strength": float(g)})
            for s, g in zip(strikes, strengths, strict=True)
        ]
        self.names = (name,)
        self._layer = Bell(sample_rate=sample_rate, rng=rng, params=dict(params), cues=cues)
        self._gain = np.float32(10 ** ((level_db + VOICE_RMS_DB - NOMINAL_RMS_DB) / 20))

    def render(self, n: int) -> dict[str, np.ndarray]:
        return {self.names[0]: self._layer.render(n) * self._gain}


def layer_levels(name: str, envelope, plan: AmbiencePlan, sample_rate: int) -> LayerLevels:
    """A layer's planned level for the timings and the plot, in dB relative to the narration."""
    xs, ys = envelope
    layer = name.rsplit(".", 1)[-1]
    offset_db = VOICE_RMS_DB - NOMINAL_RMS_DB
    with np.errstate(divide="ignore"):
        db = 20 * np.log10(np.asarray(ys, dtype=np.float64)) - offset_db
    if layer in plan.cue_only:
        db = np.full_like(db, -np.inf)
    cues = tuple(c.time_s for c in plan.cues.get(layer, ()))
    return LayerLevels(name, tuple(float(x) / sample_rate for x in xs), tuple(map(float, db)), cues)
