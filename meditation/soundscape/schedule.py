"""A night in movements: soundscapes that follow each other over the hours.

A schedule names places (soundscape presets) and when each begins::

    --schedule "night-wind@0,stream@2h,drone@6h30m"

or, in a TOML file (``--schedule night.toml``; preset paths relative to it)::

    crossfade = "10m"        # optional; --crossfade wins
    wake = "20m"             # optional; --wake wins
    places = [
      { soundscape = "night-wind", at = "0" },
      { soundscape = "stream", at = "2h" },
      { soundscape = "drone", at = "6h30m" },
    ]

Each change is an equal-power crossfade centred on its time (five minutes
unless told). A place is planned as its preset plays alone — its start and
end cues at the place's own start and end — and is heard only in its hours:
its layers are silent, and not even rendered, outside them, so a night costs
what its places cost and memory stays flat whatever its length. The optional
wake-up ramp (``--wake DUR``) raises the last place by ``WAKE_RISE_DB`` over
the night's last DUR and strikes a bell a few times, ever stronger.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import MeditationError, SoundscapeError
from ..settings import format_duration, parse_duration_s
from ..timeline import LayerLevels, SceneSpan, Timeline
from ..tomlfile import read_toml
from .combine import Prefixed, StruckBell, Together, layer_levels
from .plan import AmbiencePlan, plan_ambience
from .preset import load_preset
from .stream import AmbienceStream

__all__ = [
    "Place",
    "Schedule",
    "NightPlan",
    "load_schedule",
    "parse_schedule",
    "plan_night",
    "check_fits",
    "DEFAULT_CROSSFADE_S",
    "WAKE_RISE_DB",
]

DEFAULT_CROSSFADE_S = 300.0
"""A change of place takes five minutes: slow enough not to wake anyone."""
WAKE_RISE_DB = 6.0
"""How far the last place rises over the wake-up ramp."""
WAKE_STRIKES = 5
"""Bell strikes over the wake-up ramp, from a touch to a full strike."""
_WAKE_BELL = {"fundamental_hz": 330.0, "decay_s": 14.0, "brightness": 0.55}
_WAKE_BELL_LEVEL_DB = -12.0
_FADE_POINTS = 16
"""Breakpoints of a crossfade's quarter-sine (level envelopes are linear between breakpoints)."""
_ENTRY = re.compile(r"^\s*(?P<name>[^@]+?)\s*@\s*(?P<at>[^@]+?)\s*$")


@dataclass(frozen=True)
class Place:
    """One movement of the night: a soundscape preset from ``start_s``."""

    soundscape: str
    start_s: float


@dataclass(frozen=True)
class Schedule:
    """The places of a night, in order, and what a schedule file says of crossfade and wake-up."""

    places: tuple[Place, ...]
    crossfade_s: float | None = None
    wake_s: float | None = None


def parse_schedule(text: str, *, base: Path | None = None) -> Schedule:
    """``NAME@TIME,NAME@TIME,...`` as a Schedule (``base``: where relative .toml presets are)."""
    places = []
    for raw in str(text).split(","):
        if not raw.strip():
            continue
        found = _ENTRY.match(raw)
        if found is None:
            raise SoundscapeError(
                f"--schedule: {raw.strip()!r} is not PLACE@TIME (e.g. stream@2h30m)"
            )
        places.append(_place(found["name"], found["at"], base))
    if not places:
        raise SoundscapeError("--schedule is empty (write e.g. night-wind@0,stream@2h)")
    return Schedule(tuple(places))


def load_schedule(value: str) -> Schedule:
    """A schedule from the ``--schedule`` value: inline, or a .toml file holding ``places``."""
    if not str(value).lower().endswith(".toml"):
        return parse_schedule(value)
    path = Path(value)
    data = read_toml(path, error_class=SoundscapeError, what="schedule")
    known = {"places", "crossfade", "wake"}
    for key in data:
        if key not in known:
            raise SoundscapeError(
                f"{path}: unknown key {key!r} (known: {', '.join(sorted(known))})"
            )
    entries = data.get("places")
    if not isinstance(entries, list) or not entries:
        raise SoundscapeError(f"{path}: places must be a list of {{soundscape, at}} tables")
    places = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) != {"soundscape", "at"}:
            raise SoundscapeError(f"{path}: places[{i}] must be {{soundscape = ..., at = ...}}")
        places.append(_place(str(entry["soundscape"]), entry["at"], path.parent, where=str(path)))
    return Schedule(
        tuple(places),
        crossfade_s=_duration(data["crossfade"], f"{path}: crossfade")
        if "crossfade" in data
        else None,
        wake_s=_duration(data["wake"], f"{path}: wake") if "wake" in data else None,
    )


def _place(name: str, at, base: Path | None, where: str = "--schedule") -> Place:
    name = name.strip()
    if name.lower().endswith(".toml") and base is not None and not Path(name).is_absolute():
        name = str(base / name)
    if name in ("none", "auto"):
        raise SoundscapeError(f"{where}: {name!r} is not a place (name a soundscape preset)")
    try:
        load_preset(name)
    except MeditationError as exc:
        raise SoundscapeError(f"{where}: {exc}") from None
    return Place(name, _duration(at, f"{where}: {name}@{at}"))


def _duration(value, what: str) -> float:
    try:
        return parse_duration_s(value)
    except (TypeError, ValueError):
        raise SoundscapeError(f"{what}: not a duration such as 0, 2h or 6h30m") from None


@dataclass(frozen=True)
class NightPlan:
    """Every place's plan, windowed to its hours; ``stream`` plays them as one ambience."""

    name: str
    """What the tags and the summary call the soundscape: the places, in order."""
    timeline: Timeline
    """One scene per place (and ``wake-up``), each layer's level over the night."""
    places: tuple[tuple[str, AmbiencePlan], ...]
    """(layer-name prefix, the place's plan with its window applied)."""
    beds: AmbiencePlan | None
    wake_strikes: tuple[tuple[int, float], ...]
    """(sample, strength) of each wake-up bell strike."""
    seed: int

    def stream(self) -> Together:
        """A fresh streaming renderer of the whole night; two streams render identical audio."""
        parts: list = [Prefixed(AmbienceStream(plan), prefix) for prefix, plan in self.places]
        if self.beds is not None:
            parts.append(AmbienceStream(self.beds))
        if self.wake_strikes:
            parts.append(
                StruckBell(
                    "wake-bell",
                    [s for s, _ in self.wake_strikes],
                    strengths=[g for _, g in self.wake_strikes],
                    sample_rate=self.timeline.sample_rate,
                    seed=self.seed,
                    params=_WAKE_BELL,
                    level_db=_WAKE_BELL_LEVEL_DB,
                )
            )
        return Together(parts)


def plan_night(
    schedule: Schedule,
    *,
    timeline: Timeline,
    seed: int,
    beds: Sequence[tuple[str, float]] = (),
    crossfade_s: float | None = None,
    wake_s: float | None = None,
) -> NightPlan:
    """Plan a schedule over a bare timeline (an ambient track's length): windows, crossfades, wake-up.

    ``crossfade_s`` and ``wake_s`` (the command line's) win over the
    schedule file's. Raises a one-line SoundscapeError for a schedule that
    does not fit the night.
    """
    sr = timeline.sample_rate
    total = timeline.length
    fade_s, wake_s = check_fits(schedule, total / sr, crossfade_s=crossfade_s, wake_s=wake_s)
    starts = [int(round(p.start_s * sr)) for p in schedule.places]
    ends = [*starts[1:], total]
    fade = int(round(fade_s * sr))
    wake_start = total - int(round(wake_s * sr)) if wake_s else None
    places = []
    scenes = []
    counts: dict[str, int] = {}
    for i, place in enumerate(schedule.places):
        label = (
            Path(place.soundscape).stem if place.soundscape.endswith(".toml") else place.soundscape
        )
        counts[label] = counts.get(label, 0) + 1
        prefix = label if counts[label] == 1 else f"{label}~{counts[label]}"
        plan = _place_plan(place, starts[i], ends[i], timeline, _child_seed(seed, i))
        window = _window(starts[i], ends[i], fade, total, first=i == 0, last=i + 1 == len(starts))
        if wake_start is not None and i + 1 == len(starts):
            window = _product(window, _wake_ramp(wake_start, total))
        envelopes = {name: _product(env, window) for name, env in plan.envelopes.items()}
        plan = replace(plan, envelopes=envelopes)
        places.append((prefix, plan))
        scene_end = wake_start if wake_start is not None and i + 1 == len(starts) else ends[i]
        layers = tuple(f"{prefix}.{n}" for n in plan.preset.layers)
        scenes.append(SceneSpan(prefix, starts[i], scene_end, layers))
    bed_plan = None
    if beds:
        bed_plan = plan_ambience("none", script=None, timeline=timeline, seed=seed, beds=beds)
    wake_strikes: tuple[tuple[int, float], ...] = ()
    if wake_start is not None:
        scenes.append(SceneSpan("wake-up", wake_start, total, (*scenes[-1].layers, "wake-bell")))
        step = (total - wake_start) / WAKE_STRIKES
        wake_strikes = tuple(
            (wake_start + int(round(k * step)), round(0.2 + 0.8 * k / (WAKE_STRIKES - 1), 3))
            for k in range(WAKE_STRIKES)
        )
    if bed_plan is not None:
        scenes = [replace(s, layers=(*s.layers, *bed_plan.preset.layers)) for s in scenes]
    levels = [
        layer_levels(f"{prefix}.{name}", env, plan, sr)
        for prefix, plan in places
        for name, env in plan.envelopes.items()
    ]
    if bed_plan is not None:
        levels += [
            layer_levels(name, env, bed_plan, sr) for name, env in bed_plan.envelopes.items()
        ]
    if wake_strikes:
        levels.append(
            LayerLevels("wake-bell", (0.0,), (-math.inf,), tuple(s / sr for s, _ in wake_strikes))
        )
    night = replace(timeline, scenes=tuple(scenes), layer_levels=tuple(levels))
    name = " → ".join(prefix for prefix, _ in places)
    return NightPlan(name, night, tuple(places), bed_plan, wake_strikes, seed)


def check_fits(
    schedule: Schedule,
    duration_s: float,
    *,
    crossfade_s: float | None = None,
    wake_s: float | None = None,
) -> tuple[float, float | None]:
    """The crossfade and wake-up a night of ``duration_s`` plays ``schedule`` with (the
    command line's over the file's); a one-line SoundscapeError if it does not fit, so a
    batch can refuse it before anything renders."""
    fade_s = crossfade_s if crossfade_s is not None else schedule.crossfade_s
    fade_s = DEFAULT_CROSSFADE_S if fade_s is None else fade_s
    wake_s = wake_s if wake_s is not None else schedule.wake_s
    _check(schedule, duration_s, fade_s, wake_s)
    return fade_s, wake_s


def _check(schedule: Schedule, duration_s: float, fade_s: float, wake_s: float | None) -> None:
    places = schedule.places
    if places[0].start_s != 0:
        raise SoundscapeError(
            f"--schedule: the first place starts at 0, not {format_duration(places[0].start_s)}"
        )
    for place in places:  # named first: a place past the end is not a short crossfade
        if place.start_s >= duration_s:
            raise SoundscapeError(
                f"--schedule: {place.soundscape}@{format_duration(place.start_s)} starts after "
                f"the {format_duration(duration_s)} track ends"
            )
    for before, after in zip(places, places[1:], strict=False):
        if after.start_s <= before.start_s:
            raise SoundscapeError(
                f"--schedule: {after.soundscape}@{format_duration(after.start_s)} does not come "
                f"after {before.soundscape}@{format_duration(before.start_s)}"
            )
        if after.start_s - before.start_s < fade_s:
            raise SoundscapeError(
                f"--schedule: {before.soundscape} lasts {format_duration(after.start_s - before.start_s)}, "
                f"less than the crossfade ({format_duration(fade_s)})"
            )
    last = places[-1]
    if last.start_s + fade_s / 2 >= duration_s:
        raise SoundscapeError(
            f"--schedule: {last.soundscape}@{format_duration(last.start_s)} starts too late "
            f"for a {format_duration(duration_s)} track (crossfade {format_duration(fade_s)})"
        )
    if wake_s is not None and last.start_s + fade_s / 2 > duration_s - wake_s:
        raise SoundscapeError(
            f"--wake {format_duration(wake_s)} begins before the last place "
            f"({last.soundscape}@{format_duration(last.start_s)}) has faded in"
        )


def _child_seed(seed: int, index: int) -> int:
    """Each place its own randomness: two places of one preset never play the same audio."""
    state = np.random.SeedSequence([seed, index]).generate_state(2, np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def _place_plan(place: Place, start: int, end: int, timeline: Timeline, seed: int) -> AmbiencePlan:
    """The place's preset played alone over [start, end), then moved to start there."""
    sr = timeline.sample_rate
    alone = Timeline(sr, end - start, (), (SceneSpan("", 0, end - start),))
    plan = plan_ambience(place.soundscape, script=None, timeline=alone, seed=seed)
    shift = start / sr
    envelopes = {n: (xs + start, ys) for n, (xs, ys) in plan.envelopes.items()}
    cues = {
        n: tuple(replace(c, time_s=c.time_s + shift) for c in cs) for n, cs in plan.cues.items()
    }
    return replace(plan, timeline=timeline, envelopes=envelopes, cues=cues)


def _window(
    start: int, end: int, fade: int, total: int, *, first: bool, last: bool
) -> tuple[np.ndarray, np.ndarray]:
    """A place's gain: 1 in its hours, equal-power crossfades centred on its start and end, 0 elsewhere."""
    u = np.linspace(0.0, 1.0, _FADE_POINTS + 1)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    if first:
        xs.append(np.array([0.0]))
        ys.append(np.array([1.0]))
    else:
        xs.append(start - fade / 2 + u * fade)
        ys.append(np.sin(0.5 * np.pi * u))
    if last:
        xs.append(np.array([float(total)]))
        ys.append(np.array([1.0]))
    else:
        xs.append(end - fade / 2 + u * fade)
        ys.append(np.cos(0.5 * np.pi * u))
    x, y = np.concatenate(xs), np.concatenate(ys)
    y[np.abs(y) < 1e-12] = 0.0  # cos(pi/2) is 6e-17, not silence: the layer would be rendered on
    return x, y


def _wake_ramp(wake_start: int, total: int) -> tuple[np.ndarray, np.ndarray]:
    """Gain rising by WAKE_RISE_DB from ``wake_start`` to the end, even in dB."""
    u = np.linspace(0.0, 1.0, _FADE_POINTS + 1)
    return wake_start + u * (total - wake_start), 10 ** (WAKE_RISE_DB * u / 20)


def _product(
    a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Two gain envelopes multiplied, at the union of their breakpoints (each held flat past its ends)."""
    xs = np.union1d(a[0], b[0])
    return xs, np.interp(xs, *a) * np.interp(xs, *b)
