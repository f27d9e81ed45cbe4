"""`xstreamer obs`: the OBS Browser Source bridge (a thin ZeroMQ client of the daemon + a local web server).

    xstreamer obs [--connect tcp://127.0.0.1:7570 | --start-daemon [--model default]] [--port 8765]
                  [--persona FILE] [--portrait IMG] [--session ID --secret S] [--keys DIR] [--exit-with-stdin]
                  [--twitch-channel NAME [--twitch-nick LOGIN] [--chat-prefix !ask] [--chat-mods-only] ...]

Prints the page's URL, with its token, as the first line of its output (`http://127.0.0.1:PORT/?token=...`),
then serves on 127.0.0.1 (every request but the page's scripts needs the token; see web_guard.py):
  GET  /?token=T       the page (web/index.html; ?overlay=1 shows fps / latency / A/V offset)
  GET  /ws?token=T     WebSocket: media as binary XSB1 frames (see web/framing.js, docs/obs.md), control as JSON
  POST /say /speak     {"text": "..."} (application/json) -> the co-host answers / says it verbatim
  POST /interrupt      stop the current reply (the page flushes what it has queued)
  POST /mute           {"muted": true|false}, or {} to toggle; the page's volume (its clock keeps running)
  GET  /stats          bridge counters + the latest statistics of every connected page (+ chat counters)
  GET  /health         {"ok": true, "daemon": connected?, "session": id, "endpoint": the daemon, "persona": name,
                       "portrait": image path | null, "options": the resolved command-line options,
                       "daemon_process": the daemon it started | null, "chat": the chat reader | null, ...};
                       without the token only {"ok": true, "service": "xstreamer-obs", "authorized": false}
--start-daemon starts and watches a daemon itself (sdk.launcher; see own_daemon.py). --twitch-channel reads that
channel's chat and answers the lines that pass the filters (chat_relay.py); a Twitch OAuth token, for a login
other than the anonymous read-only one, comes from $XSTREAMER_TWITCH_OAUTH, never from the command line.
--persona takes a protocol Persona JSON file or a studio library file (<config>/personas/<slug>.json: the same
fields plus "portrait", an image path used when --portrait is not given, and "face_points", five [x, y] points
sent with `open` where that portrait's face cannot be found).
Imports nothing from engine_core: it talks to the daemon only through the SDK (see daemon_link.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import struct
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from sdk.persona_file import PersonaFileError, parse_persona
from sdk.protocol import DEFAULT_CONTROL, Persona, ProtocolError

from . import lifecycle
from .chat_relay import ChatRelay
from .daemon_link import DaemonLink, LinkError
from .own_daemon import OwnDaemon
from .twitch_chat import TWITCH_HOST, TWITCH_TLS_PORT, ChatFilter, TwitchConfig
from .web_guard import AUTHORIZED, Guard, TokenError, make_token

WEB_DIR = Path(__file__).with_name("web")
STATIC = {"index.html", "player.js", "audio-worklet.js", "msgpack.js", "framing.js", "avclock.js", "motion.js",
          "meter.js"}
MAGIC = b"XSB1"
PAGE_QUEUE = 500          # packets buffered per page (~10 s of audio + video); older ones are dropped beyond
MAX_TEXT_BODY = 64 * 1024
TWITCH_OAUTH_ENV = "XSTREAMER_TWITCH_OAUTH"


def pack_frame(header: bytes, payload: bytes | None, published_ms: float) -> bytes:
    """One bridge -> page binary WebSocket message: magic, f64 publish time (ms), u32 header length, header,
    payload."""
    return b"".join((MAGIC, struct.pack(">dI", published_ms, len(header)), header, payload or b""))


class Page:
    """One connected page: its WebSocket, a bounded send queue and the statistics it reports."""

    def __init__(self, ws: web.WebSocketResponse, peer: str) -> None:
        self.ws = ws
        self.peer = peer
        self.queue: asyncio.Queue[bytes | str] = asyncio.Queue(PAGE_QUEUE)
        self.stats: dict = {}
        self.dropped = 0

    def offer(self, msg: bytes | str) -> None:
        try:
            self.queue.put_nowait(msg)
        except asyncio.QueueFull:
            self.dropped += 1

    async def pump(self) -> None:
        while True:
            msg = await self.queue.get()
            if isinstance(msg, str):
                await self.ws.send_str(msg)
            else:
                await self.ws.send_bytes(msg)


class Bridge:
    """The web server and the fan-out of the daemon's media to every connected page."""

    def __init__(self, link: DaemonLink, options: dict | None = None, portrait: Path | None = None,
                 guard: Guard | None = None, own: OwnDaemon | None = None, chat: ChatRelay | None = None) -> None:
        self.link = link
        self.guard = guard or Guard(make_token(), "127.0.0.1", 0)
        self.own = own
        self.chat = chat
        self.options = options or {}     # the command-line options, reported by /health
        self.portrait = portrait         # the portrait image the session was opened with
        self.pages: set[Page] = set()
        self.muted = False
        self.started = time.time()
        self.counts: dict[str, int] = {"packets": 0, "bytes": 0, "says": 0, "speaks": 0, "interrupts": 0,
                                       "pages_served": 0}
        link.on_packet = self.on_packet
        link.on_state = self.on_state

    # ---- daemon -> pages --------------------------------------------------------------------------------
    def on_packet(self, header: bytes, payload: bytes | None, published_ms: float) -> None:
        frame = pack_frame(header, payload, published_ms)
        self.counts["packets"] += 1
        self.counts["bytes"] += len(frame)
        for page in self.pages:
            page.offer(frame)

    def on_state(self) -> None:
        self.broadcast(self.session_message())

    def session_message(self) -> str:
        info = self.link.session_info()
        if info is None:
            return json.dumps({"type": "daemon", "connected": False, "error": self.link.last_error})
        return json.dumps({"type": "session", **info})

    def broadcast(self, text: str) -> None:
        for page in self.pages:
            page.offer(text)

    # ---- HTTP handlers ----------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_TEXT_BODY, middlewares=[self.guard.middleware])
        app.router.add_get("/", self.index)
        app.router.add_get("/ws", self.websocket)
        app.router.add_get("/health", self.health)
        app.router.add_get("/stats", self.stats)
        app.router.add_post("/say", self.say)
        app.router.add_post("/speak", self.speak)
        app.router.add_post("/interrupt", self.interrupt)
        app.router.add_post("/mute", self.mute)
        app.router.add_get("/{name}", self.static)
        return app

    async def index(self, request: web.Request) -> web.StreamResponse:
        self.counts["pages_served"] += 1
        return web.FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-store"})

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound(text=f"no such file: {name}")
        return web.FileResponse(WEB_DIR / name, headers={"Cache-Control": "no-store"})

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=5.0, max_msg_size=1 << 20)
        await ws.prepare(request)
        page = Page(ws, request.remote or "?")
        self.pages.add(page)
        page.offer(self.session_message())
        page.offer(json.dumps({"type": "mute", "muted": self.muted}))
        pump = asyncio.create_task(page.pump())
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    try:
                        data = json.loads(msg.data)
                    except ValueError:
                        continue
                    if isinstance(data, dict) and data.get("type") == "stats" and isinstance(data.get("stats"), dict):
                        page.stats = data["stats"]
        finally:
            pump.cancel()
            self.pages.discard(page)
        return ws

    async def health(self, request: web.Request) -> web.Response:
        if not request.get(AUTHORIZED):
            return web.json_response({"ok": True, "service": "xstreamer-obs", "authorized": False})
        info = self.link.session_info()
        return web.json_response({
            "ok": True, "service": "xstreamer-obs", "authorized": True,
            "daemon": info is not None, "session": info and info["session"],
            "endpoint": self.link.endpoint or None, "pages": len(self.pages),
            "error": self.link.last_error or (self.own.error if self.own else None),
            "persona": self.link.persona.name, "portrait": self.portrait and str(self.portrait),
            "face_points": self.link.face_points,
            "options": self.options, "pid": os.getpid(),
            "daemon_process": self.own.info() if self.own else None,
            "chat": self.chat.info() if self.chat else None,
        })

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({
            "bridge": {**self.counts, "uptime_s": round(time.time() - self.started, 1), "muted": self.muted,
                       "daemon": self.link.session_info() is not None, **self.link.stats()},
            "pages": [{"peer": p.peer, "dropped": p.dropped, **p.stats} for p in self.pages],
            "chat": self.chat.info() if self.chat else None,
        })

    async def _body(self, request: web.Request) -> dict:
        """The JSON object of a POST (the guard already checked its Content-Type); {} for an empty body."""
        raw = await request.text()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise web.HTTPBadRequest(text="body is not valid JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="expected a JSON object")
        return body

    async def _text(self, request: web.Request) -> str:
        body = await self._body(request)
        text = body.get("text")
        if not isinstance(text, str):
            raise web.HTTPBadRequest(text='expected a JSON object {"text": "..."}')
        if not text.strip():
            raise web.HTTPBadRequest(text="text is empty")
        return text

    async def _call(self, coro: Any) -> web.Response:
        try:
            return web.json_response({"ok": True, **(await coro)})
        except LinkError as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=503)
        except ProtocolError as exc:
            return web.json_response({"ok": False, "error": exc.message, "code": exc.code.value}, status=400)

    async def say(self, request: web.Request) -> web.Response:
        text = await self._text(request)
        self.counts["says"] += 1
        return await self._call(self.link.chat(text))

    async def speak(self, request: web.Request) -> web.Response:
        text = await self._text(request)
        self.counts["speaks"] += 1
        return await self._call(self.link.speak(text))

    async def interrupt(self, request: web.Request) -> web.Response:
        self.counts["interrupts"] += 1
        self.broadcast(json.dumps({"type": "flush"}))
        return await self._call(self.link.interrupt())

    async def mute(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if "muted" in body and not isinstance(body["muted"], bool):
            raise web.HTTPBadRequest(text='"muted" must be true or false')
        self.muted = body.get("muted", not self.muted)
        self.broadcast(json.dumps({"type": "mute", "muted": self.muted}))
        return web.json_response({"ok": True, "muted": self.muted})


# ---- command line ---------------------------------------------------------------------------------------
def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connect", default=DEFAULT_CONTROL, help="the daemon's control endpoint")
    parser.add_argument("--start-daemon", action="store_true",
                        help="start and watch a daemon here (free loopback ports; restarted if it exits) instead "
                             "of connecting to --connect")
    parser.add_argument("--model", default="default", help="model preset of the daemon --start-daemon starts")
    parser.add_argument("--host", default="127.0.0.1", help="address the page is served on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="HTTP/WebSocket port (0 picks a free one)")
    parser.add_argument("--persona", type=Path,
                        help="persona JSON file: a protocol Persona, or a studio library file (its portrait is "
                             "used when --portrait is not given)")
    parser.add_argument("--portrait", type=Path, help="portrait image (PNG/JPEG) for the session")
    parser.add_argument("--session", help="attach to this existing session instead of opening one")
    parser.add_argument("--secret", default=os.environ.get("XSTREAMER_SESSION_SECRET", ""),
                        help="the --session's secret (from its `opened`; default: $XSTREAMER_SESSION_SECRET)")
    parser.add_argument("--keys", default=None, metavar="DIR",
                        help="CURVE client keys (a folder from `xstreamer keys client`), for a --keys daemon")
    parser.add_argument("--exit-with-stdin", action="store_true",
                        help="stop when standard input closes (the OBS script keeps a pipe open on it)")
    chat = parser.add_argument_group("viewer chat (Twitch)")
    chat.add_argument("--twitch-channel", help="answer this Twitch channel's chat (lines that pass the filters)")
    chat.add_argument("--twitch-nick", default="",
                      help=f"login of the account ${TWITCH_OAUTH_ENV} belongs to (default: read anonymously)")
    chat.add_argument("--chat-prefix", default="!ask", help='command a line must start with ("" = every line)')
    chat.add_argument("--chat-mods-only", action="store_true", help="answer moderators and the broadcaster only")
    chat.add_argument("--chat-user-cooldown", type=float, default=30.0, help="seconds between one viewer's lines")
    chat.add_argument("--chat-cooldown", type=float, default=10.0, help="seconds between any two answered lines")
    chat.add_argument("--twitch-server", default=f"{TWITCH_HOST}:{TWITCH_TLS_PORT}",
                      help="IRC-over-TLS server HOST:PORT (tests, relays)")
    chat.add_argument("--twitch-cafile", help="trust this CA file for --twitch-server instead of the system's")


def load_persona(path: Path | None) -> tuple[Persona, Path | None, list[list[float]] | None]:
    """(persona, portrait path, face points) from a persona file (`sdk.persona_file`: a protocol Persona, or a
    studio library file whose "portrait" is an image path, absolute or relative to the file, and whose
    "face_points" place the face in that portrait where it cannot be found), or the default persona, no portrait
    and no points. Raises ValueError with a clear message."""
    if path is None:
        return Persona(), None, None
    path = path.expanduser()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read persona file {path}: {exc.strerror}") from None
    try:
        stored = parse_persona(data)
    except PersonaFileError as exc:
        raise ValueError(f"persona file {path} is not a valid persona: {exc}") from None
    persona, portrait = stored.to_persona(), stored.portrait
    points = None if stored.face_points is None else [[float(x), float(y)] for x, y in stored.face_points]
    if not portrait:
        return persona, None, points
    image = Path(portrait).expanduser()
    return persona, image if image.is_absolute() else path.parent / image, points


def face_points_for(points: list[list[float]] | None, persona_portrait: Path | None,
                    portrait: Path | None) -> tuple[list[list[float]] | None, str | None]:
    """(points, why not): the persona file's face points if they belong to the portrait the session opens with,
    the file's own (not another one given by --portrait); otherwise None and the reason, for the log."""
    if points is None:
        return None, None
    if persona_portrait is None:
        return None, "the persona file has face points but no portrait: its points are not used"
    if portrait is not None and resolved(portrait) != resolved(persona_portrait):
        return None, (f"the persona file's face points place the face in {persona_portrait}, not in --portrait "
                      f"{portrait}: not used")
    return points, None


def load_portrait(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        data = path.expanduser().read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read portrait {path}: {exc.strerror}") from None
    if not data:
        raise ValueError(f"portrait {path} is empty")
    return data


def log(message: str) -> None:
    print(f"xstreamer obs: {message}", file=sys.stderr, flush=True)


def resolved(path: Path | None) -> str | None:
    return None if path is None else str(path.expanduser().resolve())


def chat_relay(args: argparse.Namespace, link: DaemonLink, environ: dict[str, str]) -> ChatRelay | None:
    if not args.twitch_channel:
        return None
    host, _, port = args.twitch_server.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--twitch-server must be HOST:PORT, not {args.twitch_server!r}")
    config = TwitchConfig(channel=args.twitch_channel, nick=args.twitch_nick,
                          oauth=environ.get(TWITCH_OAUTH_ENV, ""), host=host, port=int(port),
                          cafile=args.twitch_cafile)
    filt = ChatFilter(prefix=args.chat_prefix.strip(), mods_only=args.chat_mods_only,
                      user_cooldown_s=max(0.0, args.chat_user_cooldown),
                      global_cooldown_s=max(0.0, args.chat_cooldown),
                      ignore=frozenset({args.twitch_nick.lower()} if args.twitch_nick else ()))
    return ChatRelay(config, filt, link, log=log)


def page_url(host: str, port: int, token: str) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/?token={token}"


async def serve(args: argparse.Namespace, platform: lifecycle.Platform | None = None,
                stdin: Any = None, environ: dict[str, str] | None = None) -> int:
    """The bridge until a stop signal (or, with --exit-with-stdin, until `stdin` closes). `platform`, `stdin`
    and `environ` are injected by tests (the Windows code paths run on Linux)."""
    platform = platform or lifecycle.Platform()
    environ = dict(os.environ) if environ is None else environ
    if args.start_daemon and args.session:
        raise ValueError("--start-daemon opens its own session; --session attaches to another client's")
    persona, persona_portrait, persona_points = load_persona(args.persona)
    portrait_path = args.portrait or persona_portrait
    try:
        portrait = load_portrait(portrait_path)
    except ValueError as exc:
        if args.portrait is None:   # the persona file named it
            raise ValueError(f"{exc} (the portrait named by persona file {args.persona})") from None
        raise
    face_points, points_note = face_points_for(persona_points, persona_portrait, args.portrait)
    try:
        token = make_token(environ)
    except TokenError as exc:
        raise ValueError(str(exc)) from None
    options = {"connect": None if args.start_daemon else args.connect, "persona": resolved(args.persona),
               "portrait": resolved(args.portrait), "session": args.session,
               "start_daemon": args.model if args.start_daemon else None,
               "twitch_channel": args.twitch_channel or None}
    link = DaemonLink(None if args.start_daemon else args.connect, persona=persona, portrait=portrait,
                      session=args.session, log=log, secret=args.secret, keys=args.keys,
                      face_points=face_points)
    own = OwnDaemon(args.model, link.set_endpoint, log=log) if args.start_daemon else None
    chat = chat_relay(args, link, environ)
    guard = Guard(token, args.host, args.port)
    bridge = Bridge(link, options, portrait_path and Path(resolved(portrait_path)), guard, own, chat)
    runner = web.AppRunner(bridge.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        log(f"cannot listen on {args.host}:{args.port}: {exc.strerror}")
        return 1
    port = site._server.sockets[0].getsockname()[1]  # the real port when --port 0
    guard.set_port(port)
    print(page_url(args.host, port, token), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    how = lifecycle.install_stop_signals(loop, stop.set, platform)
    if args.exit_with_stdin:
        lifecycle.watch_stdin(loop, stop.set, stdin)
    log(f"serving on port {port} ({platform.name}; stop signals: {how}"
        f"{'; exits when stdin closes' if args.exit_with_stdin else ''})")
    if points_note:
        log(points_note)        # after the URL line: the first line of output is the page's URL
    tasks = [asyncio.create_task(link.run())]
    if own is not None:
        tasks.append(asyncio.create_task(own.run()))
    if chat is not None:
        tasks.append(asyncio.create_task(chat.run()))
    try:
        await stop.wait()
    finally:
        log("stopping")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await link.close()
        await runner.cleanup()
    return 0


def run(args: argparse.Namespace) -> int:
    platform = lifecycle.Platform()
    try:
        return lifecycle.run(lambda: serve(args, platform), platform)
    except ValueError as exc:
        log(str(exc))
        return 2
