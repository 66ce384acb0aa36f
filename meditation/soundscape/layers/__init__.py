"""Soundscape layers: one module per layer, each registered by name."""

# Importing a layer module registers it; a new layer joins by adding a line here.
from . import (  # noqa: E402,F401
    beats,
    bell,
    birds,
    breath,
    campfire,
    chimes,
    crickets,
    drone,
    frogs,
    owl,
    rain,
    recording,
    river,
    thunder,
    trees,
    underwater,
    waves,
    wind,
    wings,
)
from .base import BLOCK_SIZE, LAYERS, NOMINAL_RMS_DB, Cue, Layer, register_layer, render_layer

__all__ = [
    "BLOCK_SIZE",
    "LAYERS",
    "NOMINAL_RMS_DB",
    "Cue",
    "Layer",
    "register_layer",
    "render_layer",
]
