"""Batch-produce variants of meditations from a TOML manifest.

Manifest::

    output = "{script}-{voice}-{rate}-{soundscape}-{seed}.mp3"

    [defaults]                     # shared settings: render long options, _ for -
    script = "dream.md"            # relative paths are relative to the manifest
    seed = 1

    [matrix]                       # every combination of these values
    voice = ["piper:joe", "pyttsx3"]
    rate = [0.8, 0.9]

    [[variants]]                   # hand-written variants, each over the defaults
    name = "short"                 # optional; usable in the template as {name}
    duration = "10m"

The variants are every matrix combination, then every hand-written variant.
The output template's fields are ``{script}`` (the script's stem), ``{name}``
and any setting key; a field takes the value as written in the manifest, else
the resolved setting (the script's front matter, else the default). The
suffix picks the format; a ``/`` in the template makes sub-folders of the
output folder.

Everything the manifest can get wrong — an unknown key, a bad value, an
unknown voice, preset or layer, a script that does not parse, two variants
writing one file — is refused before anything renders, naming the variant
and the key. What can only be found while rendering (a ``duration`` too short
for the speech, a crashing engine) fails that variant alone.

Each output gets a sidecar ``NAME.json`` (settings, seed, version, timeline,
loudness, true peak, and fingerprints of the script and preset). An output
whose sidecar records the same settings, version and input fingerprints is
up to date and skipped.

Python API: ``expand_manifest`` gives ``Variant`` objects (settings inside);
``render_variant`` renders one and returns its path and sidecar data — map
it over variants with any job runner, or use ``run_batch``.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import itertools
import json
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .errors import ManifestError, MeditationError
from .settings import FORMATS, RenderSettings, coerce, resolve_settings

__all__ = [
    "Variant",
    "expand_manifest",
    "validate_variant",
    "render_variant",
    "run_batch",
    "is_up_to_date",
    "BatchReport",
    "sidecar_path",
]

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
# Settings that do not change the audio: not compared when deciding to skip.
_NOT_CONTENT = ("output", "timings", "stems", "cache")


@dataclass(frozen=True)
class Variant:
    """One render of a batch: a name for reports and complete, validated settings."""

    name: str
    settings: RenderSettings
    values: Mapping[str, Any]
    """The manifest values that made it (for reports)."""
    label: str = ""
    """Where it comes from in the manifest, for error messages."""


def sidecar_path(output: Path) -> Path:
    """``NAME.json`` next to ``NAME.mp3``."""
    return Path(output).with_suffix(".json")


# --- expansion ------------------------------------------------------------------


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

    from .script import read_script
    from .settings import DEFAULT_SCRIPT
    from .voices import resolve_voice

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
    from .voices import ENGINES, VoiceEngine, load_voice

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
    from .errors import SoundscapeError
    from .soundscape import load_preset

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


# --- fingerprints: what decides an output's content ------------------------------


def _preset_name(settings: RenderSettings) -> str:
    name = settings.soundscape
    if name == "auto":
        from .script import read_script

        name = read_script(settings.script).settings.get("soundscape") or "default"
    return name


def _preset_file(name: str) -> Path | None:
    """The preset file ``load_preset(name)`` reads, found without importing the soundscape package."""
    path = Path(name)
    if path.suffix.lower() == ".toml":
        return path.resolve() if path.is_file() else None
    module = sys.modules.get("meditation.soundscape")
    folders = getattr(module, "PRESET_DIRS", None) or (Path(__file__).resolve().parent / "data" / "soundscapes",)
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
    from . import __version__

    preset_file = ""
    preset_hash = ""
    if settings.soundscape != "none":
        name = _preset_name(settings)
        if authoritative:
            from .soundscape import load_preset

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


# --- rendering ------------------------------------------------------------------


def render_variant(variant: Variant | RenderSettings) -> tuple[Path, dict]:
    """Render one variant and write its sidecar; returns (output path, sidecar data).

    The output appears complete or not at all, then its sidecar: an
    interrupted render leaves either nothing or a finished file that the next
    run renders again (a missing or older sidecar never matches).
    """
    from .export import atomic_write_text
    from .render import render

    if isinstance(variant, RenderSettings):
        variant = Variant(name=variant.output.stem, settings=variant, values={})
    settings = variant.settings
    settings.output.parent.mkdir(parents=True, exist_ok=True)  # a template may name sub-folders
    result = render(settings)
    data = {
        "name": variant.name,
        "output": str(result.path.resolve()),
        "output_bytes": result.path.stat().st_size,
        **result.sidecar(),
        "duration_s": round(result.duration_s, 4),
        **_fingerprint(settings, authoritative=True),
    }
    atomic_write_text(sidecar_path(result.path), json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return result.path, data


@dataclass
class BatchReport:
    """How a batch went."""

    rendered: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        return f"{len(self.rendered)} rendered, {len(self.failed)} failed, {len(self.skipped)} skipped"


# --- worker processes -----------------------------------------------------------

_stopping = False


def _worker_init() -> None:
    """Workers print nothing of their own and leave Ctrl-C to the parent, which sends SIGTERM."""
    from . import progress

    from ._lifecycle import die_with_parent, ignore_interrupts

    progress.set_enabled(False)
    # A terminal's Ctrl-C reaches every process of the group; the parent decides.
    # Ignored signals stay ignored in the engines' helper processes too.
    ignore_interrupts()
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, _on_terminate)
        # The parent's death (even kill -9) arrives as SIGTERM: unwind, delete temporary files, exit.
        parent = multiprocessing.parent_process()
        die_with_parent(parent.pid if parent is not None else None)
    sys.unraisablehook = _unraisable


def _on_terminate(signum, frame) -> None:
    # Unwind the render, so its writers delete their temporary files. Native
    # callbacks (soundfile's writer) swallow exceptions: the parent repeats
    # SIGTERM until the worker is gone.
    global _stopping
    _stopping = True
    raise SystemExit(128 + signum)


def _unraisable(info, _default=sys.unraisablehook) -> None:
    if _stopping and isinstance(info.exc_value, (SystemExit, KeyboardInterrupt)):
        return  # the stop request landed in a callback; the next one will unwind
    _default(info)


def _run_one(variant: Variant) -> tuple[str, float, str]:
    if _stopping:
        return ("cancelled", 0.0, "")
    start = time.perf_counter()
    try:
        path, _ = render_variant(variant)
    except SystemExit:
        # SIGTERM from the parent: the render has unwound and deleted its
        # temporary files. Leave now rather than wait for more work.
        os._exit(143)
    except MeditationError as exc:
        return ("failed", time.perf_counter() - start, _one_line(exc))
    except Exception as exc:  # a bug hit by one variant must not sink the batch
        return ("failed", time.perf_counter() - start, f"{type(exc).__name__}: {_one_line(exc)}")
    return ("rendered", time.perf_counter() - start, str(path))


def _validate_all(variants: Sequence[Variant], manifest: str) -> None:
    for v in variants:
        validate_variant(v, manifest=manifest)


def _warm_up() -> None:
    """Import what every render needs while the first worker validates."""
    from . import render, soundscape  # noqa: F401


def _default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _speech_group(variant: Variant) -> tuple:
    """Variants sharing (script, voice, rate) share all their speech."""
    s = variant.settings
    return (str(s.script), s.voice, s.rate)


class _Slot:
    """One worker process (a one-process pool), and what it has loaded."""

    def __init__(self, index: int, context):
        self.index = index
        self.context = context
        self.voices: set[str] = set()
        self.variant: Variant | None = None
        self.future: cf.Future | None = None
        self.pool = self._new_pool()

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(max_workers=1, mp_context=self.context, initializer=_worker_init)

    def replace_pool(self) -> None:
        """After the worker died: a fresh one for the next variant."""
        self.pool.shutdown(wait=False)
        self.pool = self._new_pool()
        self.voices = set()


def _pick(remaining: list[Variant], slot: _Slot, slots: Sequence[_Slot], started: set, done: set) -> Variant:
    """The next variant for an idle worker.

    First speech that nobody has synthesized yet (it is the long part and
    unlocks the cached variants), preferably in a voice this worker has
    loaded and no other has (each worker loading a neural voice costs a
    second of CPU); then variants whose speech is cached (no voice is loaded
    for them); last, variants whose speech another worker is synthesizing
    right now.
    """

    def cost(v: Variant) -> int:
        voice = v.settings.voice
        group = _speech_group(v)
        if v.settings.cache and group in done:
            return 2
        if v.settings.cache and group in started:
            return 5
        if voice in slot.voices:
            return 0
        return 1 if not any(voice in s.voices for s in slots if s is not slot) else 3

    return min(remaining, key=cost)  # ties: manifest order


class _Display:
    """One bar for the batch and a line per worker on a terminal; plain lines otherwise."""

    def __init__(self, total: int, done: int, jobs: int, bars: bool, echo: Callable[[str], Any]):
        self.bars = bars
        self.echo = echo
        if bars:
            from tqdm import tqdm

            self.main = tqdm(total=total, initial=done, desc="batch", unit="variant", file=sys.stderr, dynamic_ncols=True)
            self.workers = [
                tqdm(total=0, bar_format="  {desc}", desc=f"worker {i + 1}: starting", position=i + 1, file=sys.stderr, leave=False)
                for i in range(jobs)
            ]

    def line(self, text: str, *, finished: bool = True) -> None:
        if self.bars:
            self.main.write(text, file=sys.stderr)
            if finished:
                self.main.update(1)
        else:
            self.echo(text)

    def worker(self, index: int, name: str | None) -> None:
        if self.bars:
            self.workers[index].set_description_str(f"worker {index + 1}: {name}" if name else f"worker {index + 1}: idle")

    def close(self) -> None:
        if self.bars:
            for bar in self.workers:
                bar.close()
            self.main.close()


def run_batch(
    variants: Sequence[Variant],
    *,
    jobs: int | None = None,
    force: bool = False,
    echo: Callable[[str], Any] = print,
    progress: bool | None = None,
    manifest: str | Path = "",
) -> BatchReport:
    """Render variants in worker processes; one variant's failure does not stop the others.

    Up-to-date outputs are skipped unless ``force``. Variants to render are
    validated first (ManifestError before anything renders). On
    KeyboardInterrupt the workers are stopped, their temporary files removed,
    and the interrupt re-raised; finished outputs stay.
    """
    from . import progress as progress_module

    started = time.perf_counter()
    report = BatchReport()
    todo = []
    for v in variants:
        if not force and is_up_to_date(v):
            report.skipped.append(v.name)
        else:
            todo.append(v)
    bars = progress_module.enabled() if progress is None else progress
    if not bars:
        for name in report.skipped:
            echo(f"skipped {name} (up to date)")
    if not todo:
        report.seconds = time.perf_counter() - started
        return report
    jobs = max(1, min(jobs or _default_jobs(), len(todo)))
    display = _Display(len(variants), len(report.skipped), jobs, bars, echo)
    since = time.time()
    try:
        _render_all(todo, jobs, report, display, manifest, since)
    except KeyboardInterrupt:
        _sweep_temporaries(todo, since)
        echo(f"interrupted: {len(report.rendered)} rendered before the interrupt are kept; no partial file is left")
        raise
    finally:
        display.close()
    report.seconds = time.perf_counter() - started
    return report


_DIED = "the worker process died (crash or killed)"


def _render_all(todo: list[Variant], jobs: int, report: BatchReport, display: _Display, manifest: str | Path, since: float) -> None:
    """Validate in a worker while the others warm up, then hand each idle worker a variant (see ``_pick``)."""
    from ._lifecycle import spawn_context

    context = spawn_context()  # workers start deaf to Ctrl-C: no traceback from a half-started worker
    slots: list[_Slot] = []
    try:
        slots = [_Slot(i, context) for i in range(jobs)]
        check = slots[0].pool.submit(_validate_all, todo, str(manifest))
        for slot in slots[1:]:
            slot.pool.submit(_warm_up)
        try:
            check.result()
        except cf.process.BrokenProcessPool:
            raise MeditationError(f"{manifest}: {_DIED} while checking the variants") from None
        remaining = list(todo)
        started: set = set()
        done: set = set()
        running: dict[cf.Future, _Slot] = {}
        while remaining or running:
            for slot in slots:
                if slot.future is None and remaining:
                    variant = _pick(remaining, slot, slots, started, done)
                    remaining.remove(variant)
                    group = _speech_group(variant)
                    if not (variant.settings.cache and group in done):
                        started.add(group)
                        slot.voices.add(variant.settings.voice)
                    slot.variant, slot.future = variant, slot.pool.submit(_run_one, variant)
                    running[slot.future] = slot
                    display.worker(slot.index, variant.name)
            finished, _ = cf.wait(list(running), timeout=0.5, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                slot = running.pop(future)
                variant = slot.variant
                slot.variant = slot.future = None
                display.worker(slot.index, None)
                try:
                    state, seconds, detail = future.result()
                except cf.process.BrokenProcessPool:
                    state, seconds, detail = "failed", 0.0, _DIED
                    slot.replace_pool()
                    _sweep_temporaries([variant], since)  # what the dead worker was writing
                except Exception as exc:  # pragma: no cover - a bug in the runner itself
                    state, seconds, detail = "failed", 0.0, f"{type(exc).__name__}: {_one_line(exc)}"
                if state == "rendered":
                    done.add(_speech_group(variant))
                    report.rendered.append(variant.name)
                    display.line(f"rendered {variant.name} -> {detail} ({seconds:.1f}s)")
                else:
                    report.failed.append((variant.name, detail))
                    display.line(f"FAILED {variant.name}: {detail}")
        for slot in slots:
            slot.pool.shutdown(wait=True)
    except BaseException:
        _stop_pools([slot.pool for slot in slots])
        raise


def _stop_pools(pools: Sequence[cf.ProcessPoolExecutor]) -> None:
    """Ask every worker to stop (SIGTERM: they unwind and delete their
    temporary files), and make sure every worker has ended."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None  # a second Ctrl-C must not cut the cleanup short
    try:
        # No future.cancel() here: Python 3.11's executor then trips over the
        # cancelled futures when it finds its workers gone (InvalidStateError).
        processes = [p for pool in pools for p in (getattr(pool, "_processes", None) or {}).values()]
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            alive = [p for p in processes if p.is_alive()]
            if not alive:
                break
            for process in alive:
                process.terminate()
            for process in alive:
                process.join(max(0.0, min(0.5, deadline - time.monotonic())))
        for process in processes:
            if process.is_alive():  # stuck in native code: the sweep removes its temporary files
                process.kill()
                process.join(5.0)
        for pool in pools:
            pool.shutdown(wait=True)
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)


def _sweep_temporaries(variants: Sequence[Variant], since: float) -> None:
    """Remove temporary files a killed worker could not (stale ones, whose writer is gone, beside each output)."""
    from ._lifecycle import remove_stale_temporaries

    for folder in {v.settings.output.parent for v in variants}:
        remove_stale_temporaries(folder)


# --- command line ---------------------------------------------------------------


def run_batch_cli(args) -> int:
    """``meditation batch``: expand, validate everything first, then render."""
    if args.jobs is not None and args.jobs < 1:
        raise MeditationError(f"-j {args.jobs}: need at least one worker")
    variants = expand_manifest(args.manifest, out_dir=args.out_dir, cache=args.cache, validate=False)
    if args.dry_run:
        for v in variants:
            validate_variant(v, manifest=args.manifest)
        for v in variants:
            state = "up to date" if (not args.force and is_up_to_date(v)) else "render"
            print(f"{state:>10}  {v.name}  -> {v.settings.output}")
        return 0
    report = run_batch(variants, jobs=args.jobs, force=args.force, manifest=args.manifest)
    for name, reason in report.failed:
        print(f"meditation: failed: {name}: {reason}", file=sys.stderr)
    print(report.summary())
    return 1 if report.failed else 0
