"""A local web studio: write a meditation, shape its settings, hear it, keep it.

``meditation studio`` serves one page on the loopback interface, guarded by
a token made fresh for each run (see ``app`` for the guards). Renders go
through the same public API as the command line (``resolve_settings`` and
``render``), one at a time, each in a child process the page can cancel.
Needs the ``studio`` extra: ``pip install "meditation[studio]"``.
"""

from __future__ import annotations

import socket
import sys
import webbrowser
from pathlib import Path

from ..errors import MeditationError

__all__ = ["serve", "create_app", "studio_url"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def create_app(folder, *, token, hosts, **options):
    """The studio's ASGI application, for tests and for serving it some other way.

    Parameters
    ----------
    folder
        The folder the page may read and write.
    token
        The secret every request must carry (URL ``?token=``, header ``X-Studio-Token`` or the page's cookie).
    hosts
        The ``host:port`` names the server answers to; any other Host header is refused.
    **options
        ``max_body_bytes`` (default 1 MB).
    """
    from .app import create_app as _create  # noqa: PLC0415 - optional extra (starlette)

    return _create(folder, token=token, hosts=hosts, **options)


def studio_url(host: str, port: int, token: str) -> str:
    """The address to open, token included."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/?token={token}"


def serve(
    folder: str | Path = ".",
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    open_browser: bool = False,
    token: str | None = None,
) -> None:
    """Run the studio until interrupted (Ctrl-C or SIGTERM); prints its address, token included, first.

    Parameters
    ----------
    folder
        The only folder the page may read and write (scripts, settings, manifests, presets).
    host
        Address to listen on; anything but loopback is warned about on stderr.
    port
        Port to listen on; 0 picks a free one (the printed address has it).
    open_browser
        Open the address in the default web browser.
    token
        The per-run token (default: a fresh random one).

    Raises
    ------
    MeditationError
        ``folder`` is not a folder, or the address cannot be listened on.
    """
    import uvicorn  # noqa: PLC0415 - optional extra (uvicorn)

    from .app import new_token  # noqa: PLC0415 - optional extra (starlette)

    folder = Path(folder)
    if not folder.is_dir():
        raise MeditationError(f"--dir {str(folder)!r} is not a folder")
    if host not in LOOPBACK:
        print(
            f"meditation: warning: serving on {host}, not only this computer: anyone who can reach it "
            "and learns the token can render and write files in the studio folder",
            file=sys.stderr,
        )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise MeditationError(
            f"cannot listen on {host}:{port}: {exc.strerror} (try another --port)"
        ) from None
    sock.listen(128)  # connections wait in the backlog while the app starts
    port = sock.getsockname()[1]
    token = token or new_token()
    names = (
        {host, *("127.0.0.1", "localhost")}
        if host in LOOPBACK or host in ("0.0.0.0", "::")
        else {host}
    )
    if host in ("0.0.0.0", "::"):
        names.add(socket.gethostname())
    hosts = [f"[{n}]:{port}" if ":" in n else f"{n}:{port}" for n in names]
    app = create_app(folder, token=token, hosts=hosts)
    url = studio_url("127.0.0.1" if host in ("0.0.0.0", "::") else host, port, token)
    print(f"meditation studio: {url}  (folder {folder.resolve()}; Ctrl-C stops it)", flush=True)
    if open_browser:
        webbrowser.open(url)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=3
    )
    uvicorn.Server(config).run(sockets=[sock])
