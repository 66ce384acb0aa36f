"""Wind-down narration: speaking rate, voice level and pauses that follow a curve over a session.

Written as the ``wind_down`` setting (front matter ``wind-down:``, ``--wind-down``,
a manifest key or a preset's ``[wind-down]`` table)::

    wind-down: {rate: 0.75, level: -4dB, pauses: 1.6}
    wind-down: {rate: [1, 0.85, 0.75], level: [0, -2, -4dB], by: time}
    --wind-down "rate=0.75,level=-4dB"
    wind-down: on          # rate 0.8, level -4 dB, pauses 1.5

Each quantity is a curve over the session. One value is where it ends, by
the last scene, starting from 1 × (0 dB): ``rate: 0.75`` is 0.75 × the
render's rate at the end. A list gives the curve's points, spread evenly
from the start to the end, linear between them; as many points as scenes
gives each scene its own value. ``by: scenes`` (the default) moves once per
scene, ``by: time`` segment by segment along the planned time (a script of
one scene always goes by time). The planned time is reckoned before the voice
speaks, from the text's length and the pauses, so every rate is known before
synthesis starts.

Rate multiplies the render's own rate (``segment_rates``), so a pace or a
voice's rate is the base the curve bends; level is a gain on the voice after
its chain (a leveler would otherwise undo it), so the ambience comes up
relative to the voice; pauses multiply each gap before a segment (on top of
``pause_scale``). Pure: no numpy, no I/O (settings validate with it).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import SettingsError

__all__ = [
    "WindDown",
    "WindDownError",
    "parse_wind_down",
    "positions",
    "segment_rates",
    "wind_down",
    "RATE_RANGE",
    "LEVEL_RANGE_DB",
    "PAUSES_RANGE",
]

RATE_RANGE = (0.5, 1.5)
"""A rate point multiplies the render's rate by this much at most (and the product must stay in 0.5–2)."""
LEVEL_RANGE_DB = (-24.0, 6.0)
PAUSES_RANGE = (0.25, 4.0)
_MAX_POINTS = 100
_CHARS_PER_S = 14.0  # the planned time's speaking speed at rate 1 (as segments.max_chars_for)


class WindDownError(SettingsError):
    """A bad ``wind_down`` value; ``offset`` is where in the written text the problem starts."""

    def __init__(self, message: str, offset: int = 0):
        super().__init__(f"wind-down: {message}")
        self.offset = offset


@dataclass(frozen=True)
class WindDown:
    """The curves: points of each quantity from the session's start to its end."""

    rate: tuple[float, ...] = (1.0,)
    """Rate multipliers (× the render's rate)."""
    level_db: tuple[float, ...] = (0.0,)
    """Voice level, dB relative to its normal level."""
    pauses: tuple[float, ...] = (1.0,)
    """Multipliers of the gap before each segment."""
    by: str = "scenes"
    """``scenes`` or ``time``."""

    def at(self, fraction: float) -> tuple[float, float, float]:
        """(rate multiplier, level dB, pause multiplier) at ``fraction`` (0: the start, 1: the end)."""
        return (
            _interp(self.rate, fraction, 1.0),
            _interp(self.level_db, fraction, 0.0),
            _interp(self.pauses, fraction, 1.0),
        )


_DEFAULT_ON = WindDown(rate=(0.8,), level_db=(-4.0,), pauses=(1.5,))
"""``wind-down: on``."""


def _interp(points: tuple[float, ...], fraction: float, start: float) -> float:
    """The curve through ``points`` (one point: from ``start`` to it) at ``fraction``."""
    pts = (start, *points) if len(points) == 1 else points
    x = min(max(fraction, 0.0), 1.0) * (len(pts) - 1)
    i = min(int(x), len(pts) - 2)
    return pts[i] + (pts[i + 1] - pts[i]) * (x - i)


_KEYS = {"rate": "rate", "level": "level_db", "pauses": "pauses", "pause": "pauses", "by": "by"}
_ITEM = re.compile(r"\s*([A-Za-z_-]+)\s*[:=]\s*")


def parse_wind_down(value: Any) -> WindDown | None:
    """The curves written in ``value`` (text or a TOML table); None for ``off``/``none``.

    Raises ``WindDownError`` with the offset in the text of what is wrong.
    """
    if isinstance(value, WindDown) or value is None:
        return value
    if isinstance(value, dict):
        return _from_items([(0, str(k), v) for k, v in value.items()])
    if not isinstance(value, str):
        raise WindDownError(f"expected a table such as {{rate: 0.75, level: -4dB}}, not {value!r}")
    text = value
    body = text.strip()
    lead = len(text) - len(text.lstrip())
    if body.lower() in ("on", "yes", "true"):
        return _DEFAULT_ON
    if body.lower() in ("off", "no", "false", "none"):
        return None
    if body.startswith("{"):
        if not body.endswith("}"):
            raise WindDownError("a '{' is never closed with '}'", lead + len(body))
        body, lead = body[1:-1], lead + 1
    return _from_items(_split_items(body, lead))


def _split_items(body: str, lead: int) -> list[tuple[int, str, Any]]:
    """``key: value`` items separated by commas (a ``[...]`` list may hold commas): (offset, key, raw value)."""
    items: list[tuple[int, str, Any]] = []
    pos = 0
    while pos < len(body):
        if not body[pos:].strip():
            break
        match = _ITEM.match(body, pos)
        if match is None:
            raise WindDownError(
                f"expected 'name: value' (rate, level, pauses, by), got {body[pos:].strip()[:30]!r}",
                lead + pos + (len(body[pos:]) - len(body[pos:].lstrip())),
            )
        start = match.end()
        if body[start : start + 1] == "[":
            close = body.find("]", start)
            if close < 0:
                raise WindDownError("a '[' is never closed with ']'", lead + start)
            raw: Any = [
                part.strip() for part in body[start + 1 : close].split(",") if part.strip() != ""
            ]
            end = close + 1
        else:
            comma = body.find(",", start)
            end = len(body) if comma < 0 else comma
            raw = body[start:end].strip()
        items.append((lead + match.start(1), match.group(1), raw))
        rest = body[end:].lstrip()
        if rest and not rest.startswith(","):
            raise WindDownError(f"expected ',' before {rest[:20]!r}", lead + len(body) - len(rest))
        pos = len(body) - len(rest) + 1 if rest else len(body)
    if not items:
        raise WindDownError("no curve given (rate, level or pauses)", lead)
    return items


def _from_items(items: list[tuple[int, str, Any]]) -> WindDown:
    fields: dict[str, Any] = {}
    for offset, key, raw in items:
        name = _KEYS.get(key.strip().lower().replace("-", "_"))
        if name is None:
            raise WindDownError(f"unknown {key!r} (known: rate, level, pauses, by)", offset)
        if name in fields:
            raise WindDownError(f"{key!r} is given twice", offset)
        if name == "by":
            by = str(raw).strip().lower()
            if by not in ("scenes", "time"):
                raise WindDownError(f"by must be scenes or time, not {raw!r}", offset)
            fields["by"] = by
            continue
        values = raw if isinstance(raw, (list, tuple)) else [raw]
        if not 1 <= len(values) <= _MAX_POINTS:
            raise WindDownError(f"{key} needs 1 to {_MAX_POINTS} values", offset)
        fields[name] = tuple(_number(name, key, v, offset) for v in values)
    if not {"rate", "level_db", "pauses"} & fields.keys():
        raise WindDownError("no curve given (rate, level or pauses)", items[0][0])
    return WindDown(**fields)


def _number(name: str, key: str, raw: Any, offset: int) -> float:
    text = str(raw).strip()
    unit = {"level_db": ("db",), "rate": ("x", "×"), "pauses": ("x", "×")}[name]
    lowered = text.lower()
    for suffix in unit:
        if lowered.endswith(suffix):
            lowered = lowered[: -len(suffix)].strip()
            break
    try:
        if isinstance(raw, bool):
            raise ValueError(raw)
        number = float(raw) if isinstance(raw, (int, float)) else float(lowered)
    except ValueError:
        shown = "a level in dB such as -4dB" if name == "level_db" else "a number such as 0.75"
        raise WindDownError(f"{key} must be {shown}, not {text!r}", offset) from None
    low, high = {"rate": RATE_RANGE, "level_db": LEVEL_RANGE_DB, "pauses": PAUSES_RANGE}[name]
    if not (math.isfinite(number) and low <= number <= high):
        unit_text = " dB" if name == "level_db" else " ×"
        raise WindDownError(
            f"{key} {text} is out of range ({low:g} to {high:g}{unit_text})", offset
        )
    return number


# --- applying the curves to planned segments ------------------------------------------------


def positions(planned: Sequence[Any], wind: WindDown, base_rate: float) -> list[float]:
    """Where each planned segment stands in the session, 0 (start) to 1 (end).

    ``by: scenes``: the scene's index over the last index (every segment of a
    scene shares it). ``by: time`` (or a single scene): the segment's planned
    start between the first and the last spoken segment's, the planned time
    reckoned from each text's length at ``base_rate`` and the gaps, before any speech.
    """
    scenes = list(dict.fromkeys(s.scene for s in planned))
    if wind.by == "scenes" and len(scenes) > 1:
        index = {name: i for i, name in enumerate(scenes)}
        return [index[s.scene] / (len(scenes) - 1) for s in planned]
    starts, t = [], 0.0
    for s in planned:
        t += s.gap_before_s
        starts.append(t)
        t += sum(seconds for _, seconds in s.breaths)
        if s.spoken and s.cue_at_s is None:
            t += len(s.text) / (_CHARS_PER_S * base_rate)
    spoken = [start for s, start in zip(planned, starts) if s.spoken] or [0.0]
    first, span = spoken[0], spoken[-1] - spoken[0]
    if span <= 0:
        return [0.0] * len(planned)
    return [min(1.0, max(0.0, (start - first) / span)) for start in starts]


def segment_rates(base_rate: float, planned: Sequence[Any], wind: WindDown | None) -> list[float]:
    """Each planned segment's speaking rate: the curve's multiplier on ``base_rate``.

    The one place the wind-down bends the rate: whatever sets the base (``--rate``,
    a pace) composes with it by passing its rate here.
    """
    if wind is None:
        return [base_rate] * len(planned)
    rates = []
    for fraction in positions(planned, wind, base_rate):
        # Not checked against the engines' 0.5 to 2 here: under a voice's natural floor the
        # render slows with phrase breaks instead (``pace.slowed``) and checks what it speaks.
        rates.append(round(base_rate * wind.at(fraction)[0], 4))
    return rates


def wind_down(planned: Sequence[Any], base_rate: float, wind: WindDown | None) -> list[Any]:
    """The planned segments (``segments.Segment``) with their rate, level and pauses set.

    Without a wind-down every segment gets ``base_rate`` and 0 dB; with one,
    the rate comes from ``segment_rates`` and the gap before a segment (and
    each plain ``[breathe]`` in it) is multiplied by the curve's pauses there.
    A breathing exercise keeps its own timing.
    """
    rates = segment_rates(base_rate, planned, wind)
    if wind is None:
        return [dataclasses.replace(s, rate=r, level_db=0.0) for s, r in zip(planned, rates)]
    out = []
    for s, rate, fraction in zip(planned, rates, positions(planned, wind, base_rate)):
        _, level, pauses = wind.at(fraction)
        out.append(
            dataclasses.replace(
                s,
                rate=rate,
                level_db=round(level, 2),
                gap_before_s=s.gap_before_s * pauses,
                breathe_s=tuple(b * pauses for b in s.breathe_s),
            )
        )
    return out
