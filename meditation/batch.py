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
Python API: ``expand_manifest`` gives ``Variant`` objects (settings inside);
``render_variant`` renders one and returns its path and sidecar data — map
it over variants with any job runner.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import itertools
import json
import multiprocessing
import os
import re
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .errors import ManifestError, MeditationError
from .settings import FORMATS, RenderSettings, coerce, resolve_settings

__all__ = ["Variant", "expand_manifest", "render_variant", "run_batch", "BatchReport", "sidecar_path"]

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


@dataclass(frozen=True)
class Variant:
    """One render of a batch: a name for reports and complete, validated settings."""

    name: str
    settings: RenderSettings
    values: Mapping[str, Any]
    """The manifest values that made it (for reports)."""


def sidecar_path(output: Path) -> Path:
    """``NAME.json`` next to ``NAME.mp3``."""
    return output.with_suffix(".json")


def expand_manifest(path: str | Path, *, out_dir: str | Path | None = None, cache: bool = True) -> list[Variant]:
    """Read, expand and validate a manifest; raise ManifestError naming the variant and key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such manifest") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path}: {exc}") from None
    for key in data:
        if key not in ("output", "defaults", "matrix", "variants"):
            raise ManifestError(f"{path}: unknown top-level key {key!r} (known: output, defaults, matrix, variants)")
    template = data.get("output")
    if not isinstance(template, str) or not template:
        raise ManifestError(f"{path}: needs a top-level output name template, e.g. output = \"{{script}}-{{seed}}.mp3\"")
    suffix = Path(template).suffix.lower()
    if suffix not in FORMATS:
        raise ManifestError(f"{path}: output template {template!r} must end in one of {', '.join(FORMATS)}")
    base = path.parent
    out_dir = Path(out_dir) if out_dir is not None else base
    if not out_dir.is_dir():
        raise ManifestError(f"{path}: output folder {str(out_dir)!r} does not exist")
    defaults = _table(data.get("defaults", {}), "[defaults]", path)
    _check_keys(defaults, "[defaults]", path)
    matrix = _table(data.get("matrix", {}), "[matrix]", path)
    _check_keys(matrix, "[matrix]", path)
    for key, values in matrix.items():
        if not isinstance(values, list) or not values:
            raise ManifestError(f"{path}: [matrix] {key} must be a non-empty list of values")
    hand = data.get("variants", [])
    if not isinstance(hand, list):
        raise ManifestError(f"{path}: variants must be an array of tables ([[variants]])")
    combos: list[tuple[str, dict]] = []
    if matrix:
        keys = list(matrix)
        for i, values in enumerate(itertools.product(*(matrix[k] for k in keys))):
            combo = dict(zip(keys, values))
            combos.append((f"matrix #{i + 1} ({', '.join(f'{k}={v}' for k, v in combo.items())})", {**defaults, **combo}))
    for i, table in enumerate(hand):
        table = _table(table, f"[[variants]] #{i + 1}", path)
        label = f"variant {table.get('name', '#' + str(i + 1))!r}"
        _check_keys({k: v for k, v in table.items() if k != "name"}, label, path)
        combos.append((label, {**defaults, **table}))
    if not combos:
        if not defaults:
            raise ManifestError(f"{path}: nothing to render: add [defaults], [matrix] or [[variants]]")
        combos.append(("defaults", dict(defaults)))

    variants: list[Variant] = []
    seen: dict[Path, str] = {}
    from .script import read_script

    scripts: dict[Path, Any] = {}
    for label, values in combos:
        values = dict(values)
        name = str(values.pop("name", ""))
        script_path = _resolve(values.get("script"), base)
        if script_path is None:
            from .settings import DEFAULT_SCRIPT

            script_path = DEFAULT_SCRIPT
        try:
            if script_path not in scripts:
                scripts[script_path] = read_script(script_path)
            script = scripts[script_path]
            explicit = {k: v for k, v in values.items() if k != "script"}
            explicit = {k: (_resolve(v, base) if k == "soundscape" and str(v).endswith(".toml") else v) for k, v in explicit.items()}
            for key, value in explicit.items():
                coerce(key, value)  # type errors name the key
            output = out_dir / _fill(template, values, script_path, name, label, path)
            settings = resolve_settings({**explicit, "script": script_path, "output": output, "cache": cache}, script)
            from .voices import resolve_voice

            settings = dataclasses.replace(settings, voice=resolve_voice(settings.voice))
            if settings.soundscape not in ("none", "auto"):
                from .soundscape import load_preset

                load_preset(settings.soundscape)
        except ManifestError:
            raise
        except MeditationError as exc:
            raise ManifestError(f"{path}: {label}: {exc}") from None
        if output in seen:
            raise ManifestError(f"{path}: {label} and {seen[output]} would both write {output.name}; add a distinguishing field to the output template")
        seen[output] = label
        variants.append(Variant(name=name or output.stem, settings=settings, values=values))
    return variants


def _table(value: Any, what: str, path: Path) -> dict:
    if not isinstance(value, Mapping):
        raise ManifestError(f"{path}: {what} must be a table")
    return dict(value)


def _check_keys(table: Mapping, what: str, path: Path) -> None:
    for key in table:
        if key not in _KEYS:
            raise ManifestError(f"{path}: {what}: unknown key {key!r} (known: {', '.join(sorted(_KEYS))})")


def _resolve(value: Any, base: Path) -> Path | None:
    if value is None:
        return None
    p = Path(str(value))
    return p if p.is_absolute() else base / p


_FIELD = re.compile(r"\{(\w+)\}")


def _fill(template: str, values: Mapping, script_path: Path, name: str, label: str, manifest: Path) -> str:
    def value(match: re.Match) -> str:
        key = match.group(1)
        if key == "script":
            return script_path.stem
        if key == "name":
            return name or "variant"
        if key in values:
            text = str(values[key])
        elif key in _KEYS:
            default = getattr(RenderSettings(), {"lead_in": "lead_in_s", "tail": "tail_s", "loudness": "loudness_lufs", "duration": "duration_s"}.get(key, key))
            text = str(default)
        else:
            raise ManifestError(f"{manifest}: output template field {{{key}}} is not a setting ({label})")
        if key == "soundscape" and text.endswith(".toml"):
            text = Path(text).stem
        return re.sub(r"[^\w.+-]+", "-", text).strip("-") or "x"

    return _FIELD.sub(value, template)


def _settings_record(settings: RenderSettings) -> dict:
    """Settings as JSON-able values: what the sidecar records and skip/resume compares."""
    out = {}
    for key, value in dataclasses.asdict(settings).items():
        if key in ("output", "timings", "stems", "cache"):
            continue
        if isinstance(value, Path):
            value = str(value.resolve())
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


def _fingerprint(settings: RenderSettings) -> dict:
    """What decides the output's content: settings, package version, and the script's text."""
    import hashlib

    from . import __version__

    script_hash = hashlib.sha256(Path(settings.script).read_bytes()).hexdigest()
    preset_hash = ""
    if settings.soundscape not in ("none",):
        from .soundscape import load_preset

        name = settings.soundscape
        if name == "auto":
            from .script import read_script

            name = read_script(settings.script).settings.get("soundscape", "default")
        preset_hash = hashlib.sha256(load_preset(name).path.read_bytes()).hexdigest()
    return {"settings": _settings_record(settings), "version": __version__, "script_sha256": script_hash, "soundscape_sha256": preset_hash}


def is_up_to_date(variant: Variant) -> bool:
    """True when the output exists and its sidecar records exactly these settings."""
    output = variant.settings.output
    side = sidecar_path(output)
    if not output.is_file() or not side.is_file():
        return False
    try:
        recorded = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    fp = _fingerprint(variant.settings)
    return all(recorded.get(k) == v for k, v in fp.items())


def render_variant(variant: Variant) -> tuple[Path, dict]:
    """Render one variant and write its sidecar; returns (output path, sidecar data)."""
    from .export import atomic_write_text
    from .render import render

    result = render(variant.settings)
    data = {**result.sidecar(), **_fingerprint(variant.settings), "name": variant.name}
    atomic_write_text(sidecar_path(result.path), json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return result.path, data


@dataclass
class BatchReport:
    """How a batch went."""

    rendered: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        return f"{len(self.rendered)} rendered, {len(self.failed)} failed, {len(self.skipped)} skipped"


def _worker_init() -> None:
    # Workers print nothing of their own; the parent reports.
    from . import progress

    progress.set_enabled(False)


def _run_one(variant: Variant) -> tuple[str, float, str]:
    start = time.perf_counter()
    try:
        path, _ = render_variant(variant)
    except MeditationError as exc:
        return ("failed", time.perf_counter() - start, str(exc))
    return ("rendered", time.perf_counter() - start, str(path))


def run_batch(variants: Sequence[Variant], *, jobs: int | None = None, force: bool = False, echo=print) -> BatchReport:
    """Render variants in worker processes; one variant's failure does not stop the others."""
    from .progress import enabled

    report = BatchReport()
    todo = []
    for v in variants:
        if not force and is_up_to_date(v):
            report.skipped.append(v.name)
        else:
            todo.append(v)
    if not todo:
        return report
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo)))
    bars = enabled()
    if bars:
        from tqdm import tqdm

        main_bar = tqdm(total=len(variants), initial=len(report.skipped), desc="batch", unit="variant", file=sys.stderr, dynamic_ncols=True)
        worker_bars = [tqdm(total=0, bar_format="  {desc}", position=i + 1, file=sys.stderr, leave=False) for i in range(jobs)]
    context = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_worker_init)
    futures = {}
    try:
        futures = {pool.submit(_run_one, v): v for v in todo}
        pending = set(futures)
        while pending:
            done, pending = cf.wait(pending, timeout=0.5, return_when=cf.FIRST_COMPLETED)
            for future in done:
                variant = futures[future]
                try:
                    status, seconds, detail = future.result()
                except cf.process.BrokenProcessPool:
                    status, seconds, detail = "failed", 0.0, "worker process died"
                except Exception as exc:  # a bug in one variant must not sink the batch
                    status, seconds, detail = "failed", 0.0, f"{type(exc).__name__}: {exc}"
                if status == "rendered":
                    report.rendered.append(variant.name)
                    line = f"rendered {variant.name} -> {detail} ({seconds:.1f}s)"
                else:
                    report.failed.append((variant.name, detail))
                    line = f"FAILED {variant.name}: {detail}"
                if bars:
                    main_bar.write(line, file=sys.stderr)
                    main_bar.update(1)
                else:
                    echo(line)
            if bars:
                running = [futures[f].name for f in pending if f.running()][:jobs]
                for i, bar in enumerate(worker_bars):
                    bar.set_description_str(f"worker {i + 1}: {running[i]}" if i < len(running) else f"worker {i + 1}: idle")
    except KeyboardInterrupt:
        for future in futures:
            future.cancel()
        # Workers got the same SIGINT and discard their temporary files; make sure they end.
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        if bars:
            for bar in worker_bars:
                bar.close()
            main_bar.close()
    pool.shutdown(wait=True)
    return report


def run_batch_cli(args) -> int:
    """``meditation batch``: expand, validate everything first, then render."""
    variants = expand_manifest(args.manifest, out_dir=args.out_dir, cache=args.cache)
    if args.dry_run:
        for v in variants:
            state = "up to date" if (not args.force and is_up_to_date(v)) else "render"
            print(f"{state:>10}  {v.name}  -> {v.settings.output}")
        return 0
    if args.jobs is not None and args.jobs < 1:
        raise MeditationError(f"-j {args.jobs}: need at least one worker")
    report = run_batch(variants, jobs=args.jobs, force=args.force)
    for name, reason in report.failed:
        print(f"meditation: failed: {name}: {reason}", file=sys.stderr)
    print(report.summary())
    return 1 if report.failed else 0
