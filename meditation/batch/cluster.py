"""Render a batch on a Dask cluster: one task per variant, the client decides and writes.

The client (this process) does everything that needs the manifest's files:
it validates every variant, checks every output, decides what is up to date
(``runner.run_batch`` before it gets here) and writes the finished files.
A worker gets the variant's settings and its parsed script (and the text of
a preset file), renders into its own scratch folder and returns the bytes
and the measurements; the client writes output and sidecar atomically into
the output folder, so no shared filesystem is needed. With
``shared_folder`` the workers write straight into the output folder instead
(for very large outputs), through the same temp-file-and-rename as a local
render.

A worker that dies mid-variant (killed, out of memory) has its task
rescheduled by Dask on another worker, up to Dask's
``distributed.scheduler.allowed-failures`` (3 by default); a variant that
fails for its own reasons returns its error and fails once.

Requires ``distributed`` (the ``cluster`` extra).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import logging
import re
import signal
import socket
import struct
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import progress
from ..errors import MeditationError, install_hint, one_line
from ..files import atomic_write_bytes, atomic_write_text, read_input, record_written
from ..script import read_script
from ..tomlfile import MAX_TOML_BYTES
from .display import Display
from .freshness import sidecar_path
from .manifest import Variant, validate_variant
from .work import (
    render_settings,
    render_variant,
    report_result,
    sidecar_data,
    speech_first,
    warm_up,
    worker_limit,
)

__all__ = ["parse_scheduler", "require_distributed", "render_on_cluster", "Connection"]

CONNECT_TIMEOUT_S = 10.0
"""How long a scheduler has to accept the connection and greet (a busy one answers in milliseconds)."""
_GREETING_MAX_BYTES = 1 << 20
"""A Dask scheduler's greeting (its handshake) is a few hundred bytes; a length beyond this is another protocol."""

_INSTALL = f"--scheduler needs Dask's distributed scheduler: {install_hint('cluster')}"


def require_distributed() -> None:
    """Raise one line saying how to install Dask when it is missing.

    Found, not imported: importing ``distributed`` takes a third of a second,
    which the connection's own thread spends instead, beside the manifest's checks.
    """
    if importlib.util.find_spec("distributed") is None:
        raise MeditationError(_INSTALL)


def parse_scheduler(text: str) -> tuple[str, Any]:
    """``("local", N)`` for ``local:N``, ``("address", text)`` for a scheduler address."""
    text = str(text).strip()
    local = re.fullmatch(r"local:(\d+)", text)
    if local:
        n = int(local.group(1))
        if not 1 <= n <= 1024:
            raise MeditationError(f"--scheduler {text}: need 1 to 1024 local workers")
        return "local", n
    if re.fullmatch(r"(tcp|tls|ucx|ws|wss)://[^\s/]+(:\d+)?/?", text):
        if text.startswith("ucx://") and importlib.util.find_spec("distributed_ucxx") is None:
            raise MeditationError(
                f"--scheduler {text}: ucx:// needs Dask's UCX support (distributed-ucxx), not installed here"
            )
        return "address", text
    raise MeditationError(
        f"--scheduler {text!r}: write tcp://HOST:8786 for a running Dask scheduler, or local:N for N local worker processes"
    )


# --- on the worker ----------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    """What a worker needs: no path of the client's is read on the worker (unless ``shared``)."""

    variant: Variant
    script: Any
    preset_text: str | None
    shared: bool
    renders_here: int | None = None
    """Renders at once on the worker's machine (``local:N``: N); None: the worker's own threads."""


@dataclass(frozen=True)
class _Outcome:
    state: str  # "rendered" or "failed"
    seconds: float
    detail: str  # the error, or (shared) the output written
    audio: bytes | None = None
    measured: dict | None = None
    duration_s: float = 0.0


def _render_task(job: _Job) -> _Outcome:
    """Render one variant on a worker (runs in a worker thread), its speech taking its share of the cores."""
    with _sharing_cores(job):
        return _render(job)


def _render(job: _Job) -> _Outcome:
    progress.set_enabled(False)
    start = time.perf_counter()
    try:
        if job.shared:
            path, _ = render_variant(job.variant)
            return _Outcome("rendered", time.perf_counter() - start, str(path))
        settings = job.variant.settings
        # The worker's scratch folder: Dask removes it with the worker.
        with tempfile.TemporaryDirectory(prefix="meditation-", dir=_scratch_folder()) as tmp:
            changes: dict[str, Any] = {"output": Path(tmp) / Path(settings.output).name}
            if job.preset_text is not None:
                preset = Path(tmp) / "presets" / Path(settings.soundscape).name
                preset.parent.mkdir()
                preset.write_text(job.preset_text, encoding="utf-8")
                changes["soundscape"] = str(preset)
            result = render_settings(dataclasses.replace(settings, **changes), job.script)
            audio = Path(result.path).read_bytes()
        return _Outcome(
            "rendered", time.perf_counter() - start, "", audio, result.sidecar(), result.duration_s
        )
    except MeditationError as exc:
        return _Outcome("failed", time.perf_counter() - start, one_line(exc))
    except AssertionError as exc:
        if "daemonic" not in str(exc):
            raise
        return _Outcome("failed", time.perf_counter() - start, _DAEMONIC)
    except Exception as exc:  # a bug hit by one variant must not sink the batch
        return _Outcome(
            "failed", time.perf_counter() - start, f"{type(exc).__name__}: {one_line(exc)}"
        )


_DAEMONIC = (
    "this voice speaks in a helper process, which daemonic Dask workers may not start; "
    "start the workers with DASK_DISTRIBUTED__WORKER__DAEMON=False in their environment"
)


def _sharing_cores(job: _Job):
    """This machine's cores shared by ``local:N``'s N workers; else the worker's threads by the tasks it runs now."""
    from ..speech import sharing_cores  # noqa: PLC0415 - numpy and the voices: only workers speak

    if job.renders_here is not None:
        return sharing_cores(job.renders_here)
    try:
        from distributed import get_worker  # noqa: PLC0415 - optional extra (dask)

        state = get_worker().state
        return sharing_cores(state.executing_count, cores=state.nthreads)
    except (ImportError, ValueError, AttributeError):  # not on a worker
        return contextlib.nullcontext()


def _scratch_folder() -> str | None:
    try:
        from distributed import get_worker  # noqa: PLC0415 - optional extra (dask)

        return get_worker().local_directory
    except (ImportError, ValueError):
        return None


# --- on the client ----------------------------------------------------------------


def render_on_cluster(
    todo: Sequence[Variant],
    report,
    display: Display,
    *,
    client: Any = None,
    scheduler: str | None = None,
    shared_folder: bool = False,
    manifest: str | Path = "",
) -> None:
    """Submit every variant in ``todo`` as one task and write each result as it completes.

    The workers of ``local:N`` share this machine's folders: they write
    straight into the output folder, as with ``shared_folder`` (sending
    each file to the client to be written again cost a tenth of the batch).
    """
    require_distributed()
    shared_folder = shared_folder or _is_local(scheduler)
    from distributed import as_completed  # noqa: PLC0415 - optional extra (dask)

    for v in todo:
        validate_variant(v, manifest=manifest)
    scripts: dict[Path, Any] = {}
    presets: dict[str, str] = {}
    for v in todo:
        s = v.settings
        if s.script not in scripts:
            scripts[s.script] = read_script(s.script)
        if (
            not shared_folder
            and str(s.soundscape).lower().endswith(".toml")
            and s.soundscape not in presets
        ):
            presets[s.soundscape] = read_input(s.soundscape, "soundscape", MAX_TOML_BYTES).decode()
    with _connected(client, scheduler) as client:
        futures = {}
        batch_id = uuid.uuid4().hex[:8]
        for rank, v in enumerate(speech_first(todo)):
            s = v.settings
            job = _Job(
                v,
                scripts[s.script],
                presets.get(s.soundscape),
                shared_folder,
                _local_workers(scheduler),
            )
            future = client.submit(
                _render_task, job, key=f"meditation-{batch_id}-{rank}", pure=False, priority=-rank
            )
            futures[future] = v
        try:
            for future in as_completed(list(futures)):
                variant = futures[future]
                state, seconds, detail = _collect(future, variant, shared_folder)
                report_result(report, display, variant, state, seconds, detail)
                future.release()
        except BaseException:
            # Ctrl-C: nothing more is started; the client writes nothing more.
            client.cancel(list(futures), force=True)
            if shared_folder and isinstance(scheduler, Connection):
                # Stop the workers now: the temporary files of the renders they
                # were writing are then stale, and the batch's sweep removes them.
                scheduler.close()
            raise


def _local_workers(scheduler: Any) -> int | None:
    """N for ``local:N`` (its workers share this machine), else None."""
    text = scheduler.scheduler if isinstance(scheduler, Connection) else scheduler
    if isinstance(text, str) and parse_scheduler(text)[0] == "local":
        return parse_scheduler(text)[1]
    return None


def _is_local(scheduler: Any) -> bool:
    """Whether ``scheduler`` is ``local:N`` (a LocalCluster on this machine), given as text or as a Connection to it."""
    text = scheduler.scheduler if isinstance(scheduler, Connection) else scheduler
    return isinstance(text, str) and parse_scheduler(text)[0] == "local"


def _collect(future, variant: Variant, shared: bool) -> tuple[str, float, str]:
    """The state, seconds and detail of a finished task; writes the output and sidecar here."""
    from distributed import KilledWorker  # noqa: PLC0415 - optional extra (dask)

    try:
        outcome: _Outcome = future.result()
    except KilledWorker:
        return (
            "failed",
            0.0,
            "its worker died every time it ran (killed or out of memory; see Dask's allowed-failures)",
        )
    except Exception as exc:  # the task could not run at all (e.g. it could not be unpickled)
        return "failed", 0.0, f"{type(exc).__name__}: {one_line(exc)}"
    if outcome.state != "rendered":
        return outcome.state, outcome.seconds, outcome.detail
    if shared:
        # The worker wrote them, into its own record of written files: this
        # machine records them too, so that a later run here may replace them.
        output = Path(variant.settings.output)
        record_written(output)
        record_written(sidecar_path(output))
        return outcome.state, outcome.seconds, outcome.detail
    output = Path(variant.settings.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    audio, measured = outcome.audio, outcome.measured
    if audio is None or measured is None:  # a rendered outcome carries both: never expected
        return "failed", outcome.seconds, "the worker sent back no audio"
    atomic_write_bytes(output, audio)  # checked again, renamed into place, recorded as ours
    data = sidecar_data(variant, measured, outcome.duration_s, len(audio))
    atomic_write_text(sidecar_path(output), json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return "rendered", outcome.seconds, str(output)


_LOCAL_CONFIG = {
    "distributed.worker.daemon": False,
    # The statistical profiler samples the render thread's stack every 10 ms,
    # holding the GIL each time: a render in a worker took 3x as long with it.
    "distributed.worker.profile.enabled": False,
    # Dask sets MALLOC_TRIM_THRESHOLD_ in new workers; any explicit malloc
    # threshold stops glibc from adapting its mmap threshold, so every large
    # array is mapped and unmapped afresh: renders took 1.7x as long.
    "distributed.nanny.pre-spawn-environ": {
        "OMP_NUM_THREADS": 1,
        "MKL_NUM_THREADS": 1,
        "OPENBLAS_NUM_THREADS": 1,
    },
}


class Connection:
    """Connect to a scheduler (or start a LocalCluster) in the background, closed by ``close``.

    Started before the manifest is read, the workers start and import the
    renderer (``dask_setup``) while this process expands and checks the
    manifest, instead of after.
    """

    def __init__(self, scheduler: str):
        parse_scheduler(scheduler)
        self.scheduler = scheduler
        self._context: contextlib.AbstractContextManager[Any] | None = None
        self._client = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._connect, name="meditation-connect", daemon=True
        )
        self._thread.start()

    def _connect(self) -> None:
        if hasattr(signal, "pthread_sigmask"):
            # This thread and Dask's threads it starts leave Ctrl-C to the main thread.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self._context = _connected(None, self.scheduler)
            self._client = self._context.__enter__()
        except BaseException as exc:  # handed to the main thread by client()
            self._error = exc

    def client(self) -> Any:
        """The connected client (waits for the connection)."""
        while self._thread.is_alive():
            self._thread.join(0.1)  # short waits: Ctrl-C is handled between them
        if self._error is not None:
            raise self._error
        return self._client

    def close(self) -> None:
        """Close the client and the LocalCluster, if any (waits for a connection under way)."""
        while self._thread.is_alive():
            self._thread.join(0.1)
        if self._context is not None and self._client is not None:
            context, self._context = self._context, None
            context.__exit__(None, None, None)


def dask_setup(worker) -> None:
    """Run by each LocalCluster worker as it starts (``preload``).

    The worker leaves a terminal's Ctrl-C to the batch (which cancels the
    tasks and closes the cluster) instead of printing its own traceback, and
    imports what every render needs.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    warm_up()


@contextlib.contextmanager
def _connected(client: Any, scheduler: Any) -> Iterator[Any]:
    """The given client, or one to the scheduler (a LocalCluster for local:N), closed afterwards."""
    if client is not None:
        yield client
        return
    if isinstance(scheduler, Connection):
        yield scheduler.client()  # its owner closes it
        return
    import dask  # noqa: PLC0415 - optional extra (dask)
    from distributed import Client, LocalCluster  # noqa: PLC0415 - optional extra (dask)

    kind, where = parse_scheduler(scheduler)
    # Workers must be allowed children (the pyttsx3 voice speaks in one),
    # including those the nanny restarts after a worker died: for the cluster's life.
    with dask.config.set(_LOCAL_CONFIG):
        with _interrupts_blocked():
            try:
                if kind == "local":
                    cluster = LocalCluster(
                        n_workers=worker_limit(where, f"--scheduler {scheduler}"),
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=":0",
                        silence_logs=logging.ERROR,
                        preload=[__name__],
                    )
                    client = Client(cluster)
                else:
                    cluster = None
                    _check_address(where)
                    client = Client(where, timeout=f"{CONNECT_TIMEOUT_S:g}s")
            except (
                OSError,
                RuntimeError,
                TimeoutError,
                TypeError,
                ValueError,
                MemoryError,
            ) as exc:  # unreachable, workers that would not start, or a comm Dask could not set up
                what = (
                    "cannot start the local cluster"
                    if kind == "local"
                    else "cannot reach the scheduler"
                )
                raise MeditationError(f"--scheduler {scheduler}: {what}: {one_line(exc)}") from None
        try:
            yield client
        finally:
            with _interrupts_blocked(), contextlib.suppress(Exception):
                client.close()
                if cluster is not None:
                    cluster.close()


def _check_address(address: str) -> None:
    """Refuse in one line, within CONNECT_TIMEOUT_S, an address where no Dask scheduler can be answering.

    Dask waits for the scheduler's greeting without a time limit and takes its
    first eight bytes as a length: a port that accepts and never speaks would
    hang the batch, and one that speaks another protocol first (an SSH banner)
    would make it allocate exabytes. Over plain TCP a Dask scheduler greets
    at once, so the greeting's length is read here first. TLS and websockets
    need Dask's TLS configuration (certificates) to connect at all.
    """
    import dask  # noqa: PLC0415 - optional extra (dask)

    scheme, _, rest = address.partition("://")
    if scheme in ("tls", "wss") and not dask.config.get("distributed.comm.tls.client.cert"):
        raise MeditationError(
            f"--scheduler {address}: {scheme}:// needs certificates: set "
            "distributed.comm.tls.ca-file, .client.cert and .client.key in Dask's configuration"
        )
    host, _, port = rest.rstrip("/").rpartition(":")
    if not host:
        host, port = port, "8786"  # Dask's default scheduler port
    try:
        with socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_S) as sock:
            if scheme != "tcp":
                return
            header = b""
            while len(header) < 8:
                chunk = sock.recv(8 - len(header))
                if not chunk:
                    raise MeditationError(
                        f"--scheduler {address}: the server there closed the connection "
                        "without greeting: not a Dask scheduler"
                    )
                header += chunk
    except TimeoutError:
        raise MeditationError(
            f"--scheduler {address}: no answer within {CONNECT_TIMEOUT_S:g} s "
            "(is a Dask scheduler listening there?)"
        ) from None
    except OSError as exc:
        raise MeditationError(
            f"--scheduler {address}: cannot reach the scheduler: {exc.strerror or exc}"
        ) from None
    (length,) = struct.unpack("Q", header)  # Dask's frame header: native unsigned 64 bits
    if not 0 < length <= _GREETING_MAX_BYTES:
        raise MeditationError(
            f"--scheduler {address}: the server there speaks another protocol, not Dask's"
        )


@contextlib.contextmanager
def _interrupts_blocked():
    """Start Dask's threads with Ctrl-C blocked.

    The threads inherit the blocked signal, so a Ctrl-C always lands on the
    main thread and wakes it at once, wherever it waits; it then cancels the
    tasks and closes the cluster (closing it is not cut short by a second one).
    """
    if (
        not hasattr(signal, "pthread_sigmask")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
