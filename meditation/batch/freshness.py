"""Decide whether an output is up to date: its sidecar records the same settings and inputs."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sized
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ExportError, ManifestError, MeditationError, one_line
from ..files import check_parent, check_replaceable
from ..settings import SCHEMA, RenderSettings, Role, settings_to_dict
from .manifest import DigestSet, Variant, _preset_name, path_digest

__all__ = ["sidecar_path", "is_up_to_date", "check_outputs"]


def _not_content() -> frozenset[str]:
    """Settings that do not change the audio (the schema says so): not compared when deciding to skip."""
    return frozenset(key for key, spec in SCHEMA.items() if not spec.audio)


def sidecar_path(output: Path) -> Path:
    """``NAME.json`` next to ``NAME.mp3``."""
    return Path(output).with_suffix(".json")


def _preset_file(name: str) -> Path | None:
    """The preset file ``load_preset(name)`` reads, found without importing the soundscape package."""
    path = Path(name)
    if path.suffix.lower() == ".toml":
        return path.resolve() if path.is_file() else None
    if name == "auto":
        name = "auto/words"  # soundscape.words.WORDS_FILE
    module = sys.modules.get("meditation.soundscape")
    folders = getattr(module, "PRESET_DIRS", None) or (
        Path(__file__).resolve().parent.parent / "data" / "soundscapes",
    )
    for folder in folders:
        candidate = Path(folder) / f"{name}.toml"
        if candidate.is_file():
            return candidate.resolve()
    return None


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _settings_record(settings: RenderSettings) -> dict:
    """Every setting by key as JSON-able values, paths absolute (so a record names one file wherever it is read)."""
    absolute: dict[str, Any] = {  # setting name -> new value, for dataclasses.replace
        f.name: Path(v).resolve()
        for f in dataclasses.fields(settings)
        if isinstance(v := getattr(settings, f.name), Path)
    }
    return settings_to_dict(dataclasses.replace(settings, **absolute))


def _content(record: Mapping) -> dict:
    skip = _not_content()
    return {k: v for k, v in record.items() if k not in skip}


def _fingerprint(settings: RenderSettings, *, authoritative: bool) -> dict:
    """Settings, version and the hashes of the script and preset files.

    ``authoritative`` asks the soundscape package where the preset is (at
    render time); otherwise it is looked up without importing it (when
    deciding to skip), and a lookup that fails gives an empty fingerprint,
    which never matches.
    """
    preset_file = ""
    preset_hash = ""
    found: Path | None
    if settings.soundscape != "none":
        name = _preset_name(settings)
        if authoritative and name != "auto":  # auto: the word list is the preset's file
            from ..soundscape import load_preset  # noqa: PLC0415 - slow to import; rarely needed here

            found = Path(load_preset(name).path).resolve()
        else:
            found = _preset_file(name)
            if found is None:
                return {}
        preset_file, preset_hash = str(found), _sha256(found)
    return {
        "settings": _settings_record(settings),
        "version": __version__,
        "script_sha256": _sha256(settings.script),
        "soundscape_file": preset_file,
        "soundscape_sha256": preset_hash,
        "inputs_sha256": _input_hashes(settings),
    }


def _other_inputs(settings: RenderSettings) -> list[tuple[str, Path]]:
    """(key, path) of every input file besides the script and the preset."""
    return [
        (spec.key, value)
        for spec in SCHEMA.values()
        if spec.role is Role.INPUT
        and spec.key != "script"
        and isinstance(value := getattr(settings, spec.name), Path)
    ]


def _input_hashes(settings: RenderSettings) -> dict:
    """Hashes of the other input files (a cover, a recording): a changed file re-renders like a changed script."""
    hashes = {}
    for spec in SCHEMA.values():
        value = getattr(settings, spec.name)
        if spec.role is Role.INPUT and spec.key != "script" and isinstance(value, Path):
            hashes[spec.key] = _sha256(value)
    if settings.schedule is not None and settings.schedule.lower().endswith(".toml"):
        hashes["schedule"] = _sha256(Path(settings.schedule))  # an ambient night's file of places
    return hashes


def is_up_to_date(variant: Variant | RenderSettings) -> bool:
    """True when the output exists, is the file its sidecar describes, and the sidecar
    records the same settings, package version, script and preset."""
    settings = variant.settings if isinstance(variant, Variant) else variant
    output = settings.output
    try:
        recorded = json.loads(sidecar_path(output).read_text(encoding="utf-8"))
        size = output.stat().st_size
        fp = _fingerprint(settings, authoritative=False)
    except (OSError, ValueError, MeditationError):
        return False
    if not fp or not isinstance(recorded, dict) or recorded.get("output_bytes") != size:
        return False
    if _content(recorded.get("settings") or {}) != _content(fp["settings"]):
        return False
    return all(recorded.get(k) == v for k, v in fp.items() if k != "settings")


# --- never replace a file the tool did not write --------------------------------


def check_outputs(
    variants: Iterable[Variant] | Callable[[], Iterable[Variant]],
    *,
    manifest: str | Path | None = None,
    each: Callable[[Variant], None] | None = None,
) -> None:
    """Refuse, before anything renders, every output that could destroy a file.

    Inputs (the manifest, scripts, preset files) are never outputs, no two
    outputs or sidecars of the batch are one file, every output folder is a
    folder (or can be made one) the user may write into, and an existing
    output or sidecar is replaced only when this tool provably wrote it and
    nobody changed it since (``meditation.files``' ledger). Raises
    ManifestError or ExportError naming the variant and the file.

    ``variants`` is a sequence, or a function giving a fresh iterator of them
    (``iter_manifest``): they are gone over twice, never all held. ``each`` is
    called on each variant once its own files passed (the CLI validates it there).
    """
    passes = variants if callable(variants) else (lambda: variants)
    where = f"{manifest}: " if manifest else ""
    _real_folder.cache_clear()  # folders are resolved once per check, not once per process
    inputs: dict[str, str] = {}
    if manifest:
        inputs[_key(Path(manifest))] = "the manifest"
    read: set[tuple] = set()
    folders: set[Path] = set()  # a few: variants share their folders
    for v in passes():
        s = v.settings
        folders.add(Path(s.output).parent)
        others = _other_inputs(s)  # a cover, a recording, …: whatever the schema calls an input
        seen_key = (str(s.script), s.soundscape, tuple(str(p) for _, p in others))
        if seen_key in read:  # thousands of variants share a few inputs
            continue
        read.add(seen_key)
        inputs.setdefault(_key(s.script), f"the script of {_label(v)}")
        for key, path in others:
            inputs.setdefault(_key(path), f"the {key} of {_label(v)}")
        preset = _preset_file_of(s)
        if preset is not None:
            inputs.setdefault(_key(preset), f"the soundscape preset of {_label(v)}")
    for folder in sorted(folders):
        _check_folder(folder, where)
    # path_digest of every file written so far
    outputs = DigestSet(2 * len(variants) if isinstance(variants, Sized) else 512)
    for index, v in enumerate(passes()):
        for written, what in _written(v):
            key = _key(written)
            if key in inputs:
                raise ManifestError(
                    f"{where}{_label(v)}: {what} {written} is {inputs[key]}; an input is never overwritten"
                )
            digest = path_digest(key)
            if not outputs.add_new(digest):
                raise ManifestError(
                    f"{where}{_label(v)}: {what} {written} is also {_first_writer(passes, index, digest)}"
                )
        _check_replaceable(v, where)
        if each is not None:
            each(v)


def _written(v: Variant) -> list[tuple[Path, str]]:
    """Every file the variant writes, as (path, what)."""
    output = Path(v.settings.output)
    return [(output, "output"), (sidecar_path(output), "sidecar"), *_side_files(v)]


def _first_writer(passes: Callable[[], Iterable[Variant]], before: int, digest: int) -> str:
    """What the first variant writing the file of ``digest`` writes it as (only digests were kept)."""
    for v in itertools.islice(passes(), before + 1):  # the variant itself may write one file twice
        for written, what in _written(v):
            if path_digest(_key(written)) == digest:
                return f"the {what} of {_label(v)}"
    return "the file of another variant"  # a digest collision (1 in 2**64 per pair): still refused


def _side_files(v: Variant) -> list[tuple[Path, str]]:
    """The variant's timings, captions and plot files, shorthand (``captions = "vtt"``) placed beside the output."""
    s = v.settings
    if s.timings is None and s.captions is None and s.plot is None:
        return []
    from ..publish import beside_output  # noqa: PLC0415 - loads the encoders; only when side files are asked for

    s = beside_output(s)
    named = (("timings", s.timings), ("captions", s.captions), ("plot", s.plot))
    return [(Path(path), what) for what, path in named if path is not None]


def _key(path: Path) -> str:
    # Symlinks resolved and case folded: one file on case-insensitive disks too.
    return os.path.normcase(_realpath(os.path.abspath(path))).casefold()


def _realpath(path: str) -> str:
    """os.path.realpath, resolving each folder once (outputs share a few folders)."""
    folder, name = os.path.split(path)
    return (
        os.path.join(_real_folder(folder), name)
        if not os.path.islink(path)
        else os.path.realpath(path)
    )


@functools.lru_cache(maxsize=1024)
def _real_folder(folder: str) -> str:
    return os.path.realpath(folder)


def _label(v: Variant) -> str:
    return v.label or f"variant {v.name!r}"


def _preset_file_of(settings: RenderSettings) -> Path | None:
    if settings.soundscape == "none":
        return None
    try:
        return _preset_file(_preset_name(settings))
    except MeditationError:
        return None


def _check_replaceable(v: Variant, where: str) -> None:
    """An existing output or sidecar must be a file meditation wrote and nobody changed since (its ledger)."""
    output = Path(v.settings.output)
    for path, what in ((output, "output"), (sidecar_path(output), "sidecar")):
        try:
            check_replaceable(path, what)
        except MeditationError as exc:
            raise ExportError(f"{where}{_label(v)}: {exc}") from None


def _check_folder(folder: Path, where: str) -> None:
    """The folder exists or can be made: its nearest existing ancestor is a folder a file can be created in.

    Probed by creating a file (``files.check_parent``), not ``os.access``:
    root may "write" to ``/proc`` by permissions, never by creating a file.
    """
    probe = Path(os.path.abspath(folder))
    while not probe.exists():
        if probe.is_symlink():  # a dangling link: mkdir would fail
            raise ManifestError(f"{where}output folder {probe} is a broken link")
        probe = probe.parent
    if not probe.is_dir():
        raise ManifestError(f"{where}output folder {probe} is a file, not a folder")
    try:
        check_parent(probe, "output folder", probe)
    except MeditationError as exc:
        raise ManifestError(f"{where}{one_line(exc)}") from None
