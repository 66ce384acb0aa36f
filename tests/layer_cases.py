"""Typical parameters and cues for every registered layer, shared by the tests that run them all.

A layer that takes cues must be listed in ``CUES`` (``test_layer_base`` checks it): a layer
that plays only on cues is otherwise silent, and its streaming would go untested.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from meditation.soundscape.layers import Cue

# Cues of every kind each cue-taking layer knows: the first ones early, the last well after them.
CUES: dict[str, tuple[list[Cue], Cue]] = {
    "bell": ([Cue(0.4, "strike"), Cue(1.0, "strike", {"strength": 0.5})], Cue(2.2, "strike")),
    "wings": ([Cue(0.3, "beats", {"count": 3}), Cue(1.2, "beat")], Cue(4.4, "beats", {"count": 4})),
    "beats": (
        [
            Cue(0.0, "scene", {"scene": "default", "fade_s": 0.0}),
            Cue(0.8, "glide", {"beat_hz": 4.0, "carrier_hz": 120.0, "glide_s": 0.5}),
        ],
        Cue(2.1, "glide", {"beat_hz": 9.0}),
    ),
    "breath": (
        [Cue(0.2, "in", {"duration_s": 0.8}), Cue(1.0, "out", {"duration_s": 0.9})],
        Cue(2.3, "in", {"duration_s": 1.0}),
    ),
    "bowl": ([Cue(0.4, "strike"), Cue(1.0, "strike", {"strength": 0.5})], Cue(2.2, "strike")),
    "temple-bell": ([Cue(0.4, "strike")], Cue(2.2, "strike", {"strength": 0.7})),
    "thunder": ([Cue(0.2, "roll")], Cue(2.2, "roll", {"strength": 0.6})),
    "owl": ([Cue(0.1, "hoot")], Cue(2.3, "hoot")),
    "frogs": ([Cue(0.3, "chorus", {"duration_s": 1.0})], Cue(2.2, "chorus", {"strength": 0.5})),
}

RECORDING_FILE = object()
"""Stands for a short recording written by the test (``write_recording``)."""

# Parameter sets worth running each layer with (default: the layer's defaults).
PARAMS: dict[str, list[dict[str, Any]]] = {
    "wings": [{"continuous": True, "flap_rate_hz": 3.0}],
    "wind": [{"whistle": 1.0, "gust_s": 1.0}],  # whistles on often, so they are covered too
    "beats": [{"mode": mode} for mode in ("binaural", "monaural", "isochronic")],
    "recording": [{"file": RECORDING_FILE}],
    # Layers that also sound on their own are made to, so their own events are covered.
    "bowl": [{"interval_s": 1.5}],
    "thunder": [{"rate_per_min": 10.0, "roll_s": 2.0}],
    "owl": [{"rate_per_min": 10.0}],
    "frogs": [{"activity": 2.0}],
    "rain": [{"surface": "tent", "intensity": 0.8}],
    # Bubbles are occasional: made frequent, so that strings of them cross span edges here.
    "underwater": [{"bubbles_per_min": 60.0, "swell_s": 2.0}],
}


def all_cues(name: str) -> list[Cue]:
    """Every typical cue of layer ``name`` (none for a layer that takes none)."""
    if name not in CUES:
        return []
    early, late = CUES[name]
    return [*early, late]


def write_recording(path: Path, seconds: float = 3.0, sample_rate: int = 44100) -> Path:
    """A few seconds of low-passed stereo noise: something for the recording layer to loop."""
    rng = np.random.default_rng(9)
    noise = rng.standard_normal((int(seconds * sample_rate), 2))
    smooth = np.cumsum(noise, axis=0)
    smooth -= np.linspace(smooth[0], smooth[-1], len(smooth))  # no drift, no step at the loop
    sf.write(path, 0.2 * smooth / np.abs(smooth).max(), sample_rate)
    return path


def resolve(params: dict[str, Any], recording: Path) -> dict[str, Any]:
    """``params`` with the recording placeholder replaced by a real file."""
    return {k: str(recording) if v is RECORDING_FILE else v for k, v in params.items()}
