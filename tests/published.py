"""Renders of the dream as finished publications, made once per test session and shared by test modules.

A module-level cache rather than a fixture: test_chapters, test_captions,
test_plot and test_dream all look at the same renders, and a fixture imported into several
modules would render once per module.
"""

from __future__ import annotations

import json
from pathlib import Path

from meditation.cli import main

DREAM = Path(__file__).resolve().parent.parent / "scripts" / "dream.md"
DREAM_SCENES = (
    "The library",
    "The book of my life",
    "The valley and the river",
    "The phoenix",
    "The flight",
    "Observer and observed",
    "The awakening",
)

_renders: dict[str, dict] = {}
# Formats only looked at for their chapters, cover and clean decoding, none of which depends on
# the sample rate: rendered at 16 kHz, they cost half as much.
_CHAPTERS_ONLY = (".opus", ".ogg", ".flac")
_CHAPTERS_ONLY_RATE = 16000


def cover_png(path: Path) -> Path:
    from PIL import Image

    image = Image.linear_gradient("L").convert("RGB").resize((96, 96))
    image.save(path, "PNG")
    return path


def dream_render(tmp_path_factory, suffix: str) -> dict:
    """The dream (pyttsx3 voice) rendered to ``suffix`` with cover, timings, stems, captions and plot beside it."""
    if suffix not in _renders:
        folder = tmp_path_factory.mktemp(f"published-{suffix.strip('.')}")
        out = folder / f"dream{suffix}"
        paths = {
            "output": out,
            "cover": cover_png(folder / "art.png"),
            "timings": folder / "dream.json",
            "stems": folder / "stems",
            "vtt": folder / "dream.vtt",
            "plot": folder / "plan.png",
        }
        args = [
            "render",
            str(DREAM),
            "--voice",
            "pyttsx3",
            "-o",
            str(out),
            "--cover",
            str(paths["cover"]),
        ]
        args += ["--timings", str(paths["timings"]), "--progress", "off"]
        if suffix == ".mp3":
            # test_dream measures the mix through its stems (with the voice's room, as heard),
            # with eSpeak at the dream's former pace: those tests are about its soundscape.
            args += ["--stems", str(paths["stems"]), "--rate", "0.8"]
        elif suffix in _CHAPTERS_ONLY:
            args += ["--sample-rate", str(_CHAPTERS_ONLY_RATE)]
        if (
            suffix == ".m4b"
        ):  # the full publication once; the other formats only need their chapters and cover
            args += [
                "--stems",
                str(paths["stems"]),
                "--captions",
                str(paths["vtt"]),
                "--plot",
                str(paths["plot"]),
            ]
            # A dry voice stem (no room reverb): measured before a cue, it holds only that segment's
            # speech, not the previous segment's reverb tail ringing on through a 0.5 s clause gap.
            args += ["--voice-fx", "none"]
        assert main(args) == 0
        timings = json.loads(paths["timings"].read_text(encoding="utf-8"))
        _renders[suffix] = {**paths, "timings_data": timings}
    return _renders[suffix]
