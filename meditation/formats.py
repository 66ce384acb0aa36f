"""The output formats, by file suffix: declared here, at the bottom, so any stage can ask.

``settings`` checks an output's suffix against this table without importing
the encoders; each encoder (``meditation.export.encoders``) registers itself
for the suffixes it writes with :func:`register_encoder`, and the writer looks
it up with :func:`encoder_for`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["FORMATS", "ENCODERS", "register_encoder", "encoder_for", "known_suffixes"]

FORMATS: dict[str, str] = {
    ".flac": "FLAC",
    ".m4a": "M4A",
    ".m4b": "M4B",
    ".mp3": "MP3",
    ".ogg": "OGG",
    ".opus": "OPUS",
    ".wav": "WAV",
}
"""Every output format by its suffix, in sorted order."""

ENCODERS: dict[str, Callable[..., Any]] = {}
"""Encoder classes by suffix, filled in as `meditation.export` is imported."""


def known_suffixes() -> str:
    """The suffixes, for messages: ``.flac, .m4a, ...``."""
    return ", ".join(FORMATS)


def register_encoder(*suffixes: str) -> Callable[[type], type]:
    """Class decorator: the encoder that writes ``suffixes`` (each declared in ``FORMATS``)."""

    def decorate(cls: type) -> type:
        for suffix in suffixes:
            if suffix not in FORMATS:
                raise ValueError(f"{suffix} is not declared in meditation.formats.FORMATS")
            ENCODERS[suffix] = cls
        return cls

    return decorate


def encoder_for(suffix: str) -> Callable[..., Any] | None:
    """The encoder class registered for ``suffix`` (lower case), or None."""
    return ENCODERS.get(suffix)
