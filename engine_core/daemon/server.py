"""The daemon: one control thread owning the ROUTER socket, one media thread owning the XPUB socket, and one
worker thread per session (engine_core.daemon.session_worker).

The control loop never dies on a message: every request is decoded and handled inside a catch-all, and a
bad one gets a typed `error` reply (protocol v1 ErrorCode) while the daemon goes on. Slow engine calls
(opening a session: portrait analysis; the final chunk of user audio: transcription) run off the control
thread and post their reply through a queue that the control loop drains.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Union

import msgpack
import numpy as np
import zmq

from sdk.protocol import ProtocolError, decode_client, encode, format_ready_line
from sdk.protocol.constants import (DEFAULT_CONTROL_PORT, DEFAULT_HOST, DEFAULT_MEDIA_PORT, HEARTBEAT_MS,
                                    LEAD_MS, SESSION_TIMEOUT_S)
from sdk.protocol.messages import (MAX_PORTRAIT_BYTES, SUPPORTED_VERSIONS, Ack, Audio, Chat, Close, Error,
                                   ErrorCode, Hello, Interrupt, Open, Opened, Ping, Pong, SetPersona, Speak,
                                   Welcome)

from .media import MediaPublisher
from .session_worker import SessionWorker

log = logging.getLogger("xstreamer.daemon")

Reply = Union[Welcome, Opened, Ack, Pong, Error]


def _unknown(sid: str) -> ProtocolError:
    return ProtocolError(ErrorCode.UNKNOWN_SESSION, f"no session {sid!r}", session=sid)


def error_code_of(exc: BaseException) -> ErrorCode:
    """Map an engine_core.errors exception (its `code`) or any other exception onto a protocol ErrorCode.

    Engine codes that are not protocol codes (bad_checkpoint, bad_config, backend_unavailable: load-time
    failures of the daemon's own model, never the client's fault) reach a client as `internal`."""
    if isinstance(exc, ProtocolError):
        return exc.code
    code = getattr(exc, "code", None)
    try:
        return ErrorCode(code) if isinstance(code, str) else ErrorCode.INTERNAL
    except ValueError:
        return ErrorCode.INTERNAL


@dataclass
class _Client:
    welcomed: bool = False
    last_seen: float = field(default_factory=time.monotonic)


@dataclass
class Request:
    """One decoded client message as a handler sees it: who sent it, the typed message, its blobs."""

    ident: bytes            # the ROUTER routing id of the client's connection
    client: _Client
    msg: Any                # a sdk.protocol.messages client model (its type picked the handler)
    blobs: list[bytes]


@dataclass
class DaemonConfig:
    """Everything `xstreamer serve` can set."""

    host: str = DEFAULT_HOST
    control_port: int = DEFAULT_CONTROL_PORT
    media_port: int = DEFAULT_MEDIA_PORT
    model_name: str = "default"
    max_sessions: int = 8
    session_timeout_s: float = SESSION_TIMEOUT_S
    heartbeat_ms: int = HEARTBEAT_MS
    lead_ms: float = LEAD_MS
    sndhwm: int = 250


class Daemon:
    """`Daemon(engine, config).start()` binds both sockets and starts the threads; `stop()` ends them."""

    def __init__(self, engine: Any, config: DaemonConfig | None = None):
        self.engine = engine
        self.cfg = config or DaemonConfig()
        self.ctx = zmq.Context()
        self.control_endpoint = ""
        self.media_endpoint = ""
        self.workers: dict[str, SessionWorker] = {}
        self._owner: dict[str, bytes] = {}          # session -> client identity that opened it
        self._clients: dict[bytes, _Client] = {}
        self._replies: queue.Queue[tuple[bytes, Reply]] = queue.Queue()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="xs-slow")
        self._publisher = MediaPublisher(self.ctx, f"tcp://{self.cfg.host}:{self.cfg.media_port}",
                                         sndhwm=self.cfg.sndhwm)
        self._router: zmq.Socket | None = None
        self._thread: threading.Thread | None = None
        self.messages = 0
        self.errors = 0
        self._handlers: dict[type, Callable[[Request], Reply | None]] = {
            Hello: self._hello, Ping: self._ping, Open: self._open, Chat: self._chat, Speak: self._speak,
            Audio: self._audio, Interrupt: self._interrupt, SetPersona: self._set_persona, Close: self._close}

    # ---- lifecycle
    def start(self) -> None:
        self.media_endpoint = self._publisher.start_and_wait()
        router = self.ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        router.setsockopt(zmq.ROUTER_MANDATORY, 0)
        router.setsockopt(zmq.MAXMSGSIZE, MAX_PORTRAIT_BYTES + 1024 * 1024)
        router.bind(f"tcp://{self.cfg.host}:{self.cfg.control_port}")
        self.control_endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
        self._router = router   # handed over to the control thread; never touched here again
        self._thread = threading.Thread(target=self._control_loop, name="xs-control", daemon=True)
        self._thread.start()

    def ready_line(self) -> str:
        return format_ready_line(self.control_endpoint, self.media_endpoint, self.cfg.model_name)

    def wait(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(0.5)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        for w in list(self.workers.values()):
            w.close("daemon stopping")
        for w in list(self.workers.values()):
            w.join(2)
        time.sleep(0.1)   # let the publisher send the session_closed events
        self._publisher.stop()
        self._publisher.join(2)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.ctx.term()

    # ---- the control thread
    def _control_loop(self) -> None:
        router = self._router
        assert router is not None
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        last_sweep = time.monotonic()
        try:
            while not self._stop.is_set():
                if poller.poll(20):
                    for _ in range(64):
                        try:
                            frames = router.recv_multipart(zmq.NOBLOCK, copy=True)
                        except zmq.Again:
                            break
                        self._on_message(router, frames)
                self._drain_replies(router)
                if time.monotonic() - last_sweep > 0.5:
                    last_sweep = time.monotonic()
                    self._sweep_timeouts()
        finally:
            router.close(linger=0)

    def _send(self, router: zmq.Socket, ident: bytes, msg: Reply) -> None:
        if isinstance(msg, Error) and msg.session is not None and len(msg.session) > 128:
            msg = msg.model_copy(update={"session": None})   # never echo huge junk back
        try:
            router.send_multipart([ident, *encode(msg)], flags=zmq.NOBLOCK)
        except zmq.ZMQError:
            log.debug("reply to a vanished client dropped")

    def _drain_replies(self, router: zmq.Socket) -> None:
        while True:
            try:
                ident, msg = self._replies.get_nowait()
            except queue.Empty:
                return
            self._send(router, ident, msg)

    def _on_message(self, router: zmq.Socket, frames: list[bytes]) -> None:
        """Handle one ROUTER message: [identity, header, *blobs]. Never raises."""
        self.messages += 1
        ident = frames[0] if frames else b""
        req = 0
        reply: Reply | None
        try:
            req = _peek_req(frames[1] if len(frames) > 1 else b"")
            client = self._clients.setdefault(ident, _Client())
            client.last_seen = time.monotonic()
            msg, blobs = decode_client(frames[1:])
            reply = self._handlers[type(msg)](Request(ident, client, msg, blobs))
        except ProtocolError as exc:
            self.errors += 1
            reply = Error(req=req, code=exc.code, message=exc.message[:1000], session=exc.session)
        except Exception as exc:  # an engine error or a bug: typed reply, daemon goes on
            self.errors += 1
            code = error_code_of(exc)
            if code is ErrorCode.INTERNAL:
                log.exception("internal error handling a request")
            reply = Error(req=req, code=code, message=f"{type(exc).__name__}: {exc}"[:1000])
        if reply is not None:
            self._send(router, ident, reply)

    # ---- the handlers, one per client message type (self._handlers); None = the reply comes later
    def _hello(self, r: Request) -> Reply:
        msg = r.msg
        common = [v for v in msg.versions if v in SUPPORTED_VERSIONS]
        if not common:
            return Error(req=msg.req, code=ErrorCode.UNSUPPORTED_VERSION,
                         message=f"no common protocol version: client speaks {msg.versions}, "
                                 f"daemon speaks {list(SUPPORTED_VERSIONS)}")
        r.client.welcomed = True
        return Welcome(req=msg.req, version=max(common),
                       server=f"xstreamer/0.1.0 model={self.cfg.model_name}", media_endpoint=self.media_endpoint, heartbeat_ms=self.cfg.heartbeat_ms,
                       session_timeout_s=self.cfg.session_timeout_s)

    def _ping(self, r: Request) -> Reply:
        msg = r.msg
        if msg.session is not None and self._live(msg.session) is None:
            raise _unknown(msg.session)
        live = sum(not w.closing for w in list(self.workers.values()))
        return Pong(req=msg.req, sessions=live, state="ok")

    def _welcomed(self, r: Request) -> None:
        if not r.client.welcomed:
            raise ProtocolError(ErrorCode.NOT_WELCOMED, "send hello first")

    def _worker(self, r: Request) -> SessionWorker:
        """The worker of the open session a session request names (ProtocolError otherwise)."""
        self._welcomed(r)
        worker = self._live(r.msg.session)
        if worker is None:
            raise _unknown(r.msg.session)
        if worker.session is None:
            raise ProtocolError(ErrorCode.UNKNOWN_SESSION, "session is still opening", session=r.msg.session)
        return worker

    def _chat(self, r: Request) -> Reply:
        return Ack(req=r.msg.req, session=r.msg.session, utt=int(self._worker(r).session.chat(r.msg.text)))

    def _speak(self, r: Request) -> Reply:
        return Ack(req=r.msg.req, session=r.msg.session, utt=int(self._worker(r).session.speak(r.msg.text)))

    def _audio(self, r: Request) -> Reply | None:
        msg, s = r.msg, self._worker(r).session
        pcm = np.frombuffer(r.blobs[0], dtype="<i2").astype(np.int16)
        if msg.final:   # transcription: off the control thread
            self._pool.submit(self._slow_call, r.ident, msg.req, msg.session,
                              lambda: s.hear(pcm, msg.sample_rate, final=True))
            return None
        s.hear(pcm, msg.sample_rate, final=False)
        return Ack(req=msg.req, session=msg.session, utt=0)

    def _interrupt(self, r: Request) -> Reply:
        self._worker(r).interrupt()
        return Ack(req=r.msg.req, session=r.msg.session)

    def _set_persona(self, r: Request) -> Reply:
        self._worker(r).session.set_persona(r.msg.persona)
        return Ack(req=r.msg.req, session=r.msg.session)

    def _close(self, r: Request) -> Reply:
        self._worker(r).close("client")
        return Ack(req=r.msg.req, session=r.msg.session)

    def _live(self, sid: str) -> SessionWorker | None:
        """The worker of a session its client may still use: None once it is closing (from the close or the
        timeout on, its session_closed may be out while the worker still releases the engine session)."""
        worker = self.workers.get(sid)
        return None if worker is None or worker.closing else worker

    def _slow_call(self, ident: bytes, req: int, sid: str, fn: Callable[[], Any]) -> None:
        try:
            utt = fn()
            self._replies.put((ident, Ack(req=req, session=sid, utt=int(utt or 0))))
        except Exception as exc:
            self._replies.put((ident, Error(req=req, code=error_code_of(exc), message=str(exc)[:1000],
                                            session=sid)))

    def _open(self, r: Request) -> Reply | None:
        self._welcomed(r)
        msg, ident = r.msg, r.ident
        with self._lock:
            if len(self.workers) >= self.cfg.max_sessions:
                return Error(req=msg.req, code=ErrorCode.TOO_MANY_SESSIONS,
                             message=f"the daemon runs at most {self.cfg.max_sessions} sessions")
            sid = "s" + secrets.token_hex(6)
            portrait = r.blobs[0] if (msg.has_portrait and r.blobs) else None
            persona = msg.persona

            def reply(ok: bool, payload: Any) -> None:
                if ok:
                    self._replies.put((ident, Opened(
                        req=msg.req, session=sid, topic="xs1/" + sid, sample_rate=int(payload.sample_rate),
                        fps=int(payload.fps), width=payload.video_size, height=payload.video_size,
                        video_format=payload.video_format, motion_channels=list(payload.motion_channels),
                        model=self.cfg.model_name, warnings=[str(w) for w in getattr(payload, "warnings", [])])))
                else:
                    code = error_code_of(payload)
                    if code is ErrorCode.INTERNAL:
                        log.error("opening a session failed: %r", payload)
                    text = payload.message if isinstance(payload, ProtocolError) else str(payload)
                    self._replies.put((ident, Error(req=msg.req, code=code, message=text[:1000])))

            worker = SessionWorker(
                sid, lambda: self.engine.open_session(portrait=portrait, persona=persona, face_points=msg.face_points,
                                                      video_size=msg.video_size), self._publisher,
                lead_s=self.cfg.lead_ms / 1000.0, model_name=self.cfg.model_name, reply=reply,
                on_exit=self._on_worker_exit)
            self.workers[sid] = worker
            self._owner[sid] = ident
        worker.start()
        return None   # the worker replies (Opened or Error) once the engine session exists

    def _on_worker_exit(self, sid: str) -> None:
        with self._lock:
            self.workers.pop(sid, None)
            self._owner.pop(sid, None)

    def _sweep_timeouts(self) -> None:
        """Close sessions whose client sent nothing for session_timeout_s; forget silent clients."""
        now = time.monotonic()
        timeout = self.cfg.session_timeout_s
        with self._lock:
            owned = list(self._owner.items())
        for sid, ident in owned:
            client = self._clients.get(ident)
            if client is None or now - client.last_seen > timeout:
                w = self.workers.get(sid)
                if w is not None and not w.closing:
                    log.info("session %s: client silent for %.0f s, closing", sid, timeout)
                    w.close("timeout")
        busy = set(i for _, i in owned)
        for ident in [i for i, c in self._clients.items() if now - c.last_seen > max(timeout, 60) and i not in busy]:
            self._clients.pop(ident, None)


def _peek_req(raw: bytes) -> int:
    """Best-effort `req` of a header that may be invalid (so the error reply can be correlated)."""
    try:
        if len(raw) > 65536:
            return 0
        obj = msgpack.unpackb(raw, raw=False)
        req = obj.get("req", 0) if isinstance(obj, dict) else 0
        return req if isinstance(req, int) and not isinstance(req, bool) and 0 <= req < 2 ** 63 else 0
    except Exception:
        return 0
