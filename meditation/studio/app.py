"""The studio's web application: one page, a small JSON API, progress as server-sent events.

Every request passes the guards of ``guard.py`` first (Host, token, Origin,
body size). The handlers are plain functions of the request; what they share
(the folder, the job queue, the voices) is on ``request.app.state``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import tempfile
from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .._lifecycle import create_work_folder
from ..errors import MeditationError, ScriptError, one_line
from ..preflight import check_speakers
from ..script import parse_script
from ..settings import resolve_settings
from ..soundscape import list_presets
from ..voices import DEFAULT_VOICE, ENGINES, VoiceEngine, list_voices, load_voice
from . import files, shape
from .guard import Guard, TooLarge, cookie_name, refuse, too_large
from .jobs import JobQueue, QueueFull

__all__ = ["create_app", "MAX_BODY_BYTES"]

MAX_BODY_BYTES = 1_000_000
"""Largest request body: a long script is some tens of kB."""

_STATIC = resources.files("meditation.studio") / "static"


class _NotFound(MeditationError):
    pass


class _BadRequest(MeditationError):
    pass


_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_. ")


@contextlib.asynccontextmanager
async def _lifespan(app):
    state = app.state.studio
    state["voices"] = await asyncio.to_thread(_voices)
    # Named for this process: the next studio removes it if this one is killed with kill -9.
    state["queue"] = JobQueue(await asyncio.to_thread(create_work_folder, "studio"))
    state["queue"].start()
    try:
        yield
    finally:
        await state["queue"].stop()


def queue(request: Request) -> JobQueue:
    return request.app.state.studio["queue"]


async def page(request: Request) -> Response:
    html = (_STATIC / "index.html").read_text(encoding="utf-8")
    response = HTMLResponse(html, headers=_PAGE_HEADERS)
    token = request.app.state.token
    response.set_cookie(cookie_name(token), token, httponly=True, samesite="strict", path="/")
    return response


async def options(request: Request) -> Response:
    folder = request.app.state.folder
    presets = [
        {
            "name": p.name,
            "description": p.description,
            "layers": {n: spec.level_db for n, spec in p.layers.items()},
        }
        for p in list_presets()
    ]
    presets += files.list_presets(folder)
    dream = resources.files("meditation") / "data" / "dream.md"
    return JSONResponse(
        {
            "voices": request.app.state.studio["voices"],
            "default_voice": DEFAULT_VOICE,
            "presets": presets,
            "controls": shape.controls(),
            "inputs": {
                key: files.list_inputs(folder, suffixes)
                for key, suffixes in shape.INPUT_SUFFIXES.items()
            },
            "formats": list(shape.formats()),
            "dream": dream.read_text(encoding="utf-8"),
            "folder": str(folder),
        }
    )


async def check(request: Request) -> Response:
    body = await _json(request)
    text, name = _text(body), _name(body)
    try:
        script = parse_script(text, path=name)
        # Front-matter values as a render reads them (a rate out of range, a wind-down that
        # does not parse, a speaker's voice that is not installed): no I/O, no speech.
        settings = resolve_settings({}, script)
        if settings.speakers is not None:
            check_speakers(settings, script)
    except ScriptError as exc:
        return JSONResponse({"ok": False, "error": _script_error(exc)})
    except MeditationError as exc:
        words = user_words(one_line(exc), request.app.state.folder)
        return JSONResponse(
            {"ok": False, "error": {"line": 0, "col": 0, "message": words, "text": words}}
        )
    scenes = [{"name": s.name, "line": s.line} for s in script.scenes if s.name]
    speakers = [
        {"name": s.name, "voice": s.voice, "line": script.speaker_places.get(s.key, (0, 0))[0]}
        for s in script.speakers
    ]
    return JSONResponse(
        {
            "ok": True,
            "title": script.title,
            "scenes": scenes,
            "speakers": speakers,
            "front_matter": script.settings,
        }
    )


async def submit(request: Request) -> Response:
    folder = request.app.state.folder
    body = await _json(request)
    text, name = _text(body), _name(body)
    kind = body.get("kind", "render")
    if kind not in ("render", "preview"):
        return refuse(f"unknown job kind {kind!r}", 400)
    fmt = _format(body)
    values = body.get("values", {})
    label = "the whole track"
    try:
        if kind == "preview":
            text, label = shape.preview_text(text, line=_line(body), name=name)
            fmt = "wav"  # no encoder wait for a quick listen
        # Check everything the CLI checks before queueing: the page hears of a bad value at once.
        stem = Path(name).stem or "meditation"
        filename = f"{stem}-preview.{fmt}" if kind == "preview" else f"{stem}.{fmt}"
        with tempfile.TemporaryDirectory() as scratch:
            try:
                shape.resolve(
                    text, values, name=name, output=Path(scratch) / filename, folder=folder
                )
            except (ScriptError, files.FileRefused):
                raise
            except (MeditationError, ValueError, TypeError) as exc:
                raise _BadRequest(user_words(one_line(exc), folder, scratch)) from None
    except ScriptError as exc:
        return JSONResponse(
            {"error": one_line(exc), "script_error": _script_error(exc)}, status_code=400
        )
    except files.FileRefused:
        raise
    except (MeditationError, ValueError, TypeError) as exc:
        return refuse(one_line(exc), 400)
    spec = {
        "text": text,
        "values": shape.clean_values(values),
        "name": name,
        "folder": str(folder),
    }
    try:
        job = await queue(request).submit(kind, spec, filename=filename, label=label)
    except QueueFull as exc:
        return refuse(str(exc), 429)
    return JSONResponse(queue(request).snapshot(job), status_code=202)


def _job(request: Request):
    job = queue(request).jobs.get(request.path_params["job"])
    if job is None:
        raise _NotFound("no such job")
    return job


async def job_state(request: Request) -> Response:
    return JSONResponse(queue(request).snapshot(_job(request)))


async def cancel(request: Request) -> Response:
    job = _job(request)
    await queue(request).cancel(job.id)
    return JSONResponse(queue(request).snapshot(job))


async def events(request: Request) -> Response:
    job = _job(request)

    async def stream():
        seen = -1
        while True:
            if job.version != seen:
                seen = job.version
                snapshot = queue(request).snapshot(job)
                yield f"data: {json.dumps(snapshot)}\n\n"
                if snapshot["state"] in ("done", "failed", "cancelled"):
                    return
            await queue(request).wait_change(job, seen, 1.0)
            if await request.is_disconnected():
                return

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


async def audio(request: Request) -> Response:
    job = _job(request)
    if job.state != "done":
        return refuse("the render has not finished", 409)
    disposition = "attachment" if request.query_params.get("download") else "inline"
    return FileResponse(job.output, filename=job.output.name, content_disposition_type=disposition)


async def timings(request: Request) -> Response:
    job = _job(request)
    if job.state != "done":
        return refuse("the render has not finished", 409)
    data = json.dumps(job.result["timeline"], indent=2, ensure_ascii=False) + "\n"
    return Response(
        data,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{job.output.stem}.json"'},
    )


async def captions(request: Request) -> Response:
    job = _job(request)
    vtt = job.output.with_suffix(".vtt")
    if job.state != "done" or not vtt.is_file():
        return refuse("no captions for this job", 409 if job.state != "done" else 404)
    disposition = "attachment" if request.query_params.get("download") else "inline"
    return FileResponse(
        vtt, media_type="text/vtt", filename=vtt.name, content_disposition_type=disposition
    )


async def list_files(request: Request) -> Response:
    folder = request.app.state.folder
    return JSONResponse({"folder": str(folder), "files": files.list_files(folder)})


async def read_file(request: Request) -> Response:
    folder = request.app.state.folder
    path = request.query_params.get("path", "")
    if Path(path).suffix.lower() in files.SETTINGS_SUFFIXES:
        return JSONResponse({"path": path, "settings": files.read_settings(folder, path)})
    return JSONResponse(
        {"path": path, "text": files.read_text(folder, path, files.SCRIPT_SUFFIXES)}
    )


async def save_script(request: Request) -> Response:
    folder = request.app.state.folder
    body = await _json(request)
    path = files.write_text(
        folder,
        str(body.get("path", "")),
        _text(body),
        overwrite=bool(body.get("overwrite")),
        suffixes=files.SCRIPT_SUFFIXES,
    )
    return JSONResponse({"path": path.relative_to(folder).as_posix()})


async def save_settings(request: Request) -> Response:
    folder = request.app.state.folder
    body = await _json(request)
    script = str(body.get("script", ""))
    files.safe_path(folder, script, files.SCRIPT_SUFFIXES)
    fmt = _format(body)
    # Checked as batch will check the manifest: a value it would refuse is never written.
    values = shape.checked_values(body.get("values", {}), script=script, fmt=fmt, folder=folder)
    path = files.save_settings(
        folder,
        str(body.get("path", "")),
        values,
        script=script,
        fmt=fmt,
        overwrite=bool(body.get("overwrite")),
    )
    return JSONResponse({"path": path.relative_to(folder).as_posix()})


async def command(request: Request) -> Response:
    """The command line that renders what the page would: it reads the script from the folder, so
    the script must be saved there, as the page shows it."""
    folder = request.app.state.folder
    body = await _json(request)
    script = str(body.get("name") or "")
    path = files.safe_path(folder, script, files.SCRIPT_SUFFIXES)
    if not path.is_file():
        return refuse(
            f"save the script as {script!r} first: the command reads it from the studio's folder",
            409,
        )
    text = body.get("text")
    saved = files.read_text(folder, script, files.SCRIPT_SUFFIXES)
    if isinstance(text, str) and _lines(saved) != _lines(text):
        return refuse(
            f"{script} has changes that are not saved: save it first, so the command renders "
            "what you hear",
            409,
        )
    relative = path.relative_to(folder).as_posix()
    line = shape.command_line(body.get("values", {}), script=relative, fmt=_format(body))
    return JSONResponse({"command": line, "folder": str(folder)})


def _lines(text: str) -> str:
    """Text as a browser's text box holds it (its line ends are always LF)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


async def manifest(request: Request) -> Response:
    folder = request.app.state.folder
    body = await _json(request)
    script = str(body.get("script", ""))
    if not files.safe_path(folder, script, files.SCRIPT_SUFFIXES).is_file():
        return refuse(f"save the script as {script!r} first: a manifest names a script file", 409)
    values = shape.checked_values(
        body.get("values", {}), script=script, fmt=_format(body), folder=folder
    )
    name = str(body.get("name") or "").strip() or Path(script).stem
    if not set(name) <= _NAME_CHARS:
        return refuse(f"variant name {name!r}: use letters, digits, '-', '_', '.' and spaces", 400)
    path, count = files.add_variant(
        folder, str(body.get("path", "")), values, script=script, name=name, fmt=_format(body)
    )
    return JSONResponse({"path": path.relative_to(folder).as_posix(), "variants": count})


async def save_preset(request: Request) -> Response:
    folder = request.app.state.folder
    body = await _json(request)
    base = shape.soundscape_in(folder, str(body.get("base", "")))
    if base in ("auto", "none"):
        base = "default" if base == "auto" else base
    if base == "none":
        return refuse("narration alone has no layers to set", 400)
    levels = body.get("levels", {})
    if not isinstance(levels, dict):
        return refuse("levels must be an object of layer: dB", 400)
    path = files.save_preset(folder, str(body.get("path", "")), base, levels)
    relative = path.relative_to(folder).as_posix()
    preset = next(p for p in files.list_presets(folder) if p["name"] == relative)
    return JSONResponse({"path": relative, "preset": preset})


_ROUTES = [
    Route("/", page),
    Route("/api/options", options),
    Route("/api/check", check, methods=["POST"]),
    Route("/api/jobs", submit, methods=["POST"]),
    Route("/api/jobs/{job}", job_state),
    Route("/api/jobs/{job}/cancel", cancel, methods=["POST"]),
    Route("/api/jobs/{job}/events", events),
    Route("/api/jobs/{job}/audio", audio),
    Route("/api/jobs/{job}/timings", timings),
    Route("/api/jobs/{job}/captions", captions),
    Route("/api/files", list_files),
    Route("/api/file", read_file),
    Route("/api/script", save_script, methods=["POST"]),
    Route("/api/settings", save_settings, methods=["POST"]),
    Route("/api/command", command, methods=["POST"]),
    Route("/api/manifest", manifest, methods=["POST"]),
    Route("/api/preset", save_preset, methods=["POST"]),
    Mount("/static", app=StaticFiles(directory=str(_STATIC)), name="static"),
]
_EXCEPTION_HANDLERS = {
    files.FileRefused: lambda request, exc: refuse(str(exc), exc.status),
    _NotFound: lambda request, exc: refuse(str(exc), 404),
    _BadRequest: lambda request, exc: refuse(str(exc), 400),
    MeditationError: lambda request, exc: refuse(
        user_words(one_line(exc), request.app.state.folder), 400
    ),
    TooLarge: lambda request, exc: too_large(request.app.state.max_body_bytes),
}


def create_app(
    folder: Path, *, token: str, hosts: list[str], max_body_bytes: int = MAX_BODY_BYTES
) -> Guard:
    """The studio over ``folder``; ``hosts`` are the ``host:port`` names it answers to."""
    app = Starlette(routes=_ROUTES, lifespan=_lifespan, exception_handlers=_EXCEPTION_HANDLERS)
    app.state.folder = Path(folder).resolve()
    files.new_file_mode()  # the umask, read before any request thread saves a file
    app.state.token = token
    app.state.max_body_bytes = max_body_bytes
    app.state.studio = {}  # the queue and the voices, for tests and tools
    return Guard(app, token=token, hosts=hosts, max_body_bytes=max_body_bytes)


_PAGE_HEADERS = {
    # Everything the page needs is its own: no inline script, nothing from elsewhere, no framing.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _voices() -> list[str]:
    """Every usable voice; then stop the helper processes listing started (renders run in workers)."""
    voices = list_voices()
    for name, cls in ENGINES.items():
        if cls.reset is not VoiceEngine.reset:
            try:
                load_voice(name).reset()
            except MeditationError:
                pass
    return voices


async def _json(request: Request) -> dict:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise _BadRequest("the request body is not JSON") from None
    except RecursionError:
        raise _BadRequest(
            "the request body is not JSON the studio reads (nested too deeply)"
        ) from None
    if not isinstance(body, dict):
        raise _BadRequest("the request body must be a JSON object")
    return body


def _text(body: dict) -> str:
    text = body.get("text", "")
    if not isinstance(text, str):
        raise _BadRequest("text must be a string")
    return text


def _name(body: dict) -> str:
    """The script's file name, as error messages and titles show it."""
    name = str(body.get("name") or "untitled.md")
    name = Path(name.replace("\\", "/")).name or "untitled.md"
    return name if Path(name).suffix.lower() in files.SCRIPT_SUFFIXES else name + ".md"


def _line(body: dict) -> int:
    """The editor's cursor line: a whole number (JSON's 1e400 is infinite, "x" is no number)."""
    line = body.get("line", 1)
    if isinstance(line, bool) or not isinstance(line, (int, float)) or not 1 <= line <= 10**7:
        raise _BadRequest(f"line must be a line number from 1, not {json.dumps(line)[:40]}")
    if line != int(line):
        raise _BadRequest(f"line must be a whole line number, not {line}")
    return int(line)


def _format(body: dict) -> str:
    fmt = str(body.get("format", "mp3")).lower()
    if fmt not in shape.formats():
        raise _BadRequest(f"unknown format {fmt!r} (known: {', '.join(shape.formats())})")
    return fmt


def _script_error(exc: ScriptError) -> dict:
    return {"line": exc.line, "col": exc.col, "message": exc.message, "text": one_line(exc)}


def user_words(message: str, folder: Path, *hidden: str | Path) -> str:
    """``message`` with the user's names: files in the studio's folder by their name in it, and no
    hidden temporary folder (``hidden``) at all."""
    for prefix in (*hidden, folder):
        message = message.replace(f"{prefix}{os.sep}", "")
    return message


def new_token() -> str:
    """A fresh per-run token."""
    return secrets.token_urlsafe(24)
