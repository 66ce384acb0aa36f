"""Levels the stages agree on, in one place.

The mixer brings the narration to ``VOICE_RMS_DB`` and every soundscape layer
is built to sit near ``NOMINAL_RMS_DB`` at default parameters, so a preset's
``level_db`` reads as a plain offset from the voice. Both ``mix`` and
``soundscape`` import these from here; neither imports the other for them.
"""

from __future__ import annotations

__all__ = [
    "VOICE_RMS_DB",
    "VOICE_LEVEL_SAMPLE_S",
    "VOICE_CREST_DB",
    "NOMINAL_RMS_DB",
    "SILENT_DB",
    "LOUDNESS_SCOPES",
]

VOICE_RMS_DB = -20.0
"""Level the narration is brought to (RMS of its speech), dBFS; layer levels are relative to it."""

VOICE_LEVEL_SAMPLE_S = 30.0
"""The narration's level (and the voice chain's make-up gain) is measured on its first this-many seconds of speech."""

VOICE_CREST_DB = 9.0
"""Speech peaks are limited to this far above its RMS, so the master limiter has little left to do."""

NOMINAL_RMS_DB = -20.0
"""Long-term RMS of a soundscape layer at default parameters, dBFS."""

SILENT_DB = -60.0
"""Below this a layer counts as silent in a scene (it is left out of the timeline's list of what sounds)."""

LOUDNESS_SCOPES = ("auto", "track", "speech")
"""What the loudness target is measured on (``--loudness-scope``; see ``mix.loudness_range``)."""
