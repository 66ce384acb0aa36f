"""The quick render the tests make of a short script: the pyttsx3 voice, no soundscape, a second
of silence either side, no progress bar."""

from __future__ import annotations

from meditation.cli import main

QUICK = ("--voice", "pyttsx3", "--soundscape", "none", "--lead-in", "1", "--tail", "1")
QUICK += ("--progress", "off")


def quick_render(script, out, *extra: str) -> int:
    """``meditation render SCRIPT -o OUT`` with the quick settings and ``extra``; its exit status."""
    return main(["render", str(script), *QUICK, "-o", str(out), *extra])
