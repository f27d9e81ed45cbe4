"""The daemon: one control thread owning the ROUTER socket, one media thread owning the XPUB socket, and one
worker thread per session (engine_core.daemon.session_worker).

The control loop never dies on a message: every request is decoded and handled inside a catch-all, and a bad
one gets a typed `error` reply (protocol ErrorCode) while the daemon goes on. Handlers sit in a table keyed by
the client message's model class. Slow engine calls (opening a session: portrait analysis; the final chunk of
user audio: transcription) run off the control thread and post their reply through a queue that the control
loop drains.

Trust (docs/security.md): a session belongs to the connection (ROUTER routing id) that opened it; any other
connection naming it gets `not_owner`, unless it has shown the session's `secret` in a `resume` (the owner's
own reconnect, or a second program of the same user, e.g. the OBS bridge on the studio's session): it then
holds the session too. Each connection is limited in sessions, requests a second and turns queued per session;
`pong` counts only the asking connection's sessions. Off loopback both sockets run CURVE (security.py).
"""

from __future__ import annotations

import hmac
import logging
import queue
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Union

import numpy as np
import zmq

from sdk.keys import ServerKeys
from sdk.protocol import (ProtocolError, check_portrait_header, decode_client, encode, format_ready_line,
                          peek_req)
from sdk.protocol.constants import (CLIENT_BURST, CLIENT_RATE, CLIENT_SESSIONS, DEFAULT_CONTROL_PORT,
                                    DEFAULT_HOST, DEFAULT_MEDIA_PORT, HEARTBEAT_MS, LEAD_MS,
                                    MAX_MESSAGE_BYTES, MAX_TURN_AUDIO_SECONDS, SESSION_QUEUE,
                                    SESSION_TIMEOUT_S)
from sdk.protocol.messages import (SUPPORTED_VERSIONS, Ack, Audio, Chat, Close, Error, ErrorCode, Hello,
                                   Interrupt, Load, LoadReport, Open, Opened, Ping, Pong, Resume, SetPersona, Speak,
                                   Welcome)

from .capacity import Admission, Capacity
from .clients import Client, TokenBucket
from .media import MediaPublisher
from .memory import rss_mb
from .security import Curve
from .session_worker import SessionWorker

log = logging.getLogger("xstreamer.daemon")


def _gpu_mb() -> float:
    """GPU memory this process's tensors hold (0 without torch or CUDA in use)."""
    import sys

    torch = sys.modules.get("torch")
    try:
        return torch.cuda.memory_allocated() / 2 ** 20 if torch is not None and torch.cuda.is_initialized() else 0.0
    except Exception:
        return 0.0

Reply = Union[Welcome, Opened, Ack, Pong, LoadReport, Error]


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


def _unknown(sid: str) -> ProtocolError:
    return ProtocolError(ErrorCode.UNKNOWN_SESSION, f"no session {sid!r}", session=sid)


@dataclass
class Request:
    """One decoded client message as a handler sees it: who sent it, the typed message, its blobs."""

    ident: bytes            # the ROUTER routing id of the client's connection
    client: Client
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
    client_sessions: int = CLIENT_SESSIONS      # sessions one connection may hold
    client_rate: float = CLIENT_RATE            # its requests a second (average) ...
    client_burst: int = CLIENT_BURST            # ... and at once
    session_queue: int = SESSION_QUEUE          # turns of one session accepted and not yet ended
    capacity: Capacity | None = None            # sessions held in real time (capacity.py; None: max_sessions)


class Daemon:
    """`Daemon(engine, config, keys).start()` binds both sockets and starts the threads; `stop()` ends them.
    With `keys` (sdk.keys.ServerKeys) both sockets are CURVE servers letting in only authorized clients."""

    def __init__(self, engine: Any, config: DaemonConfig | None = None, keys: ServerKeys | None = None):
        self.engine = engine
        self.cfg = config or DaemonConfig()
        self.ctx: zmq.Context[Any] = zmq.Context()
        self.curve = Curve(self.ctx, keys) if keys is not None else None
        self.control_endpoint = ""
        self.media_endpoint = ""
        self.workers: dict[str, SessionWorker] = {}
        self._clients: dict[bytes, Client] = {}
        self._replies: queue.Queue[tuple[bytes, Reply]] = queue.Queue()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="xs-slow")
        self._publisher = MediaPublisher(self.ctx, f"tcp://{self.cfg.host}:{self.cfg.media_port}",
                                         sndhwm=self.cfg.sndhwm,
                                         secure=self.curve.secure if self.curve is not None else None)
        self._router: zmq.Socket[Any] | None = None
        self._thread: threading.Thread | None = None
        self.messages = 0
        self.errors = 0
        self._handlers: dict[type, Callable[[Request], Reply | None]] = {
            Hello: self._hello, Ping: self._ping, Open: self._open, Resume: self._resume, Chat: self._chat,
            Speak: self._speak, Audio: self._audio, Interrupt: self._interrupt, SetPersona: self._set_persona,
            Close: self._close, Load: self._load}
        self.admission = Admission(self.cfg.capacity or Capacity(self.cfg.max_sessions, "unmeasured",
                                                                 "--max-sessions"),
                                   replicas=getattr(engine, "replica_counts", None))   # (Ray: daemon/ray_replicas.py)

    # ---- lifecycle
    def start(self) -> None:
        self.media_endpoint = self._publisher.start_and_wait()
        router = self.ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        router.setsockopt(zmq.ROUTER_MANDATORY, 0)
        router.setsockopt(zmq.ROUTER_HANDOVER, 0)          # a connection never takes over a live routing id
        router.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)   # larger: dropped by libzmq before allocation
        router.setsockopt(zmq.RCVHWM, 64)                  # bounds what one connection can queue up
        if self.curve is not None:
            self.curve.secure(router)
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
        if self.curve is not None:
            self.curve.stop()
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

    def _send(self, router: zmq.Socket[Any], ident: bytes, msg: Reply) -> None:
        if isinstance(msg, Error) and msg.session is not None and len(msg.session) > 128:
            msg = msg.model_copy(update={"session": None})   # never echo huge junk back
        try:
            router.send_multipart([ident, *encode(msg)], flags=zmq.NOBLOCK)
        except zmq.ZMQError:
            log.debug("reply to a vanished client dropped")

    def _drain_replies(self, router: zmq.Socket[Any]) -> None:
        while True:
            try:
                ident, msg = self._replies.get_nowait()
            except queue.Empty:
                return
            self._send(router, ident, msg)

    def _on_message(self, router: zmq.Socket[Any], frames: list[bytes]) -> None:
        """Handle one ROUTER message: [identity, header, *blobs]. Never raises."""
        self.messages += 1
        ident = frames[0] if frames else b""
        req = 0
        reply: Reply | None
        try:
            req = peek_req(frames[1] if len(frames) > 1 else b"")
            client = self._clients.get(ident)
            if client is None:
                bucket = TokenBucket(self.cfg.client_rate, self.cfg.client_burst)
                client = self._clients[ident] = Client(bucket)
            client.last_seen = time.monotonic()
            if not client.bucket.take():
                client.refused += 1
                raise ProtocolError(ErrorCode.RATE_LIMITED, f"more than {self.cfg.client_rate:g} requests a "
                                                            f"second from this connection")
            msg, blobs = decode_client(frames[1:])
            reply = self._handlers[type(msg)](Request(ident, client, msg, blobs))
        except ProtocolError as exc:
            self.errors += 1
            reply = Error(req=exc.req or req, code=exc.code, message=exc.message[:1000], session=exc.session)
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
                       server=f"xstreamer/0.1.0 model={self.cfg.model_name}",
                       media_endpoint=self.media_endpoint, heartbeat_ms=self.cfg.heartbeat_ms,
                       session_timeout_s=self.cfg.session_timeout_s)

    def _ping(self, r: Request) -> Reply:
        """Before hello a pong says nothing (0 sessions; naming a session: not_welcomed); after it, the number
        of sessions this connection holds."""
        msg = r.msg
        if not r.client.welcomed:
            if msg.session is not None:
                raise ProtocolError(ErrorCode.NOT_WELCOMED, "send hello first", req=msg.req)
            return Pong(req=msg.req, sessions=0, state="ok")
        if msg.session is not None:
            self._owned(r.ident, msg.session)
        return Pong(req=msg.req, sessions=len(self._held_by(r.ident)), state="ok")

    def _welcomed(self, r: Request) -> None:
        if not r.client.welcomed:
            raise ProtocolError(ErrorCode.NOT_WELCOMED, "send hello first")

    def _live(self, sid: str) -> SessionWorker | None:
        """The worker of a session its client may still use: None once it is closing (from the close or the
        timeout on, its session_closed may be out while the worker still releases the engine session)."""
        worker = self.workers.get(sid)
        return None if worker is None or worker.closing else worker

    def _open_workers(self) -> list[SessionWorker]:
        """The workers of the sessions not closing."""
        with self._lock:
            return [w for w in self.workers.values() if not w.closing]

    def _held_by(self, ident: bytes) -> list[SessionWorker]:
        with self._lock:
            return [w for w in self.workers.values() if ident in w.holders and not w.closing]

    def _owned(self, ident: bytes, sid: str) -> SessionWorker:
        """The live worker of session `sid` if this connection holds it (else unknown_session / not_owner)."""
        worker = self._live(sid)
        if worker is None:
            raise _unknown(sid)
        if ident not in worker.holders:
            raise ProtocolError(ErrorCode.NOT_OWNER, "the session belongs to another connection (resume it "
                                                     "with its secret)", session=sid)
        return worker

    def _worker(self, r: Request) -> SessionWorker:
        """The worker of the open session a session request names, held by the sender (ProtocolError else)."""
        self._welcomed(r)
        worker = self._owned(r.ident, r.msg.session)
        if worker.session is None:
            raise ProtocolError(ErrorCode.UNKNOWN_SESSION, "session is still opening", session=r.msg.session)
        return worker

    def _room_for_a_turn(self, worker: SessionWorker) -> None:
        if worker.queued() >= self.cfg.session_queue:
            raise ProtocolError(ErrorCode.RATE_LIMITED, f"{worker.queued()} turns of this session are queued "
                                f"(at most {self.cfg.session_queue}); wait for one to end",
                                session=worker.sid)

    def _chat(self, r: Request) -> Reply:
        worker = self._worker(r)
        self._room_for_a_turn(worker)
        utt = worker.accepted(worker.session.chat(r.msg.text))
        return Ack(req=r.msg.req, session=r.msg.session, utt=utt)

    def _speak(self, r: Request) -> Reply:
        worker = self._worker(r)
        self._room_for_a_turn(worker)
        utt = worker.accepted(worker.session.speak(r.msg.text))
        return Ack(req=r.msg.req, session=r.msg.session, utt=utt)

    def _audio(self, r: Request) -> Reply | None:
        msg, worker = r.msg, self._worker(r)
        s = worker.session
        seconds = len(r.blobs[0]) / 2 / msg.sample_rate
        if worker.turn_audio_s + seconds > MAX_TURN_AUDIO_SECONDS:
            raise ProtocolError(ErrorCode.INVALID_AUDIO, f"the turn's audio would last "
                                f"{worker.turn_audio_s + seconds:.1f} s (at most "
                                f"{MAX_TURN_AUDIO_SECONDS:g} s); end the turn (final: true)",
                                session=msg.session)
        if msg.final:
            self._room_for_a_turn(worker)
        pcm = np.frombuffer(r.blobs[0], dtype="<i2").astype(np.int16)
        if msg.final:   # transcription: off the control thread
            worker.turn_audio_s = 0.0
            self._pool.submit(self._slow_call, r.ident, msg.req, worker,
                              lambda: s.hear(pcm, msg.sample_rate, final=True))
            return None
        s.hear(pcm, msg.sample_rate, final=False)
        worker.turn_audio_s += seconds
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

    def _slow_call(self, ident: bytes, req: int, worker: SessionWorker, fn: Callable[[], Any]) -> None:
        sid = worker.sid
        try:
            utt = worker.accepted(fn())
            self._replies.put((ident, Ack(req=req, session=sid, utt=utt)))
        except Exception as exc:
            self._replies.put((ident, Error(req=req, code=error_code_of(exc), message=str(exc)[:1000],
                                            session=sid)))

    def _refusal(self, live: int) -> tuple[ErrorCode, str] | None:
        """Why a new session would be refused with `live` sessions open (None: it would open): the daemon's most,
        then real time (capacity.py: the capacity, and the open sessions keeping up)."""
        if live >= self.cfg.max_sessions:
            return ErrorCode.TOO_MANY_SESSIONS, f"the daemon runs at most {self.cfg.max_sessions} sessions"
        busy = self.admission.refusal(live)
        return None if busy is None else (ErrorCode.BUSY, busy)

    def _room_for_a_session(self, ident: bytes) -> None:
        live = self._open_workers()
        refused = self._refusal(len(live))
        if refused is not None:
            raise ProtocolError(*refused)
        held = sum(ident in w.holders for w in live)
        if held >= self.cfg.client_sessions:
            raise ProtocolError(ErrorCode.TOO_MANY_SESSIONS,
                                f"this connection holds {held} sessions (at most {self.cfg.client_sessions})")

    def _open(self, r: Request) -> Reply | None:
        self._welcomed(r)
        msg, ident = r.msg, r.ident
        self._room_for_a_session(ident)
        portrait = r.blobs[0] if r.blobs else None
        if portrait is not None:
            check_portrait_header(portrait)        # the declared pixel count, before anything decodes it
        sid = "s" + secrets.token_hex(8)
        persona = msg.persona

        def reply(ok: bool, payload: Any) -> None:
            if ok:
                worker.opened = Opened(
                    req=msg.req, session=sid, topic=worker.topic, secret=worker.secret,
                    sample_rate=int(payload.sample_rate), fps=int(payload.fps), width=payload.video_size,
                    height=payload.video_size, video_format=payload.video_format,
                    motion_channels=list(payload.motion_channels), model=self.cfg.model_name,
                    warnings=[str(w) for w in getattr(payload, "warnings", [])])
                self._replies.put((ident, worker.opened))
            else:
                code = error_code_of(payload)
                if code is ErrorCode.INTERNAL:
                    log.error("opening a session failed: %r", payload)
                text = payload.message if isinstance(payload, ProtocolError) else str(payload)
                self._replies.put((ident, Error(req=msg.req, code=code, message=text[:1000])))

        def opener() -> Any:
            return self.engine.open_session(portrait=portrait, persona=persona, face_points=msg.face_points,
                                            video_size=msg.video_size)

        worker = SessionWorker(
            sid, opener, self._publisher,
            lead_s=self.cfg.lead_ms / 1000.0, model_name=self.cfg.model_name, reply=reply,
            on_exit=self._on_worker_exit, first_utt=msg.first_utt, holder=ident,
            on_late=self.admission.note_late)
        with self._lock:
            self.workers[sid] = worker
        worker.start()
        return None   # the worker replies (Opened or Error) once the engine session exists

    def _resume(self, r: Request) -> Reply:
        """A new connection of the same client (or another program it gave the secret) holds the session too:
        the `secret` from `opened` proves it."""
        self._welcomed(r)
        msg = r.msg
        worker = self._live(msg.session)
        if worker is None:
            raise _unknown(msg.session)
        if not hmac.compare_digest(worker.secret.encode(), msg.secret.encode()):
            raise ProtocolError(ErrorCode.NOT_OWNER, "wrong secret for this session", session=msg.session)
        if worker.opened is None:
            raise ProtocolError(ErrorCode.UNKNOWN_SESSION, "session is still opening", session=msg.session)
        if r.ident not in worker.holders:
            self._room_for_a_session(r.ident)
            log.info("session %s resumed by another connection", worker.sid)
            worker.holders.add(r.ident)
        return worker.opened.model_copy(update={"req": msg.req})

    def _on_worker_exit(self, sid: str) -> None:
        with self._lock:
            self.workers.pop(sid, None)
        self.admission.forget(sid)

    def _load(self, r: Request) -> Reply:
        """The daemon's load (capacity.py): its sessions against what it holds in real time, whether one more
        would open now, how busy the engine is."""
        self._welcomed(r)
        live = self._open_workers()
        refused = self._refusal(len(live))                  # what an `open` would get now
        cap = self.admission.capacity
        engine = self.engine
        fps = [w.gen_fps for w in live if w.chunks]
        return LoadReport(req=r.msg.req, model=self.cfg.model_name, sessions=len(live), capacity=cap.sessions,
                          capacity_source=cap.source, accepting=refused is None,
                          reason=refused[1] if refused is not None else "",
                          utilization=round(float(engine.utilization()), 3), fps_min=round(min(fps), 2) if fps else 0.0,
                          rss_mb=round(rss_mb(), 1), gpu_mb=round(_gpu_mb(), 1),
                          replicas=int(engine.live_replicas()) if hasattr(engine, "live_replicas") else 1)

    def _sweep_timeouts(self) -> None:
        """Close sessions none of whose holders sent anything for session_timeout_s (a holder silent that long
        lets go of them); forget silent connections."""
        now = time.monotonic()
        timeout = self.cfg.session_timeout_s
        with self._lock:
            workers = list(self.workers.values())
        for w in workers:
            gone = {i for i in w.holders
                    if i not in self._clients or now - self._clients[i].last_seen > timeout}
            if gone and not w.closing:
                if gone == w.holders:
                    log.info("session %s: client silent for %.0f s, closing", w.sid, timeout)
                    w.close("timeout")
                else:
                    w.holders -= gone
        busy = set().union(*(w.holders for w in workers)) if workers else set()
        for ident in [i for i, c in self._clients.items() if now - c.last_seen > max(timeout, 60) and i not in busy]:
            self._clients.pop(ident, None)
