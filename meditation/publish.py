"""Stage 8: make a render a finished publication — tags, chapters, cover, captions, timings, a picture of the plan.

``prepare`` checks the inputs and output paths these need (cover image,
captions and plot paths, matplotlib) before anything is synthesized, so a
bad one costs nothing; ``metadata`` says what the audio file will carry;
``finish`` writes the side files once the audio is in place.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .captions import check_captions_path, write_captions
from .chapters import chapters_from_timeline
from .errors import SettingsError
from .export import Cover, Metadata, load_cover
from .files import atomic_write_text
from .plot import check_plot_path, loudness_of_file, write_plot
from .settings import RenderSettings
from .timeline import Timeline

__all__ = ["Publication", "beside_output", "prepare", "metadata", "finish"]

# A bare format name (a manifest's `captions = "vtt"`, `plot = true`) means: beside the output, same name.
_BESIDE_OUTPUT = {
    "captions": {"vtt": ".vtt", "srt": ".srt", "true": ".vtt"},
    "plot": {"png": ".png", "svg": ".svg", "pdf": ".pdf", "true": ".png"},
}


@dataclass(frozen=True)
class Publication:
    """What ``prepare`` checked and loaded."""

    cover: Cover | None = None


def beside_output(settings: RenderSettings) -> RenderSettings:
    """Settings with shorthand captions/plot values (``vtt``, ``png``, ``true``) turned into files beside the output."""
    changes: dict[str, Any] = {}  # setting name -> new value, for dataclasses.replace
    for name, formats in _BESIDE_OUTPUT.items():
        value = getattr(settings, name)
        if value is not None and value.parent == Path(".") and value.name.lower() in formats:
            changes[name] = settings.output.with_suffix(formats[value.name.lower()])
    return dataclasses.replace(settings, **changes) if changes else settings


def prepare(settings: RenderSettings) -> Publication:
    """Check every publication input and output path; raise a one-line error before any synthesis."""
    if settings.cover is not None and settings.output.suffix.lower() == ".wav":
        # WAV stays plain (see export.tags): the cover would be read and dropped without a word.
        raise SettingsError(
            f"--cover: a WAV file carries no cover art; write .mp3, .m4a, .m4b, .flac, .ogg "
            f"or .opus, or leave out the cover (output {str(settings.output)!r})"
        )
    cover = load_cover(settings.cover) if settings.cover is not None else None
    if settings.captions is not None:
        check_captions_path(settings.captions)
    if settings.plot is not None:
        check_plot_path(settings.plot)
    return Publication(cover)


def metadata(
    publication: Publication,
    settings: RenderSettings,
    *,
    title: str,
    timeline: Timeline | None,
    soundscape: str,
    spoken: bool = True,
) -> Metadata:
    """Tags for the audio file: title, artist, album, genre, year, how it was made, chapters and cover.

    The comment names only what made the track: an ambient one (``spoken=False``) has no voice or rate.
    """
    voice = ""
    if spoken:  # the rate the voice spoke at (a render sets it), and the pace it was chosen for
        wpm = f" for {settings.wpm:g} wpm" if settings.wpm else ""
        voice = f"voice {settings.voice}, rate {settings.rate:g}{wpm}, "
        if settings.speakers:  # the narrator's voice above speaks only the unmarked text
            voice += f"speakers ({settings.speakers}), "
    made = f"{voice}soundscape {soundscape}, seed {settings.seed}, meditation {__version__}"
    chapters = (
        chapters_from_timeline(timeline) if timeline is not None and settings.chapters else ()
    )
    return Metadata(
        title=title,
        artist=settings.artist,
        album=settings.album or title,
        genre="Meditation",
        year=_year(),
        comment=made,
        chapters=chapters,
        cover=publication.cover,
    )


def finish(
    settings: RenderSettings, timeline: Timeline, *, voice: Sequence[np.ndarray] | None, title: str
) -> None:
    """Write the captions, the timings (with the finished track's loudness) and the plot, each atomically."""
    if settings.captions is not None and voice is not None:
        write_captions(settings.captions, timeline, voice)
    plot_path = settings.plot
    if settings.timings is None and plot_path is None:
        return
    timings = timeline.to_dict()
    timings["title"] = title
    # What makes this render again bit for bit (with --vary: the night's own seed).
    timings["seed"] = settings.seed
    timings["vary"] = settings.vary
    timings["loudness"] = loudness_of_file(settings.output, target_lufs=settings.loudness_lufs)
    if settings.timings is not None:
        atomic_write_text(
            settings.timings, json.dumps(timings, indent=2, ensure_ascii=False) + "\n"
        )
    if plot_path is not None:
        write_plot(timings, plot_path, title=title)


def _year() -> int:
    """This year, or the year of SOURCE_DATE_EPOCH for reproducible builds."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    seconds = float(epoch) if epoch and epoch.isdigit() else time.time()
    return time.gmtime(seconds).tm_year
