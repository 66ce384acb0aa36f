"""Keep: scripts, settings and manifests as files inside the studio's folder, and nowhere else.

Every path the page sends is relative to the folder given with ``--dir``.
Absolute paths, ``..`` and anything that resolves outside the folder (a
symbolic link pointing out) are refused, as are hidden files and kinds of
file the studio has no business with.
"""

from __future__ import annotations

import functools
import os
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import tomli_w

from ..batch import expand_manifest
from ..errors import MeditationError, SoundscapeError
from ..files import check_replaceable, record_written
from ..soundscape import load_preset
from ..tomlfile import read_toml

__all__ = [
    "FileRefused",
    "safe_path",
    "list_files",
    "list_presets",
    "list_inputs",
    "read_text",
    "write_text",
    "save_settings",
    "read_settings",
    "add_variant",
    "save_preset",
]

SCRIPT_SUFFIXES = (".md", ".txt")
SETTINGS_SUFFIXES = (".toml",)
MAX_FILE_BYTES = 1_000_000


class FileRefused(MeditationError):
    """A path outside the folder, or a file the studio will not touch."""

    def __init__(self, message: str, status: int = 403):
        super().__init__(message)
        self.status = status


def safe_path(
    root: Path, relative: str, suffixes: tuple[str, ...] = SCRIPT_SUFFIXES + SETTINGS_SUFFIXES
) -> Path:
    """``relative`` inside ``root``, or FileRefused."""
    text = str(relative).replace("\\", "/")
    pure = PurePosixPath(text)
    if (
        not text
        or "\x00" in text
        or pure.is_absolute()
        or text.startswith("~")
        or (len(text) > 1 and text[1] == ":")
    ):
        raise FileRefused(f"{relative!r}: only paths inside the studio folder are allowed")
    if any(part in ("..", "") for part in text.split("/")) or any(
        part.startswith(".") for part in pure.parts
    ):
        raise FileRefused(
            f"{relative!r}: only plain paths inside the studio folder are allowed (no '..', no hidden files)"
        )
    if pure.suffix.lower() not in suffixes:
        raise FileRefused(
            f"{relative!r}: the studio only reads and writes {', '.join(suffixes)} files",
            status=400,
        )
    base = root.resolve()
    path = base.joinpath(*pure.parts)
    resolved = path.resolve()
    if resolved != base and base not in resolved.parents:
        raise FileRefused(f"{relative!r} leads outside the studio folder")
    return path


@functools.cache
def new_file_mode() -> int:
    """The mode a new file gets from ``open`` under this process's umask (0644 under the usual 022).

    ``mkstemp`` makes its files 0600 whatever the umask; a saved file is then
    given this mode, as an editor's would be. Read once, at the first save.
    """
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def list_files(root: Path) -> list[dict]:
    """Scripts and settings in the folder and its sub-folders (not hidden ones, not through links out)."""
    base = root.resolve()
    found = []
    for folder, dirs, files in os.walk(base):
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".") and (Path(folder) / d).resolve().is_relative_to(base)
        )
        for name in sorted(files):
            path = Path(folder) / name
            if (
                name.startswith(".")
                or path.suffix.lower() not in SCRIPT_SUFFIXES + SETTINGS_SUFFIXES
            ):
                continue
            if not path.resolve().is_relative_to(base):
                continue
            kind = "script" if path.suffix.lower() in SCRIPT_SUFFIXES else "settings"
            found.append({"path": path.relative_to(base).as_posix(), "kind": kind})
        if len(found) > 2000:
            break
    return found


def read_text(root: Path, relative: str, suffixes=SCRIPT_SUFFIXES + SETTINGS_SUFFIXES) -> str:
    """The text of a file in the folder."""
    path = safe_path(root, relative, suffixes)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise FileRefused(f"{relative}: larger than {MAX_FILE_BYTES // 1000} kB", status=413)
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FileRefused(f"{relative}: no such file", status=404) from None
    except IsADirectoryError:
        raise FileRefused(f"{relative}: is a folder", status=400) from None
    except UnicodeDecodeError:
        raise FileRefused(f"{relative}: not UTF-8 text", status=400) from None


def write_text(
    root: Path,
    relative: str,
    text: str,
    *,
    overwrite: bool,
    suffixes=SCRIPT_SUFFIXES + SETTINGS_SUFFIXES,
) -> Path:
    """Write atomically (temporary file, then rename); an existing file is replaced only with ``overwrite``."""
    path = safe_path(root, relative, suffixes)
    if path.is_dir():
        raise FileRefused(f"{relative}: is a folder", status=400)
    if path.exists() and not overwrite:
        raise FileRefused(f"{relative} exists", status=409)
    if not path.parent.is_dir():
        raise FileRefused(
            f"{relative}: folder {path.parent.relative_to(root.resolve()).as_posix()!r} does not exist",
            status=400,
        )
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(temp, path.stat().st_mode & 0o777 if path.exists() else new_file_mode())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def _toml_values(values: Mapping[str, Any]) -> dict:
    return {k: v for k, v in values.items() if v is not None and v != ""}


def save_settings(
    root: Path, relative: str, values: Mapping[str, Any], *, script: str, fmt: str, overwrite: bool
) -> Path:
    """Settings as a one-render manifest (``[defaults]`` only): ``meditation batch`` renders it as it is."""
    document = {
        "output": f"{{script}}.{fmt}",
        "defaults": {"script": script, **_toml_values(values)},
    }
    return write_text(
        root, relative, tomli_w.dumps(document), overwrite=overwrite, suffixes=SETTINGS_SUFFIXES
    )


def read_settings(root: Path, relative: str) -> dict:
    """The settings saved by ``save_settings`` (a manifest's ``[defaults]``), script and format included."""
    text = read_text(root, relative, SETTINGS_SUFFIXES)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FileRefused(f"{relative}: {exc}", status=400) from None
    defaults = dict(data.get("defaults", {}))
    output = str(data.get("output", ""))
    return {
        "script": defaults.pop("script", None),
        "format": Path(output).suffix.lstrip(".") or None,
        "values": defaults,
    }


def add_variant(
    root: Path, relative: str, values: Mapping[str, Any], *, script: str, name: str, fmt: str
) -> tuple[Path, int]:
    """Append a ``[[variants]]`` entry to a manifest (made if missing); refused if the result would not load.

    Returns the manifest and how many variants it now describes.
    """
    path = safe_path(root, relative, SETTINGS_SUFFIXES)
    old = (
        read_text(root, relative, SETTINGS_SUFFIXES)
        if path.exists()
        else f'output = "{{name}}.{fmt}"\n'
    )
    entry = {
        "name": name,
        "script": os.path.relpath(safe_path(root, script, SCRIPT_SUFFIXES), path.parent),
        **_toml_values(values),
    }
    new = old.rstrip("\n") + "\n\n[[variants]]\n" + tomli_w.dumps(entry)
    # Check the manifest as `meditation batch` would, from a temporary file beside it.
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".toml")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(new)
        count = len(expand_manifest(temp, validate=False))
    finally:
        Path(temp).unlink(missing_ok=True)
    write_text(root, relative, new, overwrite=True, suffixes=SETTINGS_SUFFIXES)
    return path, count


def list_inputs(root: Path, suffixes: tuple[str, ...]) -> list[str]:
    """Relative paths of the folder's files with these suffixes (cover images, recordings)."""
    base = root.resolve()
    found = []
    for folder, dirs, names in os.walk(base):
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".") and (Path(folder) / d).resolve().is_relative_to(base)
        )
        for name in sorted(names):
            path = Path(folder) / name
            if (
                not name.startswith(".")
                and path.suffix.lower() in suffixes
                and path.resolve().is_relative_to(base)
            ):
                found.append(path.relative_to(base).as_posix())
        if len(found) > 500:
            break
    return found


def list_presets(root: Path) -> list[dict]:
    """Soundscape presets saved in the folder (by relative path), as the page lists them."""
    found = []
    for entry in list_files(root):
        if entry["kind"] != "settings":
            continue
        try:
            preset = load_folder_preset(root, entry["path"])
        except (FileRefused, SoundscapeError, ValueError, KeyError, TypeError):
            continue  # a manifest or settings file, not a preset (or one reaching outside)
        found.append(
            {
                "name": entry["path"],
                "description": preset.description,
                "layers": {n: s.level_db for n, s in preset.layers.items()},
            }
        )
    return found


RECORDING_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


def load_folder_preset(root: Path, relative: str):
    """A preset saved in the folder; each recording it names must lie inside the folder too.

    Checked on the TOML text before the preset is loaded: loading decodes the
    recordings, and a file outside the folder is never opened.
    """
    path = safe_path(root, relative, SETTINGS_SUFFIXES)
    data = read_toml(path, error_class=SoundscapeError)
    layers = data.get("layers", {})
    for name, table in layers.items() if isinstance(layers, Mapping) else ():
        file = table.get("file") if isinstance(table, Mapping) else None
        if isinstance(file, str):
            beside = PurePosixPath(relative).parent / file.replace("\\", "/")
            try:
                safe_path(root, beside.as_posix(), RECORDING_SUFFIXES)
            except FileRefused as exc:
                raise FileRefused(f"{relative}: layer {name!r}: {exc}", exc.status) from None
    return load_preset(str(path))


def save_preset(root: Path, relative: str, base: str, levels: Mapping[str, float]) -> Path:
    """A copy of preset ``base`` with its layers' levels changed, saved as ``relative`` in the folder.

    An existing file is replaced only if meditation wrote it (a preset saved
    here before), never one the user made.
    """
    path = safe_path(root, relative, SETTINGS_SUFFIXES)
    source = load_preset(base).path
    data = read_toml(source, error_class=SoundscapeError)
    layers = data.get("layers", {})
    for name, level in levels.items():
        if name not in layers:
            raise SoundscapeError(
                f"layer {name!r} is not in soundscape {base!r} (it has: {', '.join(layers)})"
            )
        if isinstance(level, bool) or not isinstance(level, (int, float)):
            raise SoundscapeError(f"level of {name} must be a number of dB, not {level!r}")
        layers[name]["level_db"] = float(level)
    data["name"] = path.stem
    data["description"] = (
        str(data.get("description", "")).split(" (levels set in the studio)")[0]
        + " (levels set in the studio)"
    )
    text = tomli_w.dumps(data)
    try:
        check_replaceable(path, "preset")
    except MeditationError as exc:
        raise FileRefused(f"{relative}: {exc}; choose another name", status=409) from None
    # Checked as a render would read it, before it replaces anything.
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".toml")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(text)
        load_preset(temp)
        os.chmod(temp, new_file_mode())
        os.replace(temp, path)
    finally:
        Path(temp).unlink(missing_ok=True)
    record_written(path)
    return path
