"""A local web studio: write a meditation, shape its settings, hear it, keep it.

``meditation studio`` serves one page on the loopback interface, guarded by
a token made fresh for each run (see ``app`` for the guards). Renders go
through the same public API as the command line (``resolve_settings`` and
``render``), one at a time, each in a child process the page can cancel.
Needs the ``studio`` extra.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import webbrowser
from pathlib import Path

from ..errors import MeditationError

__all__ = ["serve", "create_app", "studio_url", "allowed_hosts"]

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
    sock = _listen(host, port)
    bound, port = sock.getsockname()[:2]
    # Warned only once the address is known to work: a typo gets its one-line error alone.
    if not ipaddress.ip_address(bound).is_loopback:
        print(
            f"meditation: warning: serving on {host}, not only this computer: anyone who can reach it "
            "and learns the token can render and write files in the studio folder",
            file=sys.stderr,
        )
    token = token or new_token()
    hosts = allowed_hosts(host, bound, port)
    app = create_app(folder, token=token, hosts=hosts)
    url = studio_url("127.0.0.1" if bound in ("0.0.0.0", "::") else host, port, token)
    print(f"meditation studio: {url}  (folder {folder.resolve()}; Ctrl-C stops it)", flush=True)
    if open_browser:
        webbrowser.open(url)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=3
    )
    uvicorn.Server(config).run(sockets=[sock])


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (a name is resolved first); one line if it cannot be."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else "not a host name"
        raise MeditationError(f"--host {host!r}: no such address ({reason})") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise MeditationError(
            f"cannot listen on {host}:{port}: {exc.strerror} (try another --port or --host)"
        ) from None
    sock.listen(128)  # connections wait in the backlog while the app starts
    return sock


def allowed_hosts(host: str, bound: str, port: int) -> list[str]:
    """The ``host:port`` names a browser may use for this server: what it listens on, by name and address.

    A wildcard bind (``0.0.0.0``, ``::``) listens on every interface, so every
    address of this machine and its names are allowed. The Host check stops
    DNS rebinding in browsers; it is not what keeps others out (a client can
    send any Host): the token is.
    """
    names = {host.lower(), bound.lower()}
    if bound in ("0.0.0.0", "::"):
        import psutil  # noqa: PLC0415 - optional extra (studio), only for a wildcard bind

        names |= {*LOOPBACK, socket.gethostname().lower(), socket.getfqdn().lower()}
        for addresses in psutil.net_if_addrs().values():
            for a in addresses:
                # "::" also takes IPv4 (dual stack); "0.0.0.0" only IPv4.
                if a.family == socket.AF_INET or (a.family == socket.AF_INET6 and bound == "::"):
                    names.add(a.address.split("%")[0].lower())  # a link-local zone is no Host
    elif ipaddress.ip_address(bound).is_loopback:
        names.add("localhost")
    return sorted(f"[{n}]:{port}" if ":" in n else f"{n}:{port}" for n in names)
