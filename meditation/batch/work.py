"""The work shared by local and cluster runs: render one variant with its sidecar, report, warm up.

``runner`` (local worker processes) and ``cluster`` (Dask) both import this
module, and neither imports the other's internals.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .._threads import available_cores
from ..errors import SettingsError
from ..files import all_or_nothing, atomic_write_text
from ..settings import RenderSettings
from .display import Display
from .freshness import _fingerprint, check_outputs, sidecar_path
from .manifest import Variant

__all__ = [
    "available_cores",
    "worker_limit",
    "render_variant",
    "render_settings",
    "sidecar_data",
    "BatchReport",
    "report_result",
    "speech_group",
    "speech_first",
    "warm_up",
]


def render_variant(variant: Variant | RenderSettings) -> tuple[Path, dict]:
    """Render one variant and write its sidecar; returns (output path, sidecar data).

    The output appears complete or not at all, then its sidecar: an
    interrupted render leaves either nothing or a finished file that the next
    run renders again (a missing or older sidecar never matches).
    """
    if isinstance(variant, RenderSettings):
        variant = Variant(name=variant.output.stem, settings=variant, values={})
    settings = variant.settings
    check_outputs([variant])
    # --out-dir and a template's sub-folders stay: workers share them, so one's failure must not remove them.
    settings.output.parent.mkdir(parents=True, exist_ok=True)
    with all_or_nothing():  # the audio and its sidecar together, or neither
        try:
            result = render_settings(settings)
        except SettingsError as exc:  # named as the manifest names it: duration, not --duration
            raise SettingsError(exc.worded_as_key()) from None
        data = sidecar_data(
            variant, result.sidecar(), result.duration_s, result.path.stat().st_size
        )
        atomic_write_text(
            sidecar_path(result.path), json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        )
    return result.path, data


def render_settings(settings: RenderSettings, script=None):
    """``render`` a variant, or ``render_ambient`` one with a ``schedule`` (an ambient night, no script)."""
    # Here, not at the top: slow, and the batch's parent process never renders.
    from ..render import render, render_ambient  # noqa: PLC0415

    if settings.schedule is not None:
        assert settings.duration_s is not None, "expansion refuses a schedule without a duration"
        return render_ambient(settings, settings.duration_s)
    return render(settings, script)


def sidecar_data(variant: Variant, measured: dict, duration_s: float, output_bytes: int) -> dict:
    """What ``NAME.json`` records: ``measured`` is ``RenderResult.sidecar()``, from wherever it rendered."""
    output = Path(variant.settings.output)
    return {
        "name": variant.name,
        "output": str(output.resolve()),
        "output_bytes": output_bytes,
        **measured,
        "duration_s": round(duration_s, 4),
        **_fingerprint(variant.settings, authoritative=True),
    }


@dataclass
class BatchReport:
    """How a batch went."""

    rendered: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    failed: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{len(self.rendered)} rendered, {len(self.failed)} failed, {len(self.skipped)} skipped"
        )


def report_result(
    report: BatchReport, display: Display, variant: Variant, state: str, seconds: float, detail: str
) -> None:
    """One line per finished variant, failures on stderr (reported once: here)."""
    if state == "rendered":
        report.rendered.append(variant.name)
        display.line(f"rendered {variant.name} -> {detail} ({seconds:.1f} s)")
    else:
        report.failed.append((variant.name, detail))
        display.line(f"failed: {variant.name}: {detail}", error=True)


def speech_group(variant: Variant) -> tuple:
    """Variants sharing (script, voice, rate, wpm, speakers, wind-down) share all their speech."""
    s = variant.settings
    return (str(s.script), s.voice, s.rate, s.wpm, s.speakers, s.wind_down)


def speech_first(todo: Sequence[Variant]) -> list[Variant]:
    """One variant of each (script, voice, rate) first: the others then find their speech cached."""
    firsts: list[Variant] = []
    rest: list[Variant] = []
    seen: set[tuple] = set()
    for v in todo:
        group = speech_group(v)
        (rest if group in seen else firsts).append(v)
        seen.add(group)
    return firsts + rest


def warm_up() -> None:
    """Import what every render needs (about a second), so that a worker's first variant does not wait for it.

    The local runner's workers do this while the first one checks the
    variants; a cluster's workers as they start.
    """
    # Here, not at the top: importing them now, in the worker, is the point.
    import pedalboard  # noqa: F401, PLC0415 - the voice chain
    import pyloudnorm  # noqa: F401, PLC0415
    import soundfile  # noqa: F401, PLC0415
    import soxr  # noqa: F401, PLC0415

    from .. import render, soundscape  # noqa: F401, PLC0415


def worker_limit(asked: int, option: str) -> int:
    """``asked`` workers, but at most two per core (each may hold a voice model); a note when capped.

    ``option`` names what asked, as the user wrote it (``-j 1000``, ``--scheduler local:1000``).
    """
    cores = available_cores()
    limit = 2 * cores
    if asked > limit:
        print(
            f"meditation: note: {option} is more than this machine can run at once; "
            f"using {limit} workers ({cores} cores)",
            file=sys.stderr,
        )
    return min(asked, limit)
