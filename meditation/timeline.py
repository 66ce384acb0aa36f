"""Stage 4: lay spoken segments and pauses out on the track.

``segments.plan_segments`` decides the gaps (and how written pauses combine
with them); here they are multiplied by ``pause_scale`` and the segments
placed one after another. Breathing exercises are laid out exactly as
written, never scaled: a breathing pattern's timing is the exercise. Their
spoken cues sit on the phase starts. Times are kept in samples so that
nothing drifts; the JSON export gives seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import SettingsError
from .segments import Gaps, Segment
from .speakers import NARRATOR

__all__ = [
    "Gaps",
    "Segment",
    "SceneSpan",
    "Choice",
    "Breath",
    "LayerLevels",
    "Timeline",
    "layout",
    "fit_pause_scale",
]


@dataclass(frozen=True, slots=True)
class Breath:
    """One phase of a guided breathing exercise on the track."""

    start: int
    """First sample of the phase."""
    phase: str
    """``"in"``, ``"hold"`` or ``"out"``."""
    length: int
    """Samples; a phase ends where the next one starts."""

    @property
    def end(self) -> int:
        return self.start + self.length


_INHALE_SHARE = 0.4
"""Of a plain ``[breathe]``: the breath in takes 40 %, the slower breath out the rest."""


def _single_breaths(
    seconds: tuple[float, ...], pause_scale: float, end: int, sr: int
) -> list[Breath]:
    """One in-out breath over each plain ``[breathe]``, the last ending where the gap ends at ``end``."""
    lengths = [int(round(s * pause_scale * sr)) for s in seconds]
    start = end - sum(lengths)
    out = []
    for length in lengths:
        inhale = min(max(1, int(round(length * _INHALE_SHARE))), length - 1)
        if length >= 2:
            out += [Breath(start, "in", inhale), Breath(start + inhale, "out", length - inhale)]
        start += length
    return out


@dataclass(frozen=True)
class Choice:
    """Why a scene sounds as it does under ``--soundscape auto`` (``soundscape.words``)."""

    place: str
    """The place (or, with ``cue``, the cue) the words named; empty when kept or negated."""
    layers: tuple[str, ...]
    words: tuple[tuple[str, int], ...]
    """Each word as written and its line in the script."""
    level_db: float = 0.0
    """Added to the place's levels (a place named only once beside another)."""
    kept_from: str = ""
    """The earlier scene whose place this one keeps, naming none itself."""
    cue: bool = False
    negated: bool = False
    """Words that would have named a place or cue but were negated ("no wind")."""

    def to_dict(self) -> dict:
        out: dict = {"layers": list(self.layers)}
        if self.place:
            out["cue" if self.cue else "place"] = self.place
        if self.words:
            out["words"] = [{"word": w, "line": n} for w, n in self.words]
        if self.level_db:
            out["level_db"] = self.level_db
        if self.kept_from:
            out["kept_from"] = self.kept_from
        if self.negated:
            out["negated"] = True
        return out


@dataclass(frozen=True)
class SceneSpan:
    """A scene's place on the track."""

    name: str
    start: int
    end: int
    layers: tuple[str, ...] = ()
    why: tuple[Choice, ...] = ()
    """With ``--soundscape auto``: the words that chose its layers."""


@dataclass(frozen=True)
class LayerLevels:
    """A layer's level over the track: breakpoints in seconds and dB relative to the narration."""

    name: str
    times_s: tuple[float, ...]
    levels_db: tuple[float, ...]
    """Level at each breakpoint, linear in between; -inf where the layer is silent."""
    cues_s: tuple[float, ...] = ()
    """One-off events (a bell strike) of the layer."""
    cue_actions: tuple[str, ...] = ()
    """What each of ``cues_s`` does (``strike``, ``beats``, ``glide``, ``in``…), for the plot."""
    frequency_hz: tuple[tuple[float, float], ...] = ()
    """A beats layer's beat frequency over the track: (seconds, hertz) breakpoints, linear in between."""


@dataclass(frozen=True)
class Timeline:
    """The finished layout of a track."""

    sample_rate: int
    length: int
    segments: tuple[Segment, ...]
    """The spoken segments, in order (silent plan entries are not listed)."""
    scenes: tuple[SceneSpan, ...]
    breaths: tuple[Breath, ...] = ()
    """Phases of every guided breathing exercise, in order."""
    layer_levels: tuple[LayerLevels, ...] = ()
    """Each soundscape layer's planned level over the track (filled in by the soundscape plan)."""
    settled: int | None = None
    """For a layout made while speech is still being synthesized: every sample before this one is final
    (speech, pauses, scene starts, breaths); after it, positions are lower bounds. None: all final."""

    @property
    def complete(self) -> bool:
        return self.settled is None

    @property
    def duration_s(self) -> float:
        return self.length / self.sample_rate

    def to_dict(self) -> dict:
        """The ``--timings`` JSON structure, times in seconds."""
        sr = self.sample_rate
        return {
            "duration": round(self.length / sr, 4),
            "sample_rate": sr,
            "scenes": [
                {
                    "name": s.name,
                    "start": round(s.start / sr, 4),
                    "end": round(s.end / sr, 4),
                    "layers": list(s.layers),
                    **({"why": [c.to_dict() for c in s.why]} if s.why else {}),
                }
                for s in self.scenes
            ],
            "segments": [
                {
                    "text": g.text,
                    "start": round(g.start / sr, 4),
                    "end": round(g.end / sr, 4),
                    "scene": g.scene,
                    "speaker": g.speaker or NARRATOR,
                    "rate": g.rate,
                    "level_db": g.level_db,
                }
                for g in self.segments
            ],
            # Phase lengths are whole samples: at 44.1 kHz a 4 s phase is exactly 4.0.
            "breaths": [
                {
                    "start": round(b.start / sr, 6),
                    "phase": b.phase,
                    "duration": round(b.length / sr, 6),
                }
                for b in self.breaths
            ],
            "layers": {
                layer.name: {
                    "time": [round(t, 3) for t in layer.times_s],
                    "level_db": [round(d, 2) if d > -1e9 else None for d in layer.levels_db],
                    "cues": [round(t, 3) for t in layer.cues_s],
                    "cue_actions": list(layer.cue_actions),
                    **(
                        {"beat_hz": [[round(t, 3), round(f, 3)] for t, f in layer.frequency_hz]}
                        if layer.frequency_hz
                        else {}
                    ),
                }
                for layer in self.layer_levels
            },
        }


# Trimmed speech keeps up to 30 ms before its first sound (speech.trim_silence):
# a voice with leading silence sounds 30 ms into its segment, one without
# (eSpeak) at once. Starting a cue 15 ms early puts its onset within 15 ms
# of the phase start either way.
_CUE_LEAD_S = 0.015


def layout(
    segments: Sequence[Segment],
    lengths: Sequence[int],
    *,
    sample_rate: int,
    lead_in_s: float,
    tail_s: float,
    scene_names: Sequence[str],
    pause_scale: float = 1.0,
    known: int | None = None,
) -> Timeline:
    """Place planned segments; scene boundaries fall mid-way through the gap between scenes.

    ``lengths`` holds the speech length of each *spoken* segment, in order
    (silent entries of the plan have none). Gaps are multiplied by
    ``pause_scale``; breathing phases are placed exactly, and a spoken cue
    starts ``_CUE_LEAD_S`` before its phase, so the word is heard on it.

    With ``known``, only the first ``known`` lengths are given (speech still
    being synthesized): the rest count as zero, and ``Timeline.settled``
    says up to where the layout is final. Every position only grows with
    the lengths before it, so with zeros each later one is a lower bound;
    the earliest of them (from the first unknown segment on) is where the
    final layout may start to differ.
    """
    given = list(lengths)[:known] if known is not None else list(lengths)
    if known is not None:
        given += [0] * sum(1 for s in segments if s.spoken)
    next_length = iter(given)
    spoken_count = 0
    settled: int | None = None
    sr = sample_rate
    placed: list[Segment] = []  # spoken and silent, in order: scenes are found from both
    reach: list[int] = []  # latest end so far, per placed entry (cues sit inside their exercise)
    breaths: list[Breath] = []
    cursor = int(round(lead_in_s * sr))
    exercise_start = cursor
    spoken_end = 0
    for segment in segments:
        if segment.cue_at_s is not None:
            start = max(
                exercise_start + int(round((segment.cue_at_s - _CUE_LEAD_S) * sr)), spoken_end
            )
            entry = Segment(
                segment.text,
                segment.scene,
                start,
                int(next(next_length)),
                0.0,
                cue_at_s=segment.cue_at_s,
                speaker=segment.speaker,
                rate=segment.rate,
                level_db=segment.level_db,
            )
        else:
            gap = segment.gap_before_s * pause_scale
            cursor += int(round(gap * sr))
            if segment.breathe_s:  # plain [breathe]s paced at the end of the gap
                breaths.extend(_single_breaths(segment.breathe_s, pause_scale, cursor, sr))
            if segment.breaths:
                exercise_start = cursor
                offset = 0.0
                for phase, seconds in segment.breaths:
                    # Boundaries from the running total: the phases tile the exercise exactly.
                    first, offset = cursor + int(round(offset * sr)), offset + seconds
                    breaths.append(Breath(first, phase, cursor + int(round(offset * sr)) - first))
                entry = Segment(
                    "", segment.scene, cursor, breaths[-1].end - cursor, gap, segment.breaths
                )
            else:
                length = int(next(next_length)) if segment.spoken else 0
                entry = Segment(
                    segment.text,
                    segment.scene,
                    cursor,
                    length,
                    gap,
                    rate=segment.rate,
                    level_db=segment.level_db,
                    speaker=segment.speaker,
                )
            cursor = entry.end
        if entry.spoken:
            spoken_end = entry.end
            spoken_count += 1
        if known is not None and (settled is not None or (entry.spoken and spoken_count > known)):
            settled = entry.start if settled is None else min(settled, entry.start)
        placed.append(entry)
        reach.append(max(entry.end, reach[-1] if reach else 0))
    total = max(cursor, reach[-1] if reach else 0) + int(round(tail_s * sr))
    spans: list[SceneSpan] = []
    names = [n for n in dict.fromkeys(scene_names)] or [""]
    firsts: dict[str, int] = {}
    for i, seg in enumerate(placed):
        firsts.setdefault(seg.scene, i)
    starts = []
    for name in names:
        if name not in firsts:
            continue  # a scene with only pauses in it: it has no place of its own
        i = firsts[name]
        if i == 0:
            starts.append((name, 0))
        else:
            prev_end = reach[i - 1]
            starts.append((name, (prev_end + placed[i].start) // 2))
    for k, (name, start) in enumerate(starts):
        end = starts[k + 1][1] if k + 1 < len(starts) else total
        spans.append(SceneSpan(name, start, end))
    spoken = tuple(seg for seg in placed if seg.spoken)
    if known is not None and settled is None:
        settled = total  # everything was known after all
    return Timeline(
        sample_rate=sample_rate,
        length=total,
        segments=spoken,
        scenes=tuple(spans),
        breaths=tuple(breaths),
        settled=None if known is None else settled,
    )


def fit_pause_scale(
    segments: Sequence[Segment],
    lengths: Sequence[int],
    *,
    sample_rate: int,
    lead_in_s: float,
    tail_s: float,
    duration_s: float,
) -> float:
    """The pause scale that makes the track last ``duration_s`` (for 10- and 20-minute cuts of one script).

    ``lengths`` are those of the spoken segments, as for ``layout``; cues and
    breathing exercises are fixed time, like speech.
    """

    spoken = [s for s in segments if s.spoken]
    speech_s = sum(n for s, n in zip(spoken, lengths) if s.cue_at_s is None) / sample_rate
    exercises_s = sum(seconds for s in segments for _, seconds in s.breaths)
    gaps_s = sum(s.gap_before_s for s in segments)
    fixed_s = speech_s + exercises_s + lead_in_s + tail_s
    if gaps_s <= 0:
        raise SettingsError(
            f"cannot change this script's length: it has no pause to stretch (one sentence, no written pause), "
            f"so it lasts {fixed_s:.0f}s with this voice, lead-in and tail; add sentences or a [pause], or set the tail instead",
            setting="duration",
        )
    shortest = fixed_s + 0.25 * gaps_s
    if duration_s < shortest:
        raise SettingsError(
            f"{duration_s:g}s is too short for this script and voice (at least {shortest:.0f}s)",
            setting="duration",
        )
    scale = (duration_s - fixed_s) / gaps_s
    if scale > 20.0:
        raise SettingsError(
            f"{duration_s:g}s would stretch the pauses over 20×; at most {fixed_s + 20 * gaps_s:.0f}s",
            setting="duration",
        )
    return scale
