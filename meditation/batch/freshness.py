"""Decide whether an output is up to date: its sidecar records the same settings and inputs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path
from typing import Mapping

from ..errors import MeditationError
from ..settings import RenderSettings
from .manifest import Variant, _preset_name

__all__ = ["sidecar_path", "is_up_to_date"]

# Settings that do not change the audio: not compared when deciding to skip.
_NOT_CONTENT = ("output", "timings", "stems", "cache")


def sidecar_path(output: Path) -> Path:
    """``NAME.json`` next to ``NAME.mp3``."""
    return Path(output).with_suffix(".json")


def _preset_file(name: str) -> Path | None:
    """The preset file ``load_preset(name)`` reads, found without importing the soundscape package."""
    path = Path(name)
    if path.suffix.lower() == ".toml":
        return path.resolve() if path.is_file() else None
    module = sys.modules.get("meditation.soundscape")
    folders = getattr(module, "PRESET_DIRS", None) or (Path(__file__).resolve().parent.parent / "data" / "soundscapes",)
    for folder in folders:
        candidate = Path(folder) / f"{name}.toml"
        if candidate.is_file():
            return candidate.resolve()
    return None


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _settings_record(settings: RenderSettings) -> dict:
    """Every setting as JSON-able values (paths absolute)."""
    out = {}
    for key, value in dataclasses.asdict(settings).items():
        if isinstance(value, Path):
            value = str(value.resolve())
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


def _content(record: Mapping) -> dict:
    return {k: v for k, v in record.items() if k not in _NOT_CONTENT}


def _fingerprint(settings: RenderSettings, *, authoritative: bool) -> dict:
    """Settings, version and the hashes of the script and preset files.

    ``authoritative`` asks the soundscape package where the preset is (at
    render time); otherwise it is looked up without importing it (when
    deciding to skip), and a lookup that fails gives an empty fingerprint,
    which never matches.
    """
    from .. import __version__

    preset_file = ""
    preset_hash = ""
    if settings.soundscape != "none":
        name = _preset_name(settings)
        if authoritative:
            from ..soundscape import load_preset

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
    }


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
