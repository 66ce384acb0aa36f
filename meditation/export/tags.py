"""What a finished file says about itself: tags, chapters and cover art.

Added with mutagen once the audio is complete (ID3v2 for MP3, MP4 atoms for
M4A/M4B, Vorbis comments and pictures for FLAC, Ogg and Opus; M4A/M4B chapters
excepted: the muxer writes them). WAV stays plain.
"""

from __future__ import annotations

import base64
import functools
import io
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..chapters import Chapter, vorbis_chapter_comments
from ..errors import ExportError, SettingsError
from ..files import InputError, read_input

__all__ = ["Cover", "Metadata", "load_cover", "tag"]


@dataclass(frozen=True)
class Cover:
    """A checked cover image, ready to embed."""

    data: bytes
    mime: str
    """``image/png`` or ``image/jpeg``."""
    width: int
    height: int
    depth: int
    """Bits per pixel (for FLAC picture blocks)."""


@dataclass(frozen=True)
class Metadata:
    """What a finished file says about itself."""

    title: str | None = None
    artist: str | None = None
    album: str | None = None
    """Defaults to the title."""
    genre: str | None = "Meditation"
    year: int | None = None
    comment: str | None = None
    """How it was made: voice, rate, soundscape, seed, version."""
    chapters: tuple[Chapter, ...] = ()
    cover: Cover | None = None


MAX_COVER_BYTES = 50_000_000
"""Largest cover file read: a 10000×10000 photograph as JPEG or PNG is far smaller."""

MAX_COVER_SIDE = 10_000
"""Largest width or height in pixels: players show a few hundred; more only bloats every copy of the file."""


def load_cover(path: Path) -> Cover:
    """Read and check a PNG or JPEG cover image; raise SettingsError in one line if it is not one.

    Checked before any synthesis, so a bad image costs nothing. The file is
    read with a size cap (``files.read_input``), its dimensions are taken from
    the header before a pixel is decoded (a decompression bomb is refused as
    too large), and then it must decode completely (Pillow). The last few
    are kept by file identity: a batch checks one cover for every variant.
    """
    try:
        st = os.stat(path)
        stamp = (os.path.abspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    except OSError:
        stamp = None
    if stamp is None or not stat.S_ISREG(st.st_mode):
        return _load_cover(Path(path))
    return _load_cover_once(Path(path), stamp)


@functools.lru_cache(maxsize=2)
def _load_cover_once(path: Path, stamp: tuple) -> Cover:
    return _load_cover(path)


def _load_cover(path: Path) -> Cover:
    try:
        data = read_input(path, "cover image", MAX_COVER_BYTES)
    except InputError as exc:
        raise SettingsError(str(exc)) from None
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        mime, kind = "image/png", "PNG"
    elif data.startswith(b"\xff\xd8\xff"):
        mime, kind = "image/jpeg", "JPEG"
    else:
        raise SettingsError(f"cover image {str(path)!r} is not a PNG or JPEG file")
    size = _png_size(data) if kind == "PNG" else _jpeg_size(data)
    if size is None:
        raise SettingsError(f"cover image {str(path)!r} is a damaged {kind} file")
    width, height = size
    if not (1 <= width <= MAX_COVER_SIDE and 1 <= height <= MAX_COVER_SIDE):
        raise SettingsError(
            f"cover image {str(path)!r} is {width}×{height} pixels; "
            f"use at most {MAX_COVER_SIDE}×{MAX_COVER_SIDE}"
        )
    from PIL import Image  # noqa: PLC0415 - start-up: ~7 ms, and only a cover needs it

    try:
        # Within our own bound (above), Pillow's bomb warning would only repeat it.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # decode every pixel: a truncated or corrupt file fails here
                depth = {
                    "1": 1,
                    "L": 8,
                    "P": 8,
                    "RGB": 24,
                    "RGBA": 32,
                    "CMYK": 32,
                    "I;16": 16,
                    "LA": 16,
                }.get(image.mode, 24)
                if image.format != kind or image.size != (width, height):
                    raise ValueError(image.format)
    except Exception:
        raise SettingsError(f"cover image {str(path)!r} is a damaged {kind} file") from None
    return Cover(data, mime, width, height, depth)


def _png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk, which must come first."""
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a JPEG's first start-of-frame segment, walking the segments before it."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 9 > len(data):
                return None
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return width, height
        if length < 2:
            return None
        i += 2 + length
    return None


def tag(path: Path, metadata: Metadata) -> None:
    """Tags, chapters and cover where the format carries them (ID3v2, MP4 atoms, Vorbis comments); WAV stays plain."""
    suffix = path.suffix.lower()
    if suffix == ".wav":
        return  # RIFF INFO tags are poorly supported by players; keep WAV plain and exact
    fields = {
        "title": metadata.title,
        "artist": metadata.artist,
        "album": metadata.album or metadata.title,
        "genre": metadata.genre,
        "date": str(metadata.year) if metadata.year else None,
        "comment": metadata.comment,
    }
    fields = {k: v for k, v in fields.items() if v}
    if not fields and not metadata.chapters and metadata.cover is None:
        return
    if suffix == ".mp3":
        _tag_id3(path, fields, metadata)
    elif suffix in (".m4a", ".m4b"):
        _tag_mp4(path, fields, metadata)
    else:
        _tag_vorbis(path, fields, metadata)


def _tag_id3(path: Path, fields: dict, metadata: Metadata) -> None:
    from mutagen.id3 import (  # noqa: PLC0415 - start-up: mutagen takes ~10 ms, and WAV never needs it
        APIC,
        CHAP,
        COMM,
        CTOC,
        ID3,
        TALB,
        TCON,
        TDRC,
        TIT2,
        TPE1,
        CTOCFlags,
    )

    frames = {"title": TIT2, "artist": TPE1, "album": TALB, "genre": TCON, "date": TDRC}
    tags = ID3()
    for key, frame in frames.items():
        if key in fields:
            tags.add(frame(encoding=3, text=fields[key]))
    if "comment" in fields:
        tags.add(COMM(encoding=3, lang="eng", desc="", text=fields["comment"]))
    if metadata.cover is not None:
        tags.add(
            APIC(
                encoding=3, mime=metadata.cover.mime, type=3, desc="Cover", data=metadata.cover.data
            )
        )
    if metadata.chapters:
        ids = _chapter_ids(metadata.chapters)
        tags.add(
            CTOC(
                element_id="toc",
                flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED,
                child_element_ids=ids,
                sub_frames=[TIT2(encoding=3, text="Chapters")],
            )
        )
        for element_id, chapter in zip(ids, metadata.chapters):
            tags.add(
                CHAP(
                    element_id=element_id,
                    start_time=int(round(chapter.start_s * 1000)),
                    end_time=int(round(chapter.end_s * 1000)),
                    sub_frames=[TIT2(encoding=3, text=chapter.title)],
                )
            )
    tags.save(str(path), v2_version=4)


def _chapter_ids(chapters: tuple[Chapter, ...]) -> list[str]:
    """CHAP element IDs that keep the frames in time order in the file.

    ffmpeg and many players list ID3 chapters in file order, and mutagen
    writes frames of one kind shortest first; so each ID is padded just
    enough that every chapter's frame is longer than the one before.
    """
    ids, previous = [], -1
    for i, chapter in enumerate(chapters):
        base = f"chp{i}"
        size = len(chapter.title.encode("utf-8")) + len(base)
        pad = max(0, previous + 1 - size)
        ids.append(base + "_" * pad)
        previous = size + pad
    return ids


def _tag_mp4(path: Path, fields: dict, metadata: Metadata) -> None:
    atoms = {
        "title": "\xa9nam",
        "artist": "\xa9ART",
        "album": "\xa9alb",
        "genre": "\xa9gen",
        "date": "\xa9day",
        "comment": "\xa9cmt",
    }
    from mutagen.mp4 import MP4, MP4Cover  # noqa: PLC0415 - start-up: as in _tag_id3

    audio = MP4(str(path))
    if audio.tags is None:
        audio.add_tags()
    # Through the file (mutagen's FileType.__setitem__ sets its tags), whose type says they exist.
    for key, atom in atoms.items():
        if key in fields:
            audio[atom] = [fields[key]]
    if metadata.cover is not None:
        kind = MP4Cover.FORMAT_PNG if metadata.cover.mime == "image/png" else MP4Cover.FORMAT_JPEG
        audio["covr"] = [MP4Cover(metadata.cover.data, imageformat=kind)]
    audio.save()


def _tag_vorbis(path: Path, fields: dict, metadata: Metadata) -> None:
    """FLAC, Ogg Vorbis and Ogg Opus: Vorbis comments, the CHAPTERnnn convention, and a picture."""
    import mutagen  # noqa: PLC0415 - start-up: as in _tag_id3
    from mutagen.flac import FLAC, Picture  # noqa: PLC0415 - start-up: as in _tag_id3

    audio = mutagen.File(str(path))
    if audio is None:
        raise ExportError(f"cannot tag {path.name}: not a file mutagen recognizes")
    if audio.tags is None:
        audio.add_tags()
    for key, value in fields.items():
        audio.tags[key] = [value]
    for key, value in vorbis_chapter_comments(metadata.chapters).items():
        audio.tags[key] = [value]
    if metadata.cover is not None:
        picture = Picture()
        picture.type = 3  # front cover
        picture.mime = metadata.cover.mime
        picture.desc = "Cover"
        picture.width, picture.height, picture.depth = (
            metadata.cover.width,
            metadata.cover.height,
            metadata.cover.depth,
        )
        picture.data = metadata.cover.data
        if isinstance(audio, FLAC):
            audio.add_picture(picture)
        else:
            audio.tags["metadata_block_picture"] = [
                base64.b64encode(picture.write()).decode("ascii")
            ]
    # No padding: ffmpeg reads zero bytes after an Ogg comment packet as
    # "N bytes of comment header remain" on every file. The tags are written
    # once, so room to grow them in place buys nothing.
    audio.save(padding=lambda _info: 0)
