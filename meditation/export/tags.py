"""What a finished file says about itself: tags, chapters and cover art.

Added with mutagen once the audio is complete (ID3v2 for MP3, MP4 atoms for
M4A/M4B, Vorbis comments and pictures for FLAC, Ogg and Opus; M4A/M4B chapters
excepted: the muxer writes them). WAV stays plain.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

import mutagen
from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, CHAP, COMM, CTOC, ID3, TALB, TCON, TDRC, TIT2, TPE1, CTOCFlags
from mutagen.mp4 import MP4, MP4Cover
from PIL import Image

from ..chapters import Chapter, vorbis_chapter_comments
from ..errors import ExportError, SettingsError

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


def load_cover(path: Path) -> Cover:
    """Read and check a PNG or JPEG cover image; raise SettingsError in one line if it is not one.

    Checked before any synthesis, so a bad image costs nothing. The image
    must decode completely (Pillow), not just start with the right bytes.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SettingsError(f"cover image {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise SettingsError(f"cover image {str(path)!r} is a folder") from None
    except OSError as exc:
        raise SettingsError(f"cover image {str(path)!r} cannot be read: {exc.strerror}") from None
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        mime, kind = "image/png", "PNG"
    elif data.startswith(b"\xff\xd8\xff"):
        mime, kind = "image/jpeg", "JPEG"
    else:
        raise SettingsError(f"cover image {str(path)!r} is not a PNG or JPEG file")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # decode every pixel: a truncated or corrupt file fails here
            width, height = image.size
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
            if image.format != kind:
                raise ValueError(image.format)
    except Exception:
        raise SettingsError(f"cover image {str(path)!r} is a damaged {kind} file") from None
    if not (1 <= width <= 10000 and 1 <= height <= 10000):
        raise SettingsError(
            f"cover image {str(path)!r} is {width}×{height} pixels; use at most 10000×10000"
        )
    return Cover(data, mime, width, height, depth)


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
