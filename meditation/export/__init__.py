"""Stage 7: write the finished audio, atomically, tagged — ``AudioWriter`` and what it needs.

- ``writer``: the atomic writer (temporary file, encode, tag, rename);
- ``encoders``: one encoder per format family, registered by suffix in ``meditation.formats``;
- ``tags``: cover art, metadata and chapters as each format carries them.

Text and picture side files are written atomically by ``meditation.files``.
"""

from __future__ import annotations

from ..files import atomic_write_bytes, atomic_write_text
from ..formats import ENCODERS
from .tags import Cover, Metadata, load_cover
from .writer import AudioWriter

__all__ = [
    "AudioWriter",
    "ENCODERS",
    "Cover",
    "Metadata",
    "load_cover",
    "atomic_write_text",
    "atomic_write_bytes",
]
