"""Read a manifest and expand it into validated variants.

See the package docstring for the manifest format.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import ManifestError, MeditationError
from ..settings import FORMATS, RenderSettings, coerce, resolve_settings

__all__ = ["Variant", "expand_manifest", "validate_variant"]

# Manifest keys: the long options of `meditation render` that shape one output, _ for -.
_KEYS = {
    "script",
    "voice",
    "rate",
    "pause_scale",
    "duration",
    "lead_in",
    "tail",
    "soundscape",
    "layers",
    "seed",
    "loudness",
    "sample_rate",
    "title",
    "artist",
}
_FIELD_OF = {"lead_in": "lead_in_s", "tail": "tail_s", "loudness": "loudness_lufs", "duration": "duration_s"}


@dataclass(frozen=True)
class Variant:
    """One render of a batch: a name for reports and complete, validated settings."""

    name: str
    settings: RenderSettings
    values: Mapping[str, Any]
    """The manifest values that made it (for reports)."""
    label: str = ""
    """Where it comes from in the manifest, for error messages."""


def expand_manifest(
    path: str | Path, *, out_dir: str | Path | None = None, cache: bool = True, validate: bool = True
) -> list[Variant]:
    """Read, expand and validate a manifest; raise ManifestError naming the variant and key.

    With ``validate=False`` the soundscape presets and layer names are not
    checked (that needs the soundscape package, slow to import); call
    ``validate_variant`` on each variant before rendering it. ``run_batch``
    does so for the variants it renders, so an up-to-date batch finishes fast.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such manifest") from None
    except IsADirectoryError:
        raise ManifestError(f"{path}: is a folder, not a manifest") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path}: {exc}") from None
    for key in data:
        if key not in ("output", "defaults", "matrix", "variants"):
            raise ManifestError(f"{path}: unknown top-level key {key!r} (known: output, defaults, matrix, variants)")
    template = data.get("output")
    if not isinstance(template, str) or not template.strip():
        raise ManifestError(f"{path}: needs a top-level output name template, e.g. output = \"{{script}}-{{seed}}.mp3\"")
    suffix = Path(template).suffix.lower()
    if suffix not in FORMATS:
        raise ManifestError(f"{path}: output template {template!r} must end in one of {', '.join(FORMATS)}")
    for field in _FIELD.findall(template):
        if field not in _KEYS and field not in ("script", "name"):
            raise ManifestError(f"{path}: output template field {{{field}}} is not a setting (use {{script}}, {{name}} or one of: {', '.join(sorted(_KEYS))})")
    if Path(template).is_absolute() or ".." in Path(template).parts:
        raise ManifestError(f"{path}: output template {template!r} must stay inside the output folder")
    base = path.parent
    out_dir = Path(out_dir) if out_dir is not None else base
    if not out_dir.is_dir():
        raise ManifestError(f"{path}: output folder {str(out_dir)!r} does not exist")

    defaults = _table(data.get("defaults", {}), "[defaults]", path)
    _check_keys(defaults, "[defaults]", path)
    _check_values(defaults, "[defaults]", path)
    matrix = _table(data.get("matrix", {}), "[matrix]", path)
    _check_keys(matrix, "[matrix]", path)
    for key, values in matrix.items():
        if not isinstance(values, list) or not values:
            raise ManifestError(f"{path}: [matrix] {key} must be a non-empty list of values, e.g. {key} = [..., ...]")
        for value in values:
            _check_values({key: value}, "[matrix]", path)
    hand = data.get("variants", [])
    if not isinstance(hand, list):
        raise ManifestError(f"{path}: variants must be an array of tables ([[variants]])")

    combos: list[tuple[str, dict]] = []
    if matrix:
        keys = list(matrix)
        for i, values in enumerate(itertools.product(*(matrix[k] for k in keys))):
            combo = dict(zip(keys, values))
            label = f"matrix #{i + 1} ({', '.join(f'{k}={v}' for k, v in combo.items())})"
            combos.append((label, {**defaults, **combo}))
    for i, table in enumerate(hand):
        table = _table(table, f"[[variants]] #{i + 1}", path)
        if "name" in table and (not isinstance(table["name"], str) or not table["name"].strip()):
            raise ManifestError(f"{path}: [[variants]] #{i + 1}: name must be non-empty text, not {table['name']!r}")
        label = f"variant {table['name']!r}" if "name" in table else f"[[variants]] #{i + 1}"
        rest = {k: v for k, v in table.items() if k != "name"}
        _check_keys(rest, label, path)
        _check_values(rest, label, path)
        combos.append((label, {**defaults, **table}))
    if not combos:
        if not defaults:
            raise ManifestError(f"{path}: nothing to render: add [defaults], [matrix] or [[variants]]")
        combos.append(("[defaults]", dict(defaults)))

    from ..script import read_script
    from ..settings import DEFAULT_SCRIPT
    from ..voices import resolve_voice

    out_root = out_dir.resolve()
    variants: list[Variant] = []
    seen: dict[str, str] = {}
    scripts: dict[Path, Any] = {}
    voices: dict[str, str] = {}
    for label, values in combos:
        values = dict(values)
        name = str(values.pop("name", "")).strip()
        script_path = _resolve(values.get("script"), base) or DEFAULT_SCRIPT
        try:
            if script_path not in scripts:
                scripts[script_path] = read_script(script_path)
            script = scripts[script_path]
            explicit = {k: v for k, v in values.items() if k != "script"}
            if "soundscape" in explicit and str(explicit["soundscape"]).lower().endswith(".toml"):
                explicit["soundscape"] = str(_resolve(explicit["soundscape"], base))
            placeholder = out_dir / f"variant{suffix}"  # validated here; the real name needs the resolved settings
            settings = resolve_settings({**explicit, "script": script_path, "output": placeholder, "cache": cache}, script)
            voice = settings.voice
            if voice not in voices:
                voices[voice] = resolve_voice(voice)
            settings = dataclasses.replace(settings, voice=voices[voice])
        except MeditationError as exc:
            raise ManifestError(f"{path}: {label}: {_one_line(exc)}") from None
        output = out_dir / _fill(template, values, settings, script_path, name, label, path)
        if not _inside(output, out_root):
            raise ManifestError(f"{path}: {label}: output {str(output)!r} is outside the output folder")
        settings = dataclasses.replace(settings, output=output)
        where = os.path.normcase(str(output.resolve())).casefold()  # one file on case-insensitive disks too
        if where in seen:
            raise ManifestError(
                f"{path}: {label} and {seen[where]} would both write {output.name}; "
                "add a distinguishing field to the output template or a name to the variants"
            )
        seen[where] = label
        variant = Variant(name=name or output.stem, settings=settings, values=values, label=label)
        if validate:
            validate_variant(variant, manifest=path)
        variants.append(variant)
    _release_engine_helpers(set(voices.values()))
    return variants


def _release_engine_helpers(voices: set[str]) -> None:
    """Stop helper processes that listing voices started here (pyttsx3 speaks in a child).

    The parent of a batch speaks nothing; an idle helper would only outlive
    its use and catch the terminal's Ctrl-C. Engines that keep helpers
    override ``reset``; the others are not even loaded (Piper's model is slow to load).
    """
    from ..voices import ENGINES, VoiceEngine, load_voice

    for voice in voices:
        cls = ENGINES.get(voice.partition(":")[0])
        if cls is not None and cls.reset is not VoiceEngine.reset:
            try:
                load_voice(voice).reset()
            except MeditationError:
                pass


def validate_variant(variant: Variant, *, manifest: str | Path = "") -> None:
    """Check what expansion may have left out: the soundscape preset and its layer names."""
    settings = variant.settings
    where = f"{manifest}: {variant.label or variant.name}"
    if settings.soundscape == "none":
        return
    from ..errors import SoundscapeError
    from ..soundscape import load_preset

    try:
        preset = load_preset(_preset_name(settings))
    except MeditationError as exc:
        raise ManifestError(f"{where}: soundscape: {_one_line(exc)}") from None
    if settings.layers is not None:
        unknown = [n for n in settings.layers if n not in preset.layers]
        if unknown:
            error = SoundscapeError(f"{', '.join(unknown)} not in soundscape {preset.name!r} (it has: {', '.join(preset.layers)})")
            raise ManifestError(f"{where}: layers: {error}")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _table(value: Any, what: str, path: Path) -> dict:
    if not isinstance(value, Mapping):
        raise ManifestError(f"{path}: {what} must be a table")
    return dict(value)


def _check_keys(table: Mapping, what: str, path: Path) -> None:
    for key in table:
        if key not in _KEYS:
            hint = f"; did you mean {key.replace('-', '_')!r}?" if key.replace("-", "_") in _KEYS else ""
            raise ManifestError(f"{path}: {what}: unknown key {key!r}{hint} (known: {', '.join(sorted(_KEYS))})")


def _check_values(table: Mapping, what: str, path: Path) -> None:
    """Type errors name the variant, the key and the value."""
    for key, value in table.items():
        if isinstance(value, (dict, list)) and key != "layers":
            raise ManifestError(f"{path}: {what}: {key} must be a single value, not {value!r}")
        try:
            coerce(key, value)
        except MeditationError as exc:
            raise ManifestError(f"{path}: {what}: {key} = {value!r}: {_one_line(exc)}") from None


def _resolve(value: Any, base: Path) -> Path | None:
    if value is None:
        return None
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() else base / p


def _inside(output: Path, root: Path) -> bool:
    try:
        output.resolve().relative_to(root)
    except ValueError:
        return False
    return True


_FIELD = re.compile(r"\{(\w+)\}")


def _fill(template: str, values: Mapping, settings: RenderSettings, script_path: Path, name: str, label: str, manifest: Path) -> str:
    def value(match: re.Match) -> str:
        key = match.group(1)
        if key == "script":
            return _clean(script_path.stem)
        if key == "name":
            return _clean(name or "variant")
        if key in values:  # as written in the manifest: "pyttsx3", not "pyttsx3:gmw/en"
            raw = values[key]
            text = ",".join(map(str, raw)) if isinstance(raw, list) else str(raw)
        elif key in _KEYS:  # from the script's front matter, else the default
            raw = getattr(settings, _FIELD_OF.get(key, key))
            text = "none" if raw is None else (",".join(raw) if isinstance(raw, tuple) else (f"{raw:g}" if isinstance(raw, float) else str(raw)))
        else:  # pragma: no cover - checked before expansion
            raise ManifestError(f"{manifest}: output template field {{{key}}} is not a setting ({label})")
        if key == "soundscape" and text.lower().endswith(".toml"):
            text = Path(text).stem
        return _clean(text)

    return _FIELD.sub(value, template)


def _clean(text: str) -> str:
    """A field value as a safe piece of a file name (no separators, no leading dot)."""
    return re.sub(r"[^\w.+-]+", "-", text).strip("-.") or "x"


def _preset_name(settings: RenderSettings) -> str:
    name = settings.soundscape
    if name == "auto":
        from ..script import read_script

        name = read_script(settings.script).settings.get("soundscape") or "default"
    return name
