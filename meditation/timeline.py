"""Stage 4: lay spoken segments and pauses out on the track.

Gaps follow the structure of the text: short between the clauses of a long
sentence, unhurried between sentences, longer between paragraphs, longest
between scenes. A written pause replaces the structural gap when it is
longer. ``pause_scale`` multiplies every gap. Times are kept in samples so
that nothing drifts; the JSON export gives seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .script import Paragraph, Pause, Script
from .segments import segment_paragraph

__all__ = ["Gaps", "Segment", "SceneSpan", "LayerLevels", "Timeline", "plan_segments", "layout", "fit_pause_scale"]

MAX_SEGMENT_S = 15.0
_CHARS_PER_S = 14.0  # measured speaking speed of the default voice at rate 1.0


@dataclass(frozen=True)
class Gaps:
    """Silence between spoken pieces, in seconds, before ``pause_scale``."""

    clause_s: float = 0.5
    """Between the pieces of a long sentence split at a comma or dash."""
    sentence_s: float = 1.8
    """Between sentences: time to take the sentence in."""
    paragraph_s: float = 4.0
    """Between paragraphs: a breath or two."""
    scene_s: float = 8.0
    """Between scenes: time for the soundscape to change."""


@dataclass(frozen=True)
class Segment:
    """One spoken piece of text and where it sits on the track."""

    text: str
    scene: str
    start: int = 0
    """First sample on the final track."""
    length: int = 0
    """Number of samples of speech."""
    gap_before_s: float = 0.0
    """Planned silence before this segment, before ``pause_scale``."""

    @property
    def end(self) -> int:
        return self.start + self.length


@dataclass(frozen=True)
class SceneSpan:
    """A scene's place on the track."""

    name: str
    start: int
    end: int
    layers: tuple[str, ...] = ()


@dataclass(frozen=True)
class LayerLevels:
    """A layer's level over the track: breakpoints in seconds and dB relative to the narration."""

    name: str
    times_s: tuple[float, ...]
    levels_db: tuple[float, ...]
    """Level at each breakpoint, linear in between; -inf where the layer is silent."""
    cues_s: tuple[float, ...] = ()
    """One-off events (a bell strike) of the layer."""


@dataclass(frozen=True)
class Timeline:
    """The finished layout of a track."""

    sample_rate: int
    length: int
    segments: tuple[Segment, ...]
    scenes: tuple[SceneSpan, ...]
    layer_levels: tuple["LayerLevels", ...] = ()
    """Each soundscape layer's planned level over the track (filled in by the soundscape plan)."""

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
                {"name": s.name, "start": round(s.start / sr, 4), "end": round(s.end / sr, 4), "layers": list(s.layers)}
                for s in self.scenes
            ],
            "segments": [
                {"text": g.text, "start": round(g.start / sr, 4), "end": round(g.end / sr, 4), "scene": g.scene}
                for g in self.segments
            ],
            "layers": {
                l.name: {"time": [round(t, 3) for t in l.times_s], "level_db": [round(d, 2) if d > -1e9 else None for d in l.levels_db], "cues": [round(t, 3) for t in l.cues_s]}
                for l in self.layer_levels
            },
        }

    def write_json(self, path: Path) -> None:
        """Write the timings JSON atomically."""
        from .export import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")


def max_chars_for(rate: float) -> int:
    """Longest segment, in characters, that stays under MAX_SEGMENT_S at this rate."""
    return max(40, int(_CHARS_PER_S * rate * (MAX_SEGMENT_S - 3.0)))


def plan_segments(script: Script, *, rate: float, gaps: Gaps = Gaps()) -> list[Segment]:
    """The script as segments in speaking order, each with the silence planned before it (unscaled)."""
    planned: list[Segment] = []
    max_chars = max_chars_for(rate)
    pending_gap = 0.0  # structural gap before the next segment
    written = 0.0  # written pauses since the last segment
    for scene_index, scene in enumerate(script.scenes):
        if scene_index > 0 and planned:
            pending_gap = max(pending_gap, gaps.scene_s)
        for item in scene.items:
            if isinstance(item, Pause):
                written += item.seconds
                continue
            assert isinstance(item, Paragraph)
            for s_index, pieces in enumerate(segment_paragraph(item.text, max_chars=max_chars)):
                for p_index, piece in enumerate(pieces):
                    if planned:
                        if p_index > 0:
                            structural = gaps.clause_s
                        elif s_index > 0 or (item.continues and not pending_gap):
                            structural = gaps.sentence_s
                        else:
                            structural = max(pending_gap, gaps.paragraph_s)
                        gap = max(structural, written)
                    else:
                        gap = 0.0
                    planned.append(Segment(text=piece, scene=scene.name, gap_before_s=gap))
                    pending_gap, written = 0.0, 0.0
    return planned


def layout(
    segments: Sequence[Segment],
    lengths: Sequence[int],
    *,
    sample_rate: int,
    lead_in_s: float,
    tail_s: float,
    scene_names: Sequence[str],
    pause_scale: float = 1.0,
) -> Timeline:
    """Place segments of known lengths; scene boundaries fall mid-way through the gap between scenes."""
    placed: list[Segment] = []
    cursor = int(round(lead_in_s * sample_rate))
    for segment, length in zip(segments, lengths):
        cursor += int(round(segment.gap_before_s * pause_scale * sample_rate))
        placed.append(Segment(segment.text, segment.scene, cursor, int(length), segment.gap_before_s * pause_scale))
        cursor += int(length)
    total = cursor + int(round(tail_s * sample_rate))
    spans: list[SceneSpan] = []
    names = [n for n in dict.fromkeys(scene_names)] or [""]
    firsts = {}
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
            prev_end = placed[i - 1].end
            starts.append((name, (prev_end + placed[i].start) // 2))
    for k, (name, start) in enumerate(starts):
        end = starts[k + 1][1] if k + 1 < len(starts) else total
        spans.append(SceneSpan(name, start, end))
    return Timeline(sample_rate=sample_rate, length=total, segments=tuple(placed), scenes=tuple(spans))


def fit_pause_scale(segments: Sequence[Segment], lengths: Sequence[int], *, sample_rate: int, lead_in_s: float, tail_s: float, duration_s: float) -> float:
    """The pause scale that makes the track last ``duration_s`` (for 10- and 20-minute cuts of one script)."""
    from .errors import SettingsError

    speech_s = sum(lengths) / sample_rate
    gaps_s = sum(s.gap_before_s for s in segments)
    fixed_s = speech_s + lead_in_s + tail_s
    shortest = fixed_s + 0.25 * gaps_s
    if duration_s < shortest or gaps_s <= 0:
        raise SettingsError(f"--duration {duration_s:g}s is too short for this script and voice (at least {shortest:.0f}s)")
    scale = (duration_s - fixed_s) / gaps_s
    if scale > 20.0:
        raise SettingsError(f"--duration {duration_s:g}s would stretch the pauses over 20×; at most {fixed_s + 20 * gaps_s:.0f}s")
    return scale
