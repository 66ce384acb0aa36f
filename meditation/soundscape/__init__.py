"""Stage 5: the soundscape — layers that follow the story's scenes.

A preset (a TOML file in ``soundscapes/``) says which layers play, at what
level and with which parameters, how each scene sets them, and which one-off
cues (a bell strike, a single wing beat) fall where.

- ``preset``: reading and validating presets (the format is described there);
- ``plan``: ``plan_ambience`` turns a preset and a timeline into per-layer
  gain envelopes and cue times (an ``AmbiencePlan``);
- ``stream``: ``AmbienceStream(plan)`` is a fresh, seeded streaming renderer
  of that plan;
- ``layers``: one module per layer, each registered by name.
"""

from .plan import AmbiencePlan, plan_ambience
from .preset import PRESET_DIRS, Preset, check_scene_names, list_presets, load_preset
from .stream import AmbienceStream

__all__ = [
    "Preset",
    "AmbiencePlan",
    "AmbienceStream",
    "load_preset",
    "check_scene_names",
    "list_presets",
    "plan_ambience",
    "PRESET_DIRS",
]
