"""A new night every night: what ``--vary`` changes without changing the script.

``--vary nightly`` (or ``--vary 2026-12-06``, a given night) derives the
render's seed from ``--seed`` and the night's date, so each night is another
render and the same night is the same render. ``--vary seed`` varies by
``--seed`` as given: it is what a varied render records in its sidecar and
timings (``vary = "seed"`` and the effective ``seed``), so any night is
made again bit for bit from them.

A varied render changes, all from that one seed:

- the ambience's events (every layer's randomness follows the seed anyway);
- the timing of the soundscape's cues within their scene: each is delayed by
  up to ``CUE_DELAY_S`` (``CUE_DELAY_AT_TEXT_S`` for a cue on a word of the
  narration); never earlier, so a cue never comes before the words it
  follows, and never past the end;
- which line a ``[either A | B | C]`` speaks (unvaried: the first);
- the number of cycles of each guided breathing exercise, by one more or
  one fewer (never below one).

Scenes, and so chapters, stay as written; captions and timings follow what
is said. The track's length moves with the lines and breaths chosen unless
``--duration`` pins it, in which case every night lasts exactly that.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import replace

import numpy as np

from .errors import SettingsError

__all__ = [
    "CUE_DELAY_S",
    "CUE_DELAY_AT_TEXT_S",
    "EITHER_OPEN",
    "EITHER_SPLIT",
    "EITHER_CLOSE",
    "resolve_vary",
    "night_seed",
    "vary_script",
    "delay_cues",
]

CUE_DELAY_S = 8.0
"""Longest delay of a cue placed on a scene, the start or the end: a bell a breath later."""
CUE_DELAY_AT_TEXT_S = 1.0
"""Longest delay of a cue on a word of the narration: it must still fall on the word's phrase."""
# A ``[either A | B]`` is kept in the parsed text between these private-use
# characters until a render chooses (``vary_script``): the choice needs the
# seed, which front matter and the command line settle after parsing.
EITHER_OPEN, EITHER_SPLIT, EITHER_CLOSE = "\ue000", "\ue001", "\ue002"
_EITHER = re.compile(f"{EITHER_OPEN}([^{EITHER_CLOSE}]*){EITHER_CLOSE}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def resolve_vary(settings):
    """Settings with ``vary`` settled: a night's date turned into its seed, recorded as ``vary = "seed"``."""
    mode = settings.vary
    if mode is None or mode == "seed":
        return settings
    if mode == "nightly":
        night = dt.date.today()
    elif _DATE.fullmatch(mode):
        try:
            night = dt.date.fromisoformat(mode)
        except ValueError:
            raise SettingsError(f"vary {mode!r} is not a date (YYYY-MM-DD)") from None
    else:
        raise SettingsError(
            f"vary must be nightly, a night's date (YYYY-MM-DD), seed or none, not {mode!r}"
        )
    return dataclasses.replace(settings, vary="seed", seed=night_seed(settings.seed, night))


def night_seed(seed: int, night: dt.date) -> int:
    """The seed of one night: from the user's seed and the date, 63 bits (a valid ``--seed``)."""
    state = np.random.SeedSequence([seed, night.year, night.month, night.day]).generate_state(
        2, np.uint32
    )
    return int(state[0]) << 31 | int(state[1]) >> 1


def _rng(seed: int, what: bytes) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *what]))


def vary_script(script, *, seed: int, vary: bool):
    """The script with each ``[either ...]`` chosen and, when varying, each exercise's cycles changed."""
    lines = _rng(seed, b"lines") if vary else None
    breaths = _rng(seed, b"breaths") if vary else None

    def choose(found: re.Match) -> str:
        options = found.group(1).split(EITHER_SPLIT)
        return options[int(lines.integers(len(options)))] if lines is not None else options[0]

    scenes = []
    for scene in script.scenes:
        items = []
        for item in scene.items:
            # Paragraphs have text, exercises phases (``script.Paragraph``, ``script.Pause``).
            text = getattr(item, "text", None)
            if text is not None and EITHER_OPEN in text:
                item = replace(item, text=" ".join(_EITHER.sub(choose, text).split()))
            elif getattr(item, "phases", ()) and breaths is not None:
                item = _recount(item, breaths)
            items.append(item)
        scenes.append(replace(scene, items=tuple(items)))
    return replace(script, scenes=tuple(scenes))


def _recount(pause, rng: np.random.Generator):
    """An exercise with one cycle more or fewer (or as many), never fewer than one."""
    phases = pause.phases
    period = next(
        p
        for p in range(1, len(phases) + 1)
        if len(phases) % p == 0 and phases == phases[:p] * (len(phases) // p)
    )
    cycles = len(phases) // period
    change = int(rng.integers(-1, 2))
    cycles = max(1, cycles + change)
    new = phases[:period] * cycles
    return replace(pause, phases=new, seconds=sum(s for _, s in new))


def delay_cues(plan, seed: int):
    """A soundscape plan with its preset cues delayed within their scene (see the module's note).

    A cue's delay depends only on the seed, its layer and its place among
    that layer's cues, so the plans a render makes while speech is still
    coming in agree on it. Breathing cues and the scene changes a layer
    follows (beats) are the script's timing and stay.
    """
    length_s = plan.timeline.duration_s
    on_text = {c.layer for c in plan.preset.cues if c.at_text is not None}
    cues = {}
    for layer, layer_cues in plan.cues.items():
        if layer == "breath":
            cues[layer] = layer_cues
            continue
        rng = _rng(seed, b"cues:" + layer.encode("utf-8"))
        longest = CUE_DELAY_AT_TEXT_S if layer in on_text else CUE_DELAY_S
        delays = rng.uniform(0.0, longest, len(layer_cues))
        cues[layer] = tuple(
            c if c.action == "scene" else replace(c, time_s=min(c.time_s + d, length_s))
            for c, d in zip(layer_cues, delays, strict=True)
        )
    timeline = plan.timeline
    levels = tuple(
        replace(level, cues_s=tuple(c.time_s for c in cues.get(level.name, ())))
        if level.name in cues
        else level
        for level in timeline.layer_levels
    )
    return replace(plan, cues=cues, timeline=replace(timeline, layer_levels=levels))
