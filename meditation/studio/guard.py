"""The studio's guards: ASGI middleware that checks every request before any handler runs.

In order: the Host header must name this server (DNS rebinding), an Origin
other than this server's is refused, the per-run token must come with the
request (URL, header or the cookie the page receives on first load), and
bodies over ``max_body_bytes`` get 413.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qs

from starlette.responses import JSONResponse, PlainTextResponse

__all__ = ["Guard", "TooLarge", "cookie_name", "refuse", "too_large"]


def cookie_name(token: str) -> str:
    """Cookies are per host, not per port: each studio's cookie has a name of its own."""
    return "meditation_studio_" + hashlib.sha256(token.encode()).hexdigest()[:12]


def refuse(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class TooLarge(Exception):
    """A body grew past the limit while it was read."""


class Guard:
    """ASGI middleware: Host, token, Origin and body-size checks before anything else runs."""

    def __init__(self, app, *, token: str, hosts: list[str], max_body_bytes: int):
        self.app, self.token, self.max_body_bytes = app, token, max_body_bytes
        self.cookie = cookie_name(token)
        self.hosts = {h.lower() for h in hosts}
        self.origins = {f"http://{h}" for h in self.hosts}

    @property
    def state(self):
        return self.app.state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            return await refusal(scope, receive, send)
        limit = self.max_body_bytes
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise TooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except TooLarge:
            if not started:
                await too_large(limit)(scope, receive, send)

    def _refusal(self, scope, headers):
        host = headers.get("host", "").lower()
        if host not in self.hosts:
            return refuse(f"unknown Host {host!r}: open the studio by the address it printed", 421)
        origin = headers.get("origin")
        if origin is not None and origin.lower() not in self.origins:
            return refuse("requests from other web pages are refused", 403)
        if headers.get("sec-fetch-site") not in (None, "same-origin", "none"):
            return refuse("requests from other web pages are refused", 403)
        if not self._has_token(scope, headers):
            message = "this studio needs the token from the address it printed at start-up"
            if scope.get("path") == "/":
                return PlainTextResponse(
                    f"meditation studio: {message} (http://…/?token=…)\n", status_code=401
                )
            return refuse(message, 401)
        length = headers.get("content-length")
        if length is not None:
            try:
                if int(length) > self.max_body_bytes:
                    return too_large(self.max_body_bytes)
            except ValueError:
                return refuse("bad Content-Length", 400)
        return None

    def _has_token(self, scope, headers) -> bool:
        candidates = [headers.get("x-studio-token", "")]
        candidates += parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [])
        for part in headers.get("cookie", "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == self.cookie:
                candidates.append(value)
        return any(c and hmac.compare_digest(c.encode(), self.token.encode()) for c in candidates)


def too_large(limit: int) -> JSONResponse:
    return refuse(f"request too large (limit {limit // 1000} kB)", 413)
