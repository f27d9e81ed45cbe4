"""Who may talk to the bridge: a token in the URL, same-origin pages only, loopback Host names only, JSON bodies.

Any web page open on the streaming PC can send requests to http://127.0.0.1:PORT ("simple" cross-origin POSTs
go out without a preflight, and WebSockets are not subject to CORS at all), and a DNS-rebinding page can even
read the answers. So every request (the page, the API, the WebSocket) must pass, in this order:

1. **Host** is one of the names the bridge is served as (`127.0.0.1`, `localhost`, `[::1]`, or the `--host`
   literal) with the bridge's port: a rebound name (`evil.example` resolving to 127.0.0.1) is refused.
2. **Origin**, when the client sends one (browsers always do on WebSockets and cross-origin requests), is the
   bridge's own origin (`http://<allowed host>:<port>`): pages of other sites are refused. Clients that are not
   browsers (the OBS script, curl) send none.
3. **Token**: `?token=` in the URL (what the Browser Source URL carries) or the `X-XStreamer-Token` header,
   compared in constant time. Only the page's static scripts (`player.js`, ...) and a minimal `/health`
   (`{"ok": true, "service": "xstreamer-obs", "authorized": false}`) are served without it.
4. **JSON only**: a POST must say `Content-Type: application/json` (a cross-site page cannot send that without a
   CORS preflight, which the bridge never grants) and carry a JSON object (an empty body counts as `{}`).

Refusals are JSON `{"ok": false, "error": ...}` with 403 (Host, Origin, token) or 415 (content type).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from typing import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

TOKEN_ENV = "XSTREAMER_OBS_TOKEN"      # the OBS script hands its token to the bridge it starts through this
TOKEN_HEADER = "X-XStreamer-Token"
MIN_TOKEN_CHARS = 16
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
PUBLIC_PATHS = frozenset({"/player.js", "/audio-worklet.js", "/msgpack.js", "/framing.js", "/avclock.js",
                          "/motion.js", "/meter.js", "/health"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# request["authorized"]: whether the request carried the token (aiohttp >= 3.12 wants typed keys)
AUTHORIZED = web.RequestKey("authorized", bool) if hasattr(web, "RequestKey") else "authorized"


class TokenError(ValueError):
    """A token given through XSTREAMER_OBS_TOKEN is too short to be unguessable."""


def make_token(environ: dict[str, str] | None = None) -> str:
    """The token from XSTREAMER_OBS_TOKEN (at least MIN_TOKEN_CHARS characters), else a new random one
    (192 bits, URL-safe)."""
    given = (os.environ if environ is None else environ).get(TOKEN_ENV, "").strip()
    if given:
        if len(given) < MIN_TOKEN_CHARS or not all(c.isalnum() or c in "-_" for c in given):
            raise TokenError(f"{TOKEN_ENV} must be at least {MIN_TOKEN_CHARS} characters of [A-Za-z0-9_-]")
        return given
    return secrets.token_urlsafe(24)


def _host_name(host: str) -> str:
    """The bare host name of a --host value or of a Host header's name part (IPv6 without brackets)."""
    return host.strip("[]").lower()


def _split_host_header(value: str) -> tuple[str, int | None] | None:
    """(name, port) of a Host header value; None when it does not parse."""
    try:
        parts = urlsplit("//" + value)
        return _host_name(parts.hostname or ""), parts.port
    except ValueError:
        return None


class Guard:
    """The checks above, for a bridge served on `host`:`port` with `token`."""

    def __init__(self, token: str, host: str, port: int) -> None:
        self.token = token
        names = set(LOOPBACK_NAMES)
        bound = _host_name(host)
        if bound and not _is_wildcard(bound):
            names.add(bound)
        self.names = frozenset(names)
        self.set_port(port)

    def set_port(self, port: int) -> None:
        """The port the bridge really listens on (known after binding when --port 0)."""
        self.port = port
        self.origins = frozenset(f"http://{'[' + n + ']' if ':' in n else n}:{port}" for n in self.names)

    # ---- the checks -------------------------------------------------------------------------------------
    def host_ok(self, request: web.Request) -> bool:
        parsed = _split_host_header(request.headers.get("Host", ""))
        return parsed is not None and parsed[0] in self.names and parsed[1] == self.port

    def origin_ok(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        return origin is None or origin.rstrip("/").lower() in self.origins

    def token_ok(self, request: web.Request) -> bool:
        given = request.query.get("token") or request.headers.get(TOKEN_HEADER) or ""
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode())

    # ---- aiohttp middleware ---------------------------------------------------------------------------
    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self.host_ok(request):
            return refuse(403, f"Host {request.headers.get('Host', '')!r} is not this bridge "
                               f"(only {', '.join(sorted(self.names))} on port {self.port})")
        if not self.origin_ok(request):
            return refuse(403, f"Origin {request.headers.get('Origin')!r} may not use this bridge")
        authorized = self.token_ok(request)
        request[AUTHORIZED] = authorized
        if not authorized and request.path not in PUBLIC_PATHS:
            return refuse(403, "missing or wrong token: open the URL the bridge printed (it carries ?token=...)")
        if request.method == "POST" and request.content_type != "application/json":
            return refuse(415, "POST bodies must be JSON (Content-Type: application/json)")
        return await handler(request)


def _is_wildcard(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_unspecified
    except ValueError:
        return False


def refuse(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)
