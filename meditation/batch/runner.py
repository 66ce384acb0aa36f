"""Render variants in worker processes: one variant's failure does not stop the others."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import progress as progress_module
from .._lifecycle import die_with_parent, ignore_interrupts, remove_stale_temporaries, spawn_context
from ..errors import MeditationError, one_line
from ..files import probe_once
from .cluster import render_on_cluster
from .display import Display
from .freshness import check_outputs, is_up_to_date
from .manifest import Variant, validate_variant
from .work import (
    BatchReport,
    available_cores,
    render_variant,
    report_result,
    speech_group,
    warm_up,
    worker_limit,
)

__all__ = ["run_batch"]


# --- worker processes -----------------------------------------------------------

_stopping = False


def _worker_init() -> None:
    """Workers print nothing of their own and leave Ctrl-C to the parent, which sends SIGTERM."""
    progress_module.set_enabled(False)
    # A terminal's Ctrl-C reaches every process of the group; the parent decides.
    # Ignored signals stay ignored in the engines' helper processes too.
    ignore_interrupts()
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, _on_terminate)
        # The parent's death (even kill -9) arrives as SIGTERM: unwind, delete temporary files, exit.
        parent = multiprocessing.parent_process()
        try:
            die_with_parent(parent.pid if parent is not None else None)
        except SystemExit:
            # The parent died as this worker started: nothing to unwind, and the pool would print
            # the initializer's "exception" as a traceback on the terminal.
            os._exit(143)
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


def _run_one(variant: Variant, workers: int = 1) -> tuple[str, float, str]:
    """Render in a worker, one of ``workers``: its speech takes its share of the cores."""
    from ..speech import sharing_cores  # noqa: PLC0415 - numpy and the voices: only workers speak

    if _stopping:
        return ("cancelled", 0.0, "")
    start = time.perf_counter()
    try:
        with sharing_cores(workers):
            path, _ = render_variant(variant)
    except SystemExit:
        # SIGTERM from the parent: the render has unwound and deleted its
        # temporary files. Leave now rather than wait for more work.
        os._exit(143)
    except MeditationError as exc:
        return ("failed", time.perf_counter() - start, one_line(exc))
    except Exception as exc:  # a bug hit by one variant must not sink the batch
        return ("failed", time.perf_counter() - start, f"{type(exc).__name__}: {one_line(exc)}")
    return ("rendered", time.perf_counter() - start, str(path))


def _validate_all(variants: Sequence[Variant], manifest: str) -> None:
    with probe_once():  # each output folder probed for writing once, not once per variant
        for v in variants:
            validate_variant(v, manifest=manifest)


def _default_jobs() -> int:
    return available_cores()


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
        return cf.ProcessPoolExecutor(
            max_workers=1, mp_context=self.context, initializer=_worker_init
        )

    def replace_pool(self) -> None:
        """After the worker died: a fresh one for the next variant."""
        self.pool.shutdown(wait=False)
        self.pool = self._new_pool()
        self.voices = set()


def _pick(
    remaining: list[Variant], slot: _Slot, slots: Sequence[_Slot], started: set, done: set
) -> Variant:
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
        group = speech_group(v)
        if v.settings.cache and group in done:
            return 2
        if v.settings.cache and group in started:
            return 5
        if voice in slot.voices:
            return 0
        return 1 if not any(voice in s.voices for s in slots if s is not slot) else 3

    return min(remaining, key=cost)  # ties: manifest order


def run_batch(
    variants: Sequence[Variant],
    *,
    jobs: int | None = None,
    force: bool = False,
    echo: Callable[[str], Any] = print,
    progress: bool | None = None,
    manifest: str | Path = "",
    scheduler: Any = None,
    client: Any = None,
    shared_folder: bool = False,
) -> BatchReport:
    """Render variants in worker processes; one variant's failure does not stop the others.

    Every output is checked first (``check_outputs``: nothing overwrites an
    input or a file this tool did not write), then up-to-date outputs are
    skipped unless ``force``, and the variants to render are validated
    (ManifestError before anything renders). On KeyboardInterrupt the
    workers are stopped, their temporary files removed, and the interrupt
    re-raised; finished outputs stay.

    Parameters
    ----------
    variants
        From ``expand_manifest``.
    jobs
        Local worker processes (default: one per core; at most two per core).
    force
        Render even what is up to date.
    echo
        Where the per-variant lines go when there are no progress bars.
    progress
        Bars on stderr (default: when stderr is a terminal).
    manifest
        Named in error messages; also an input that no output may replace.
    scheduler
        ``"tcp://HOST:8786"`` or ``"local:N"`` (or a ``cluster.Connection``
        to one): render on a Dask cluster instead of local worker processes
        (needs ``meditation[cluster]``).
    client
        A ``distributed.Client`` to render on (instead of ``scheduler``).
    shared_folder
        On a cluster, workers write straight into the output folder (it must
        be the same path on every worker) instead of returning the bytes.
    """
    started = time.perf_counter()
    check_outputs(variants, manifest=manifest or None)
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
    on_cluster = client is not None or scheduler is not None
    if on_cluster:
        display = Display(len(variants), len(report.skipped), 0, bars, echo)
        work = lambda: render_on_cluster(  # noqa: E731
            todo,
            report,
            display,
            client=client,
            scheduler=scheduler,
            shared_folder=shared_folder,
            manifest=manifest,
        )
    else:
        jobs = _cap_jobs(jobs, len(todo))
        display = Display(len(variants), len(report.skipped), jobs, bars, echo)
        work = lambda: _render_all(todo, jobs, report, display, manifest, since)  # noqa: E731
    since = time.time()
    try:
        work()
    except KeyboardInterrupt:
        _sweep_temporaries(todo, since)
        display.close()
        echo(
            f"interrupted: {len(report.rendered)} rendered before the interrupt are kept; no partial file is left"
        )
        raise
    finally:
        display.close()
    report.seconds = time.perf_counter() - started
    return report


def _cap_jobs(jobs: int | None, n_variants: int) -> int:
    """Workers: as asked, but no more than two per core (each may hold a voice model) nor than variants."""
    asked = _default_jobs() if jobs is None else worker_limit(jobs, f"-j {jobs}")
    return max(1, min(asked, n_variants))


_DIED = "the worker process died (crash or killed)"


def _render_all(
    todo: list[Variant],
    jobs: int,
    report: BatchReport,
    display: Display,
    manifest: str | Path,
    since: float,
) -> None:
    """Validate in a worker while the others warm up, then hand each idle worker a variant (see ``_pick``)."""
    context = (
        spawn_context()
    )  # workers start deaf to Ctrl-C: no traceback from a half-started worker
    slots: list[_Slot] = []
    try:
        slots = [_Slot(i, context) for i in range(jobs)]
        check = slots[0].pool.submit(_validate_all, todo, str(manifest))
        for slot in slots[1:]:
            slot.pool.submit(warm_up)
        try:
            check.result()
        except cf.process.BrokenProcessPool:
            raise MeditationError(f"{manifest}: {_DIED} while checking the variants") from None
        remaining = list(todo)
        started: set = set()
        done: set = set()
        running: dict[cf.Future, tuple[_Slot, Variant]] = {}
        while remaining or running:
            for slot in slots:
                if slot.future is None and remaining:
                    variant = _pick(remaining, slot, slots, started, done)
                    remaining.remove(variant)
                    group = speech_group(variant)
                    if not (variant.settings.cache and group in done):
                        started.add(group)
                        slot.voices.add(variant.settings.voice)
                    slot.variant, slot.future = variant, slot.pool.submit(_run_one, variant, jobs)
                    running[slot.future] = slot, variant
                    display.worker(slot.index, variant.name)
            finished, _ = cf.wait(list(running), timeout=0.5, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                slot, variant = running.pop(future)
                slot.variant = slot.future = None
                display.worker(slot.index, None)
                try:
                    state, seconds, detail = future.result()
                except cf.process.BrokenProcessPool:
                    state, seconds, detail = "failed", 0.0, _DIED
                    slot.replace_pool()
                    _sweep_temporaries([variant], since)  # what the dead worker was writing
                except Exception as exc:  # pragma: no cover - a bug in the runner itself
                    state, seconds, detail = (
                        "failed",
                        0.0,
                        f"{type(exc).__name__}: {one_line(exc)}",
                    )
                if state == "rendered":
                    done.add(speech_group(variant))
                report_result(report, display, variant, state, seconds, detail)
        for slot in slots:
            slot.pool.shutdown(wait=True)
    except BaseException:
        _stop_pools([slot.pool for slot in slots])
        raise


def _stop_pools(pools: Sequence[cf.ProcessPoolExecutor]) -> None:
    """Ask every worker to stop (SIGTERM: they unwind and delete their
    temporary files), and make sure every worker has ended."""
    main = threading.current_thread() is threading.main_thread()
    previous = (
        signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    )  # a second Ctrl-C must not cut the cleanup short
    try:
        # No future.cancel() here: Python 3.11's executor then trips over the
        # cancelled futures when it finds its workers gone (InvalidStateError).
        processes = [
            p for pool in pools for p in (getattr(pool, "_processes", None) or {}).values()
        ]
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
    for folder in {v.settings.output.parent for v in variants}:
        remove_stale_temporaries(folder)
