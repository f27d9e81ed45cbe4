"""`xstreamer obs`: the OBS Browser Source bridge (a thin ZeroMQ client of the daemon + a local web server).

    xstreamer obs [--connect tcp://127.0.0.1:7570] [--port 8765] [--persona FILE] [--portrait IMG] [--session ID]

Prints the page's URL as the first line of its output, then serves on 127.0.0.1:
  GET  /              the page (web/index.html; ?overlay=1 shows fps / latency / A/V offset)
  GET  /ws            WebSocket: media as binary XSB1 frames (see web/framing.js, docs/obs.md), control as JSON
  POST /say /speak    {"text": "..."} (or a plain-text body) -> the co-host answers / says it verbatim
  POST /interrupt     stop the current reply (the page flushes what it has queued)
  POST /mute          {"muted": true|false}, or no body to toggle; the page's volume (its clock keeps running)
  GET  /stats         bridge counters + the latest statistics of every connected page
  GET  /health        {"ok": true, "daemon": connected?, "session": id, "endpoint": --connect, "persona": name,
                      "portrait": image path | null, "options": the resolved command-line options, ...}
--persona takes a protocol Persona JSON file or a studio library file (<config>/personas/<slug>.json: the same
fields plus "portrait", an image path used when --portrait is not given).
Imports nothing from engine_core: it talks to the daemon only through the SDK (see daemon_link.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import struct
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from sdk.persona_file import PersonaFileError, parse_persona
from sdk.protocol import DEFAULT_CONTROL, Persona, ProtocolError

from .daemon_link import DaemonLink, LinkError

WEB_DIR = Path(__file__).with_name("web")
STATIC = {"index.html", "player.js", "audio-worklet.js", "msgpack.js", "framing.js", "avclock.js"}
MAGIC = b"XSB1"
PAGE_QUEUE = 500          # packets buffered per page (~10 s of audio + video); older ones are dropped beyond
MAX_TEXT_BODY = 64 * 1024


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

    def __init__(self, link: DaemonLink, options: dict | None = None, portrait: Path | None = None) -> None:
        self.link = link
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
        app = web.Application(client_max_size=MAX_TEXT_BODY)
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
        info = self.link.session_info()
        return web.json_response({
            "ok": True, "daemon": info is not None, "session": info and info["session"],
            "endpoint": self.link.endpoint, "pages": len(self.pages), "error": self.link.last_error,
            "persona": self.link.persona.name, "portrait": self.portrait and str(self.portrait),
            "options": self.options, "pid": os.getpid(),
        })

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({
            "bridge": {**self.counts, "uptime_s": round(time.time() - self.started, 1), "muted": self.muted,
                       "daemon": self.link.session_info() is not None, **self.link.stats()},
            "pages": [{"peer": p.peer, "dropped": p.dropped, **p.stats} for p in self.pages],
        })

    async def _text(self, request: web.Request) -> str:
        raw = await request.text()
        text = raw
        if request.content_type == "application/json" or raw.lstrip().startswith("{"):
            try:
                body = json.loads(raw)
            except ValueError:
                raise web.HTTPBadRequest(text="body is not valid JSON") from None
            if not isinstance(body, dict) or not isinstance(body.get("text"), str):
                raise web.HTTPBadRequest(text='expected a JSON object {"text": "..."}')
            text = body["text"]
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
        raw = await request.text()
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                raise web.HTTPBadRequest(text="body is not valid JSON") from None
            if not isinstance(body, dict):
                raise web.HTTPBadRequest(text='expected {"muted": true|false}')
            if "muted" in body and not isinstance(body["muted"], bool):
                raise web.HTTPBadRequest(text='"muted" must be true or false')
            self.muted = body.get("muted", not self.muted)
        else:
            self.muted = not self.muted
        self.broadcast(json.dumps({"type": "mute", "muted": self.muted}))
        return web.json_response({"ok": True, "muted": self.muted})


# ---- command line ---------------------------------------------------------------------------------------
def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connect", default=DEFAULT_CONTROL, help="the daemon's control endpoint")
    parser.add_argument("--host", default="127.0.0.1", help="address the page is served on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="HTTP/WebSocket port (0 picks a free one)")
    parser.add_argument("--persona", type=Path,
                        help="persona JSON file: a protocol Persona, or a studio library file (its portrait is "
                             "used when --portrait is not given)")
    parser.add_argument("--portrait", type=Path, help="portrait image (PNG/JPEG) for the session")
    parser.add_argument("--session", help="attach to this existing session instead of opening one")


def load_persona(path: Path | None) -> tuple[Persona, Path | None]:
    """(persona, portrait path) from a persona file (`sdk.persona_file`: a protocol Persona, or a studio library
    file whose "portrait" is an image path, absolute or relative to the file), or the default persona and no
    portrait. Raises ValueError with a clear message."""
    if path is None:
        return Persona(), None
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
    if not portrait:
        return persona, None
    image = Path(portrait).expanduser()
    return persona, image if image.is_absolute() else path.parent / image


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


async def serve(args: argparse.Namespace) -> int:
    persona, persona_portrait = load_persona(args.persona)
    portrait_path = args.portrait or persona_portrait
    try:
        portrait = load_portrait(portrait_path)
    except ValueError as exc:
        if args.portrait is None:   # the persona file named it
            raise ValueError(f"{exc} (the portrait named by persona file {args.persona})") from None
        raise
    options = {"connect": args.connect, "persona": resolved(args.persona), "portrait": resolved(args.portrait),
               "session": args.session}
    link = DaemonLink(args.connect, persona=persona, portrait=portrait, session=args.session, log=log)
    bridge = Bridge(link, options, portrait_path and Path(resolved(portrait_path)))
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
    print(f"http://{args.host}:{port}/", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(link.run())
    try:
        await stop.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await link.close()
        await runner.cleanup()
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(serve(args))
    except ValueError as exc:
        log(str(exc))
        return 2
