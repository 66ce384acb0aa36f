"""Read a manifest and expand it into validated variants.

See the package docstring for the manifest format.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import os
import re
import string
from array import array
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ManifestError, MeditationError, SettingsError, one_line
from ..files import check_name
from ..formats import FORMATS
from ..pace import pace_label
from ..script import Script, read_script
from ..settings import (
    DEFAULT_SCRIPT,
    SCHEMA,
    Kind,
    RenderSettings,
    Role,
    Use,
    coerce,
    preset_name,
    resolve_settings,
    spec_of,
    specs_for,
)
from ..speakers import format_speakers, parse_speakers
from ..tomlfile import read_toml
from ..voicefx import parse_voice_fx
from ..voices import ENGINES, VoiceEngine, load_voice, resolve_voice
from . import MAX_VARIANTS

if TYPE_CHECKING:
    from ..soundscape import Preset

__all__ = [
    "Variant",
    "expand_manifest",
    "iter_manifest",
    "validate_variant",
    "count_variants",
    "path_digest",
    "DigestSet",
    "MAX_VARIANTS",
]


def manifest_keys() -> frozenset[str]:
    """The keys a manifest may set per variant: every setting the schema declares for manifests."""
    return frozenset(spec.key for spec in specs_for(Use.MANIFEST))


def field_of(key: str) -> str:
    """The RenderSettings field a manifest key sets."""
    return spec_of(key).name


@dataclass(frozen=True)
class Variant:
    """One render of a batch: a name for reports and complete, validated settings."""

    name: str
    settings: RenderSettings
    values: Mapping[str, Any]
    """The manifest values that made it (for reports)."""
    label: str = ""
    """Where it comes from in the manifest, for error messages."""


DEFAULT_TEMPLATE = "{script}.mp3"


def count_variants(data: Mapping) -> int:
    """How many variants a parsed manifest makes, without making them."""
    matrix = data.get("matrix") or {}
    product = 1
    if isinstance(matrix, Mapping) and matrix:
        for values in matrix.values():
            product *= len(values) if isinstance(values, list) else 1
    else:
        product = 0
    hand = data.get("variants") or []
    return product + (len(hand) if isinstance(hand, list) else 0)


def path_digest(key: str) -> int:
    """8 bytes standing for a normalized path: a million variants' outputs fit a small set."""
    data = key.encode("utf-8", "surrogatepass")  # surrogates: undecodable bytes of a file name
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


class DigestSet:
    """A set of 8-byte digests in flat memory: 8 to 32 bytes each, where a set of ints takes about 70.

    Open addressing with linear probing, at most half full (digests are uniform).
    """

    def __init__(self, expected: int = 512):
        self._resize(1 << max(10, (2 * max(expected, 1) - 1).bit_length()))

    def _resize(self, size: int) -> None:
        old = getattr(self, "_slots", ())
        self._slots = array("Q", bytes(8 * size))  # 0 marks an empty slot
        self._mask = size - 1
        self._count = 0
        for digest in old:
            if digest:
                self.add_new(digest)

    def add_new(self, digest: int) -> bool:
        """Add ``digest``; False when it was already there."""
        digest = digest or 1  # 0 is the empty mark: 0 and 1 are one digest
        slots, mask = self._slots, self._mask
        i = digest & mask
        while found := slots[i]:
            if found == digest:
                return False
            i = (i + 1) & mask
        slots[i] = digest
        self._count += 1
        if 2 * self._count > len(slots):
            self._resize(2 * len(slots))
        return True

    def __len__(self) -> int:
        return self._count


def expand_manifest(
    path: str | Path,
    *,
    out_dir: str | Path | None = None,
    cache: bool = True,
    validate: bool = True,
    max_variants: int | None = MAX_VARIANTS,
) -> list[Variant]:
    """Every variant of a manifest as a list (``iter_manifest`` makes them one at a time)."""
    return list(
        iter_manifest(
            path, out_dir=out_dir, cache=cache, validate=validate, max_variants=max_variants
        )
    )


def iter_manifest(
    path: str | Path,
    *,
    out_dir: str | Path | None = None,
    cache: bool = True,
    validate: bool = True,
    max_variants: int | None = MAX_VARIANTS,
) -> Generator[Variant, None, None]:
    """Read, expand and validate a manifest; raise ManifestError naming the variant and key.

    Variants are made one at a time, so a million of them take the memory of
    one (and 8 bytes per output file, to find two variants writing one file).

    With ``validate=False`` the soundscape presets and layer names are not
    checked (that needs the soundscape package, slow to import); call
    ``validate_variant`` on each variant before rendering it. ``run_batch``
    does so for the variants it renders, so an up-to-date batch finishes fast.
    A manifest that makes more than ``max_variants`` variants is refused
    before any is made (``None``: no limit).
    """
    path = Path(path)
    data = read_toml(path, error_class=ManifestError, what="manifest")
    for key in data:
        if key not in ("output", "defaults", "matrix", "variants"):
            raise ManifestError(
                f"{path}: unknown top-level key {key!r} (known: output, defaults, matrix, variants)"
            )
    count = count_variants(data)
    if max_variants is not None and count > max_variants:
        raise ManifestError(
            f"{path}: makes {count:,} variants, more than the limit of {max_variants:,}; "
            f"pass --max-variants {count} if you mean it"
        )
    keys = manifest_keys()
    template = data.get("output")
    if template is None and count <= 1:
        template = DEFAULT_TEMPLATE  # one file: named after its script, as `meditation render` does
    if not isinstance(template, str) or not template.strip():
        raise ManifestError(
            f'{path}: needs a top-level output name template, e.g. output = "{{script}}-{{seed}}.mp3"'
        )
    try:
        check_name(template, "output template")
    except MeditationError as exc:
        raise ManifestError(f"{path}: {one_line(exc)}") from None
    fields = _template_fields(template, path, keys)
    suffix = Path(template).suffix.lower()
    if suffix not in FORMATS:
        raise ManifestError(
            f"{path}: output template {template!r} must end in one of {', '.join(FORMATS)}"
        )
    if Path(template).is_absolute() or ".." in Path(template).parts:
        raise ManifestError(
            f"{path}: output template {template!r} must stay inside the output folder"
        )
    base = path.parent
    out_dir = Path(out_dir) if out_dir is not None else base
    if out_dir.exists() and not out_dir.is_dir():
        raise ManifestError(f"{path}: output folder {str(out_dir)!r} is a file")

    defaults = _table(data.get("defaults", {}), "[defaults]", path)
    _check_keys(defaults, "[defaults]", path, keys)
    _check_values(defaults, "[defaults]", path)
    matrix = _table(data.get("matrix", {}), "[matrix]", path)
    _check_keys(matrix, "[matrix]", path, keys)
    for key, values in matrix.items():
        if not isinstance(values, list) or not values:
            raise ManifestError(
                f"{path}: [matrix] {key} must be a non-empty list of values, e.g. {key} = [..., ...]"
            )
        for value in values:
            _check_values({key: value}, "[matrix]", path)
    hand = data.get("variants", [])
    if not isinstance(hand, list):
        raise ManifestError(f"{path}: variants must be an array of tables ([[variants]])")
    tables = []
    for i, table in enumerate(hand):
        table = _table(table, f"[[variants]] #{i + 1}", path)
        if "name" in table and (not isinstance(table["name"], str) or not table["name"].strip()):
            raise ManifestError(
                f"{path}: [[variants]] #{i + 1}: name must be non-empty text, not {table['name']!r}"
            )
        label = f"variant {table['name']!r}" if "name" in table else f"[[variants]] #{i + 1}"
        rest = {k: v for k, v in table.items() if k != "name"}
        _check_keys(rest, label, path, keys)
        _check_values(rest, label, path)
        tables.append((label, {**defaults, **table}))
    if not matrix and not tables and not defaults:
        raise ManifestError(f"{path}: nothing to render: add [defaults], [matrix] or [[variants]]")

    _real_folder.cache_clear()  # resolved once per expansion: a folder may change between runs
    out_root = _absolute(out_dir)
    seen = DigestSet(2 * count)  # path_digest of every file written so far
    scripts: dict[Path, Any] = {}
    voices: dict[str, str] = {}
    placeholder = (
        base / f"variant{suffix}"
    )  # validated here; the real name needs the resolved settings
    try:
        for index, (label, values) in enumerate(_combinations(defaults, matrix, tables)):
            values = dict(values)
            name = str(values.pop("name", "")).strip()
            # A variant with a schedule is an ambient night: no script, no voice (issue 22 §3).
            ambient = _scheduled(values)
            script_path = _resolve(values.get("script"), base) or DEFAULT_SCRIPT
            try:
                script: Script | None = None
                if ambient:
                    _check_ambient(values)
                else:
                    if script_path not in scripts:
                        scripts[script_path] = read_script(script_path)
                    script = scripts[script_path]
                explicit = {k: v for k, v in values.items() if k != "script"}
                if ambient and str(explicit["schedule"]).lower().endswith(".toml"):
                    explicit["schedule"] = str(_resolve(explicit["schedule"], base))
                if "soundscape" in explicit and str(explicit["soundscape"]).lower().endswith(
                    ".toml"
                ):
                    explicit["soundscape"] = str(_resolve(explicit["soundscape"], base))
                for (
                    key
                ) in _INPUT_KEYS:  # a cover, a recording: beside the manifest, like the script
                    if (
                        isinstance(explicit.get(key), str)
                        and explicit[key].strip().lower() != "none"
                    ):
                        explicit[key] = str(_resolve(explicit[key], base))
                settings = resolve_settings(
                    {**explicit, "script": script_path, "output": placeholder, "cache": cache},
                    script,
                    relative_to=Path(script_path).parent,  # front matter files beside the script
                )
                if ambient and settings.title is None:
                    settings = dataclasses.replace(settings, title="Ambience")
                voice = settings.voice
                if voice not in voices:
                    voices[voice] = resolve_voice(voice)
                settings = dataclasses.replace(settings, voice=voices[voice])
                if settings.speakers is not None:  # each speaker's voice, resolved like the voice
                    settings = dataclasses.replace(
                        settings, speakers=_resolved_speakers(settings.speakers, voices)
                    )
            except MeditationError as exc:
                raise ManifestError(f"{path}: {label}: {one_line(exc)}") from None
            output = out_dir / _fill(
                fields, values, settings, Path("ambient") if ambient else script_path, name
            )
            if not _inside(output, out_root):
                raise ManifestError(
                    f"{path}: {label}: output {str(output)!r} is outside the output folder"
                )
            settings = dataclasses.replace(settings, output=output)
            # One file on case-insensitive disks too; a.wav and a.mp3 share the sidecar a.json.
            for written in (output, output.with_suffix(".json")):
                where = path_digest(os.path.normcase(str(_absolute(written))).casefold())
                if not seen.add_new(where):
                    raise ManifestError(
                        f"{path}: {label} and {_first_writer(path, out_dir, cache, index, where)} "
                        f"would both write {written.name}; "
                        "add a distinguishing field to the output template or a name to the variants"
                    )
            variant = Variant(
                name=name or output.stem, settings=settings, values=values, label=label
            )
            if validate:
                validate_variant(variant, manifest=path)
            yield variant
    finally:
        _release_engine_helpers(set(voices.values()))


def _scheduled(values: Mapping[str, Any]) -> bool:
    """True for a variant that renders an ambient night: it sets a ``schedule``."""
    schedule = values.get("schedule")
    return schedule is not None and str(schedule).strip().lower() != "none"


def _check_ambient(values: Mapping[str, Any]) -> None:
    """An ambient variant has a length and nothing spoken."""
    if "script" in values:
        raise ManifestError(
            "schedule: a variant with a schedule is an ambient track and reads no script; "
            "leave script out of it (and out of [defaults])"
        )
    if values.get("duration") is None or str(values["duration"]).strip().lower() == "none":
        raise ManifestError(
            "schedule: a variant with a schedule is an ambient track: give its duration, "
            'e.g. duration = "8h"'
        )


def _first_writer(path: Path, out_dir: Path, cache: bool, before: int, digest: int) -> str:
    """The label of the first variant that writes the file of ``digest`` (only the digests were kept)."""
    made = iter_manifest(path, out_dir=out_dir, cache=cache, validate=False, max_variants=None)
    try:
        for variant in itertools.islice(made, before):
            output = variant.settings.output
            for written in (output, output.with_suffix(".json")):
                if path_digest(os.path.normcase(str(_absolute(written))).casefold()) == digest:
                    return variant.label
    finally:
        made.close()
    return "another variant"  # a digest collision (1 in 2**64 per pair): still refused


def _combinations(defaults: dict, matrix: dict, tables: list):
    """(label, values) of every variant, made one at a time: matrix cells, then hand-written ones."""
    if matrix:
        keys = list(matrix)
        for i, values in enumerate(itertools.product(*(matrix[k] for k in keys))):
            combo = dict(zip(keys, values, strict=True))
            label = f"matrix #{i + 1} ({', '.join(f'{k}={v}' for k, v in combo.items())})"
            yield label, {**defaults, **combo}
    yield from tables
    if not matrix and not tables:
        yield "[defaults]", dict(defaults)


def _release_engine_helpers(voices: set[str]) -> None:
    """Stop helper processes that listing voices started here (pyttsx3 speaks in a child).

    The parent of a batch speaks nothing; an idle helper would only outlive
    its use and catch the terminal's Ctrl-C. Engines that keep helpers
    override ``reset``; the others are not even loaded (Piper's model is slow to load).
    """
    for voice in voices:
        cls = ENGINES.get(voice.partition(":")[0])
        if cls is not None and cls.reset is not VoiceEngine.reset:
            try:
                load_voice(voice).reset()
            except MeditationError:
                pass


def _resolved_speakers(text: str, voices: dict[str, str]) -> str:
    """A variant's speakers with each voice resolved (``voices`` caches them) and each chain read:
    an unknown or uninstalled voice is refused before any variant renders."""
    resolved = []
    for speaker in parse_speakers(text):
        try:
            if speaker.voice not in voices:
                voices[speaker.voice] = resolve_voice(speaker.voice)
            if speaker.chain is not None:
                parse_voice_fx(speaker.chain)
        except MeditationError as exc:
            raise SettingsError(f"speakers: {speaker.name!r}: {one_line(exc)}") from None
        resolved.append(dataclasses.replace(speaker, voice=voices[speaker.voice]))
    return format_speakers(tuple(resolved))


def validate_variant(variant: Variant, *, manifest: str | Path = "") -> None:
    """The pre-synthesis checks expansion left out (``meditation.preflight``), worded with the variant.

    The voice was resolved when the variant was made; presets and scripts are
    read once per version of their file.
    """
    # Here, not at the top: the soundscape package is slow to import, and an up-to-date batch never needs it.
    from ..preflight import check_outputs, check_values  # noqa: PLC0415

    settings = variant.settings
    script = (
        _script(str(settings.script), _stamp(settings.script))
        if settings.soundscape == "auto" and settings.schedule is None
        else None
    )
    where = f"{manifest}: {variant.label or variant.name}"
    check_values(
        settings,
        script,
        voice=False,
        load=lambda name: _load_preset(
            name, _stamp(name) if name.lower().endswith(".toml") else None
        ),
        where=where,
    )
    # Its side files (captions, plot, timings, stems) and the cover, as a render checks them first.
    try:
        check_outputs(settings, inputs=[Path(manifest)] if manifest else ())
    except MeditationError as exc:
        raise ManifestError(f"{where}: {one_line(exc)}") from None


def _table(value: Any, what: str, path: Path) -> dict:
    if not isinstance(value, Mapping):
        raise ManifestError(f"{path}: {what} must be a table")
    return dict(value)


def _check_keys(table: Mapping, what: str, path: Path, keys: frozenset[str]) -> None:
    for key in table:
        if key not in keys:
            hint = (
                f"; did you mean {key.replace('-', '_')!r}?"
                if key.replace("-", "_") in keys
                else ""
            )
            raise ManifestError(
                f"{path}: {what}: unknown key {key!r}{hint} (known: {', '.join(sorted(keys))})"
            )


def _check_values(table: Mapping, what: str, path: Path) -> None:
    """Type errors name the variant, the key and the value."""
    for key, value in table.items():
        kind = SCHEMA[key].kind if key in SCHEMA else None
        # layers may be a list; speakers a table of name = "voice …" (``meditation.speakers``)
        if (
            isinstance(value, (dict, list))
            and key != "layers"
            and kind is not Kind.TABLE
            and not (key == "speakers" and isinstance(value, dict))
        ):
            raise ManifestError(f"{path}: {what}: {key} must be a single value, not {value!r}")
        try:
            coerce(key, value)
        except MeditationError as exc:
            raise ManifestError(f"{path}: {what}: {key} = {value!r}: {one_line(exc)}") from None


def _input_keys() -> tuple[str, ...]:
    return tuple(
        spec.key for spec in SCHEMA.values() if spec.role is Role.INPUT and spec.key != "script"
    )


_INPUT_KEYS = _input_keys()


def _resolve(value: Any, base: Path) -> Path | None:
    if value is None:
        return None
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() else base / p


def _absolute(path: Path) -> Path:
    """An absolute, normalized path, symlinks resolved as far as they exist (no disk writes)."""
    folder, name = os.path.split(str(path))
    if name in ("", ".", "..") or os.path.islink(path):
        return Path(os.path.realpath(path))
    # Each folder resolved once: a million outputs share a few folders.
    return Path(os.path.join(_real_folder(folder or os.curdir), name))


@functools.lru_cache(maxsize=1024)
def _real_folder(folder: str) -> str:
    return os.path.realpath(folder)


def _inside(output: Path, root: Path) -> bool:
    try:
        _absolute(output).relative_to(root)
    except ValueError:
        return False
    return True


def _template_fields(
    template: str, manifest: Path, keys: frozenset[str]
) -> list[tuple[str, str | None]]:
    """The template as (literal text, field name or None) pieces; refuse what would not be a plain field.

    ``{seed:>5}`` or ``{voice!r}`` would pass through as odd file names:
    fields are plain names, literal braces are written ``{{`` and ``}}``.
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ManifestError(
            f"{manifest}: output template {template!r}: {exc} (write literal braces as {{{{ and }}}})"
        ) from None
    pieces: list[tuple[str, str | None]] = []
    for literal, field, spec, conversion in parsed:
        if field is not None:
            if spec or conversion or "{" in field:
                written = (
                    "{"
                    + field
                    + (f"!{conversion}" if conversion else "")
                    + (f":{spec}" if spec else "")
                    + "}"
                )
                raise ManifestError(
                    f"{manifest}: output template field {written} has a format spec or conversion; write {{{field.split('!')[0].split(':')[0]}}}"
                )
            if field not in keys and field not in ("script", "name"):
                raise ManifestError(
                    f"{manifest}: output template field {{{field}}} is not a setting "
                    f"(use {{script}}, {{name}} or one of: {', '.join(sorted(keys))})"
                )
        pieces.append((literal, field))
    return pieces


def _fill(
    pieces: list[tuple[str, str | None]],
    values: Mapping,
    settings: RenderSettings,
    script_path: Path,
    name: str,
) -> str:
    def value(key: str) -> str:
        if key == "script":
            return _clean(script_path.stem)
        if key == "name":
            return _clean(name or "variant")
        if key in values:  # as written in the manifest: "pyttsx3", not "pyttsx3:gmw/en"
            raw = values[key]
            text = ",".join(map(str, raw)) if isinstance(raw, list) else str(raw)
        elif key == "rate" and settings.rate is None:  # the default pace, as its rate or wpm
            engine, _, voice = settings.voice.partition(":")
            neural = engine in ENGINES and ENGINES[engine].describe(voice).neural
            text = pace_label(None, settings.wpm, neural=neural)
        else:  # from the script's front matter, else the default
            raw = getattr(settings, field_of(key))
            text = (
                "none"
                if raw is None
                else (
                    ",".join(raw)
                    if isinstance(raw, tuple)
                    else (f"{raw:g}" if isinstance(raw, float) else str(raw))
                )
            )
        if key == "soundscape" and text.lower().endswith(".toml"):
            text = Path(text).stem
        return _clean(text)

    return "".join(
        literal + (value(field) if field is not None else "") for literal, field in pieces
    )


def _clean(text: str) -> str:
    """A field value as a safe piece of a file name (no separators, no leading dot)."""
    return re.sub(r"[^\w.+-]+", "-", text).strip("-.") or "x"


# Thousands of variants share a few scripts and presets: read each once per
# version of the file (the stamp changes when the file does).
def _stamp(path: str | Path) -> tuple:
    try:
        st = os.stat(path)
    except OSError:
        return ()
    return (st.st_mtime_ns, st.st_size, st.st_ino)


@functools.lru_cache(maxsize=64)
def _preset_name(settings: RenderSettings) -> str:
    """The preset a variant plays (see ``settings.preset_name``), its script read once per version."""
    script = (
        _script(str(settings.script), _stamp(settings.script))
        if settings.soundscape == "auto"
        else None
    )
    return preset_name(settings, script) or "none"


def _script(script: str, stamp: tuple) -> Script:
    return read_script(script)


@functools.lru_cache(maxsize=64)
def _load_preset(name: str, stamp: tuple | None) -> Preset:
    from ..soundscape import load_preset  # noqa: PLC0415 - slow to import; see validate_variant

    return load_preset(name)
