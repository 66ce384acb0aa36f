"""One render at a time: a queue of jobs, each rendered by a child process.

A job renders into a folder of its own under the studio's private work
folder. Cancelling a queued job drops it; cancelling a running one stops its
process group (the worker and any voice helpers it started) and removes the
job's folder, so no partial file is left anywhere.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import os
import secrets
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._lifecycle import started_from_main_thread

__all__ = ["Job", "JobQueue", "QueueFull", "MAX_WAITING", "KEEP_FINISHED"]

# Share of the whole bar each stage fills: speech dominates (the mix is measured
# while it speaks, leaving the measure stage only the end), then the final pass.
_STAGE_WEIGHTS = {"speech": (0.0, 0.8), "measure": (0.8, 0.03), "master": (0.83, 0.17)}


MAX_WAITING = 16
"""Most jobs waiting at once: a page cannot fill the disk or the evening with renders."""
KEEP_FINISHED = 12
"""Finished jobs whose files stay downloadable; older ones are removed."""


class QueueFull(Exception):
    """Too many jobs are waiting."""


@dataclass
class Job:
    """A render or preview waiting, running or finished."""

    id: str
    kind: str
    folder: Path
    output: Path
    spec: dict
    label: str = ""
    state: str = "queued"
    """queued → running → done | failed | (cancelling →) cancelled."""
    percent: float = 0.0
    stage: str = ""
    error: str = ""
    result: dict | None = None
    version: int = 0
    started_s: float | None = None
    """Wall-clock start and end of the render (time.time()), for the page and the queue's tests."""
    finished_s: float | None = None
    process: Any = field(default=None, repr=False)

    def public(self, position: int | None) -> dict:
        """What the page sees."""
        return {
            "id": self.id,
            "kind": self.kind,
            "label": self.label,
            "state": self.state,
            "position": position,
            "percent": round(self.percent, 1),
            "stage": self.stage,
            "error": self.error,
            "result": self.result,
            "file": self.output.name if self.state == "done" else None,
            "started_s": self.started_s,
            "finished_s": self.finished_s,
        }


class JobQueue:
    """Jobs in arrival order, rendered one after another by a single runner task."""

    def __init__(self, work_dir: Path):
        self.work_dir = work_dir
        self.jobs: dict[str, Job] = {}
        self.waiting: collections.deque[Job] = collections.deque()
        self.changed = asyncio.Condition()
        self._wake = asyncio.Event()
        self._runner: asyncio.Task | None = None
        self._counter = itertools.count(1)

    def start(self) -> None:
        self._runner = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Cancel everything and remove the work folder."""
        for job in list(self.waiting):
            await self.cancel(job.id)
        for job in self.jobs.values():
            if job.state == "running":
                await self.cancel(job.id)
        if self._runner is not None:
            self._runner.cancel()
            try:
                await self._runner
            except asyncio.CancelledError:
                pass
        shutil.rmtree(self.work_dir, ignore_errors=True)

    async def submit(self, kind: str, spec: dict, *, filename: str, label: str = "") -> Job:
        """Queue a job; ``spec`` is the worker's job file (text, values, name); the output goes in its own folder.

        Raises QueueFull when MAX_WAITING jobs already wait.
        """
        if len(self.waiting) >= MAX_WAITING:
            raise QueueFull(f"{len(self.waiting)} renders are already waiting; cancel one or wait")
        self._forget_old()
        job_id = f"{next(self._counter)}-{secrets.token_hex(4)}"
        folder = self.work_dir / job_id
        folder.mkdir(parents=True)
        job = Job(job_id, kind, folder, folder / filename, spec, label)
        self.jobs[job_id] = job
        self.waiting.append(job)
        self._wake.set()
        await self._notify(job)
        return job

    def _forget_old(self) -> None:
        """Keep the files of the last KEEP_FINISHED finished jobs only (each holds a whole track)."""
        finished = [j for j in self.jobs.values() if j.state in ("done", "failed", "cancelled")]
        for job in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            shutil.rmtree(job.folder, ignore_errors=True)
            del self.jobs[job.id]

    def position(self, job: Job) -> int | None:
        """0 while running, 1… in the queue, None when finished."""
        if job.state in ("running", "cancelling"):
            return 0
        if job.state == "queued":
            return 1 + list(self.waiting).index(job)
        return None

    def running(self) -> Job | None:
        return next((j for j in self.jobs.values() if j.state == "running"), None)

    def snapshot(self, job: Job) -> dict:
        return job.public(self.position(job))

    async def cancel(self, job_id: str) -> Job | None:
        """Drop a queued job or stop a running one; either way its folder is removed."""
        job = self.jobs.get(job_id)
        if job is None:
            return None
        if job.state == "queued":
            self.waiting.remove(job)
            job.state = "cancelled"
            shutil.rmtree(job.folder, ignore_errors=True)
            await self._notify_all(job)
        elif job.state == "running":
            job.state = "cancelling"  # "cancelled" once the process is gone and its folder removed
            _stop(job.process)
            # A helper that ignores SIGTERM would hold the pipe open: make sure.
            asyncio.get_running_loop().call_later(3.0, _stop, job.process, signal.SIGKILL)
            await self._notify(job)
        return job

    async def wait_change(self, job: Job, seen: int, timeout_s: float) -> None:
        async with self.changed:
            if job.version == seen:
                try:
                    await asyncio.wait_for(self.changed.wait(), timeout_s)
                except TimeoutError:
                    pass

    async def _notify(self, job: Job) -> None:
        job.version += 1
        async with self.changed:
            self.changed.notify_all()

    async def _notify_all(self, changed: Job | None = None) -> None:
        """Tell every watcher of ``changed`` and of unfinished jobs (their queue positions move)."""
        for job in self.jobs.values():
            if job is changed or job.state in ("queued", "running", "cancelling"):
                job.version += 1
        async with self.changed:
            self.changed.notify_all()

    async def _run(self) -> None:
        while True:
            while not self.waiting:
                self._wake.clear()
                await self._wake.wait()
            job = self.waiting.popleft()
            job.state = "running"
            job.started_s = time.time()
            await self._notify_all()
            try:
                await self._render(job)
            except Exception as exc:  # a broken worker must not stop the queue
                if job.state == "running":
                    job.state, job.error = "failed", f"the render stopped unexpectedly: {exc}"
            if job.state != "done":
                shutil.rmtree(job.folder, ignore_errors=True)
            if job.state == "cancelling":
                job.state = "cancelled"
            job.finished_s = time.time()
            await self._notify_all(job)

    async def _render(self, job: Job) -> None:
        if job.state != "running":
            return  # cancelled before its process was asked for
        job_file = job.folder / "job.json"
        job_file.write_text(
            json.dumps(
                {
                    **job.spec,
                    "output": str(job.output),
                    "parent": os.getpid(),
                    # The kernel's death signal follows the thread that starts the child.
                    "pdeathsig": started_from_main_thread(),
                }
            ),
            encoding="utf-8",
        )
        job.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "meditation.studio.worker",
            str(job_file),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: cancel stops the voice helpers too
            limit=2**24,
        )
        if job.state != "running":
            _stop(job.process)  # cancelled while the process was starting: it must not render
        stderr_task = asyncio.get_running_loop().create_task(job.process.stderr.read())
        try:
            async for raw in job.process.stdout:
                try:
                    message = json.loads(raw)
                except ValueError:
                    continue
                if job.state != "running":
                    continue
                event = message.get("event")
                if event == "progress":
                    before = (job.stage, round(job.percent, 1))
                    job.stage = message["stage"]
                    job.percent = max(
                        job.percent, _percent(message["stage"], message["done"], message["total"])
                    )
                    if (job.stage, round(job.percent, 1)) == before:
                        continue
                elif event == "done":
                    job.result = message["result"]
                elif event == "error":
                    job.error = self._user_words(job, message["message"])
                await self._notify(job)
            code = await job.process.wait()
        finally:
            if job.process.returncode is None:
                _stop(job.process)
                try:
                    await asyncio.wait_for(job.process.wait(), 5.0)
                except TimeoutError:
                    pass
            _stop(job.process, signal.SIGKILL)  # anything of its group still alive
            await job.process.wait()
            stderr = (await stderr_task).decode("utf-8", "replace")
        if job.state != "running":
            return
        if code == 0 and job.result is not None and job.output.is_file():
            job.state, job.percent = "done", 100.0
        else:
            job.state = "failed"
            if not job.error:
                last = [line for line in stderr.splitlines() if line.strip()][-1:] or [
                    f"exit status {code}"
                ]
                job.error = self._user_words(job, f"the render failed: {last[0]}")

    @staticmethod
    def _user_words(job: Job, message: str) -> str:
        """A worker's message with the user's names: files in the studio's folder by their relative
        name, the job's hidden temporary files by the name the download will have."""
        message = message.replace(f"{job.folder}{os.sep}", "")
        folder = job.spec.get("folder")
        return message.replace(f"{folder}{os.sep}", "") if folder else message


def _percent(stage: str, done: float, total: float | None) -> float:
    start, share = _STAGE_WEIGHTS.get(stage, (0.0, 0.0))
    fraction = min(1.0, done / total) if total else 0.0
    return 100.0 * (start + share * fraction)


def _stop(process, sig: int = signal.SIGTERM) -> None:
    """End a worker and everything it started (its own process group)."""
    if process is None:
        return
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
