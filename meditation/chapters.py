"""Chapters: one per named scene, where the timeline says the scene starts.

Times are seconds on the decoded track: every encoder here is gapless (MP3
through its LAME tag, AAC through the MP4 edit list, Opus through its
pre-skip), so a time on the timeline is the same time in any player.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .timeline import Timeline

__all__ = ["Chapter", "chapters_from_timeline", "vorbis_chapter_comments"]


@dataclass(frozen=True)
class Chapter:
    """One chapter of a published track."""

    title: str
    start_s: float
    end_s: float


def chapters_from_timeline(timeline: Timeline) -> tuple[Chapter, ...]:
    """A chapter per named scene, in order; none for a script without scene headings.

    An unnamed opening (text before the first heading) belongs to the first
    chapter, which always starts at 0 so players show it from the first second.
    """
    sr = timeline.sample_rate
    named = [s for s in timeline.scenes if s.name]
    chapters = []
    for i, scene in enumerate(named):
        start = 0 if i == 0 else scene.start
        end = named[i + 1].start if i + 1 < len(named) else timeline.length
        chapters.append(Chapter(scene.name, start / sr, end / sr))
    return tuple(chapters)


def vorbis_chapter_comments(chapters: tuple[Chapter, ...]) -> dict[str, str]:
    """The Ogg chapter convention as Vorbis comments: ``CHAPTER001=00:00:00.000``, ``CHAPTER001NAME=...``."""
    comments = {}
    for number, chapter in enumerate(chapters, start=1):
        key = f"CHAPTER{number:03d}"
        comments[key] = _clock(chapter.start_s)
        comments[key + "NAME"] = chapter.title
    return comments


def _clock(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"
