"""Synchronous Python client of the xstreamer daemon (protocol v2 over ZeroMQ; no torch).

    from sdk.client import Client
    with Client("tcp://127.0.0.1:7570", client_name="my-app") as client:
        with client.open_session(persona=Persona(name="Ada")) as s:
            utt = s.chat("Hello!")
            for pkt, payload in s.packets(timeout=5):
                if pkt.type == "event" and pkt.utt == utt and pkt.event in END_EVENTS:
                    break

Control requests go over one DEALER socket (serialised by a lock, so handles may be used from several
threads); each session handle reads its media from its own SUB socket, subscribed to the session's private
topic. A heartbeat thread pings the daemon when the client is otherwise silent. When the daemon stops
answering or no longer knows this connection, the client reconnects: a new connection says hello and `resume`s
each session with its secret; a session the daemon lost (a restart) is opened again with the same persona and
portrait, its running utterances end with a `lost` event, and its utterance ids continue after the old ones
(`reconnects` counts reconnects, `on_reconnect(client)` is called).

With `keys` (a client bundle made by `xstreamer keys client`, or sdk.keys.ClientKeys) both sockets use CURVE.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import deque
from typing import Any, Callable, Iterator, TypeVar

import numpy as np
import zmq

from sdk.errors import (ClientClosedError, DaemonTimeoutError, InvalidInputError, NotOwnerError,
                        NotWelcomedError, UnknownSessionError, error_from_reply)
from sdk.keys import ClientKeys
from sdk.protocol import ProtocolError, decode_media, decode_server, encode, motion_values
from sdk.protocol.constants import DEFAULT_CONTROL, FRAME_SIZE, MAX_MESSAGE_BYTES
from sdk.protocol.messages import (PROTOCOL_VERSION, Audio, Chat, Close, Error, ErrorCode, Hello, Interrupt, Load,
                                   LoadReport, Open, Opened, Persona, Ping, Resume, SetPersona, Speak, Welcome)
from sdk.utterances import Utterances

Packet = tuple[Any, "bytes | None"]
# Errors after which the client reconnects (the daemon restarted, dropped this connection, or is down).
RECONNECT_ON = (DaemonTimeoutError, NotWelcomedError, UnknownSessionError, NotOwnerError)
LOST_REASON = "lost: the daemon's session ended (restart); the session was opened again"


def media_endpoint_for(control: str, media: str) -> str:
    """The media endpoint to connect to: a wildcard bind address is replaced by the control host."""
    for wild in ("0.0.0.0", "*", "[::]"):
        if f"//{wild}:" in media:
            host = control.split("//", 1)[-1].rsplit(":", 1)[0]
            return media.replace(wild, host, 1)
    return media


def pcm16_bytes(pcm: np.ndarray) -> bytes:
    """int16 mono samples (or float in [-1, 1]) as PCM16 little-endian bytes."""
    a = np.asarray(pcm)
    if a.ndim != 1:
        raise ValueError(f"pcm must be mono (1-D), got shape {a.shape}")
    if a.dtype.kind == "f":
        a = np.clip(a, -1.0, 1.0) * 32767.0
    return a.astype("<i2").tobytes()


def check_size(msg: Any, blobs: tuple[bytes, ...]) -> None:
    """Refuse, before sending, a message the daemon's socket would drop unanswered (MAX_MESSAGE_BYTES)."""
    size = sum(len(b) for b in blobs)
    if size > MAX_MESSAGE_BYTES:
        code = {"open": ErrorCode.INVALID_PORTRAIT, "audio": ErrorCode.INVALID_AUDIO}.get(msg.type,
                                                                                          ErrorCode.MALFORMED)
        raise InvalidInputError(code, f"{msg.type} carries {size} bytes; a message may carry at most "
                                      f"{MAX_MESSAGE_BYTES} (the portrait at most 16 MiB)")


_Sock = TypeVar("_Sock", bound=zmq.Socket)


def point_sub(ctx: "zmq.Context[_Sock]", sub: _Sock | None, endpoint: str, topic: str, old_endpoint: str,
              old_topic: str, keys: ClientKeys | None = None) -> _Sock:
    """(Re)point a session's SUB socket at `endpoint` / `topic` and return it: a new socket when the endpoint
    changed (after a daemon restart), else the old one moved from `old_topic` to `topic`. Works for
    `zmq.Context` and `zmq.asyncio.Context` alike (the sync and asyncio clients share it)."""
    if sub is None or endpoint != old_endpoint:
        if sub is not None:
            sub.close(linger=0)
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVHWM, 4000)
        if keys is not None:
            keys.apply(sub)
        sub.connect(endpoint)
    elif old_topic and old_topic != topic:
        sub.setsockopt(zmq.UNSUBSCRIBE, old_topic.encode("ascii"))
    if topic != old_topic or endpoint != old_endpoint:
        sub.setsockopt(zmq.SUBSCRIBE, topic.encode("ascii"))
    return sub


class SessionHandle:
    """One avatar session of a `Client`. Create it with `Client.open_session`."""

    def __init__(self, client: "Client", opened: Opened, persona: Persona | None, portrait: bytes | None,
                 options: dict | None = None):
        self._client = client
        self.persona = persona
        self.portrait = portrait
        self.options = dict(options or {})
        self.info: Opened = opened
        self.closed = False
        self.utterances = Utterances()
        self._local: deque[Packet] = deque()        # packets made here (`lost` events), delivered first
        self._sub_lock = threading.Lock()
        self._sub: zmq.Socket[Any] | None = None
        self._sub_endpoint = ""
        self._topic = ""
        self._subscribe(client.media_endpoint, opened.topic)

    @property
    def id(self) -> str:
        """The session id (changes when the session had to be opened again after a restart)."""
        return self.info.session

    @property
    def topic(self) -> str:
        """The session's private media topic ("xs2/" + its media key)."""
        return self.info.topic

    @property
    def media_endpoint(self) -> str:
        return self._client.media_endpoint

    def _subscribe(self, endpoint: str, topic: str) -> None:
        with self._sub_lock:
            self._sub = point_sub(self._client._ctx, self._sub, endpoint, topic, self._sub_endpoint,
                                  self._topic, self._client.keys)
            self._sub_endpoint, self._topic = endpoint, topic

    def _rebind(self, opened: Opened, resumed: bool) -> None:
        """After a reconnect: the same session (resumed) or a new one in its place (its running utterances are
        lost: each gets a `lost` event)."""
        if not resumed:
            lost = self.utterances.lose_all(self.info.session, LOST_REASON)
            with self._sub_lock:
                self._local.extend((pkt, None) for pkt in lost)
        self.info = opened
        self._subscribe(self._client.media_endpoint, opened.topic)

    # ---- requests
    def chat(self, text: str) -> int:
        """A user turn in text; returns the utterance id the reply's media will carry."""
        ack = self._client._session_call(self, lambda sid: Chat(session=sid, text=text))
        return self.utterances.issued(ack.utt)

    def speak(self, text: str) -> int:
        """The avatar says `text` verbatim; returns its utterance id."""
        ack = self._client._session_call(self, lambda sid: Speak(session=sid, text=text))
        return self.utterances.issued(ack.utt)

    def hear(self, pcm: np.ndarray, sample_rate: int, final: bool = False) -> int | None:
        """Send a chunk of the user's voice (int16 mono, ≤ 10 s). With final=True the turn ends and the
        return value is the utterance id of the reply (the transcript arrives as a user TextPacket)."""
        blob = pcm16_bytes(pcm)
        ack = self._client._session_call(self, lambda sid: Audio(session=sid, sample_rate=sample_rate,
                                                                 final=final), blob,
                                          timeout=max(self._client.timeout, 30.0) if final else None)
        return self.utterances.issued(ack.utt) if final else None

    def interrupt(self) -> None:
        """Barge-in: stop the current reply (queued media is flushed; an `interrupted` event follows)."""
        self._client._session_call(self, lambda sid: Interrupt(session=sid))

    def set_persona(self, persona: Persona) -> None:
        """Replace the persona (from the next turn on; also used when the session is re-opened)."""
        self._client._session_call(self, lambda sid: SetPersona(session=sid, persona=persona))
        self.persona = persona

    def close(self) -> None:
        """Close the session on the daemon (best effort) and its SUB socket. Idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            self._client._request(Close(session=self.id), timeout=min(self._client.timeout, 2.0), retry=False)
        except Exception:
            pass
        self._client._forget(self)
        with self._sub_lock:
            if self._sub is not None:
                self._sub.close(linger=0)
                self._sub = None

    # ---- media
    def recv(self, timeout: float | None = None) -> Packet | None:
        """The next (packet model, payload bytes or None) of this session, or None after `timeout` s.
        Malformed media messages are skipped."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.closed:
                raise ClientClosedError("session handle is closed")
            left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            with self._sub_lock:
                if self._local:
                    return self._local.popleft()
                sub = self._sub
                if sub is not None and sub.poll(max(0, int(left * 1000))):
                    frames = sub.recv_multipart()
                    try:
                        item = decode_media(frames, topic=self._topic.encode("ascii"))
                    except ProtocolError:
                        continue
                    self.utterances.seen(item[0])
                    return item
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def motion(self, packet: Any, payload: bytes | None) -> dict[str, float]:
        """The named channel values of a `motion` packet of this session ({"jawOpen": 0.4, ..., "headYaw": -2.1}),
        in the order of `info.motion_channels`; ProtocolError for another packet or a payload of another size."""
        return motion_values(packet, payload, self.info.motion_channels)

    def packets(self, timeout: float | None = None) -> Iterator[Packet]:
        """Iterate (packet model, payload) of this session; raises TimeoutError (DaemonTimeoutError) when no
        packet arrives for `timeout` seconds (None: wait forever). Ends when the handle is closed."""
        while not self.closed:
            item = self.recv(timeout)
            if item is None:
                raise DaemonTimeoutError(f"no media packet for {timeout} s", session=self.id)
            yield item

    def __enter__(self) -> "SessionHandle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Client:
    """Connection to a daemon's control socket. `connect()` (or `with Client(...)`) says hello."""

    def __init__(self, control: str = DEFAULT_CONTROL, client_name: str = "", timeout: float = 5.0,
                 auto_reconnect: bool = True, on_reconnect: Callable[["Client"], None] | None = None,
                 heartbeat: bool = True, keys: ClientKeys | str | os.PathLike[str] | None = None):
        self.control = control
        self.client_name = client_name
        self.timeout = timeout
        self.auto_reconnect = auto_reconnect
        self.on_reconnect = on_reconnect
        self.heartbeat = heartbeat
        self.keys = ClientKeys.coerce(keys)
        self.welcome: Welcome | None = None
        self.media_endpoint = ""
        self.reconnects = 0
        self._ctx: zmq.Context[Any] = zmq.Context()
        self._lock = threading.RLock()
        self._dealer: zmq.Socket[Any] | None = None
        self._req = itertools.count(1)
        self._handles: list[SessionHandle] = []
        self._closed = False
        self._last_sent = 0.0
        self._hb_stop = threading.Event()
        self._hb: threading.Thread | None = None

    # ---- connection
    def connect(self) -> Welcome:
        """Open the DEALER socket and say hello; raises UnsupportedVersionError or DaemonTimeoutError."""
        with self._lock:
            self._new_dealer()
            self._hello()
        if self.heartbeat and self._hb is None:
            self._hb = threading.Thread(target=self._heartbeat_loop, name="xs-client-heartbeat", daemon=True)
            self._hb.start()
        assert self.welcome is not None
        return self.welcome

    def _new_dealer(self) -> None:
        if self._dealer is not None:
            self._dealer.close(linger=0)
        self._dealer = self._ctx.socket(zmq.DEALER)
        self._dealer.setsockopt(zmq.LINGER, 0)
        if self.keys is not None:
            self.keys.apply(self._dealer)
        self._dealer.connect(self.control)

    def _hello(self) -> None:
        w = self._roundtrip(Hello(versions=[PROTOCOL_VERSION], client=self.client_name), (), self.timeout)
        self.welcome = w
        self.media_endpoint = media_endpoint_for(self.control, w.media_endpoint)

    def close(self) -> None:
        """Close every session and the sockets. Idempotent."""
        if self._closed:
            return
        for h in list(self._handles):
            h.close()
        self._closed = True
        self._hb_stop.set()
        if self._hb is not None:
            self._hb.join(2)
        with self._lock:
            if self._dealer is not None:
                self._dealer.close(linger=0)
                self._dealer = None
        self._ctx.term()

    def __enter__(self) -> "Client":
        if self.welcome is None:
            self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- requests
    def _roundtrip(self, msg: Any, blobs: tuple[bytes, ...], timeout: float) -> Any:
        if self._closed:
            raise ClientClosedError("client is closed")
        if self._dealer is None:
            raise ClientClosedError("client is not connected (call connect())")
        check_size(msg, blobs)
        req = next(self._req)
        msg = msg.model_copy(update={"req": req})
        self._dealer.send_multipart(encode(msg, *blobs))
        self._last_sent = time.monotonic()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not self._dealer.poll(int(left * 1000)):
                raise DaemonTimeoutError(f"no reply to {msg.type} within {timeout} s from {self.control}")
            try:
                reply, _ = decode_server(self._dealer.recv_multipart())
            except ProtocolError:
                continue
            if reply.req != req:
                continue   # a late reply to an earlier, timed-out request
            if isinstance(reply, Error):
                raise error_from_reply(reply)
            return reply

    def _request(self, msg: Any, *blobs: bytes, timeout: float | None = None, retry: bool = True) -> Any:
        with self._lock:
            try:
                return self._roundtrip(msg, blobs, timeout or self.timeout)
            except (DaemonTimeoutError, NotWelcomedError):
                if not (retry and self.auto_reconnect):
                    raise
                self._reconnect()
                return self._roundtrip(msg, blobs, timeout or self.timeout)

    def _session_call(self, handle: SessionHandle, build: Callable[[str], Any], *blobs: bytes,
                      timeout: float | None = None) -> Any:
        if handle.closed:
            raise ClientClosedError("session handle is closed")
        with self._lock:
            try:
                return self._roundtrip(build(handle.id), blobs, timeout or self.timeout)
            except RECONNECT_ON:
                if not self.auto_reconnect:
                    raise
                self._reconnect()
                return self._roundtrip(build(handle.id), blobs, timeout or self.timeout)

    def ping(self, session: str | None = None) -> Any:
        """Round-trip a ping; returns the Pong (`sessions`: how many this connection holds)."""
        return self._request(Ping(session=session))

    def load(self) -> LoadReport:
        """How loaded the daemon is: its sessions, how many it holds in real time and where that figure comes from,
        whether it accepts one more now (an `open` past it raises `sdk.errors.BusyError`)."""
        report: LoadReport = self._request(Load())
        return report

    def open_session(self, persona: Persona | None = None, portrait: bytes | None = None,
                     face_points: list | None = None, video_size: int = FRAME_SIZE) -> SessionHandle:
        """Open an avatar session and subscribe to its media: an optional persona and portrait (image file bytes),
        five `face_points` [[x, y], ...] in the portrait's pixels where its face cannot be found (eye centres,
        nose tip, mouth corners), and the frames' side (256 or 512)."""
        options = {"face_points": face_points, "video_size": video_size}
        opened = self._open(persona, portrait, options)
        h = SessionHandle(self, opened, persona, portrait, options)
        self._handles.append(h)
        return h

    def resume_session(self, session: str, secret: str, persona: Persona | None = None,
                       portrait: bytes | None = None) -> SessionHandle:
        """Hold a session another connection opened, with its id and the `secret` of its `opened` (e.g. the
        OBS bridge on the studio's session): this client then gets its media and may control it. `persona`
        and `portrait` are what it is opened with again should the daemon lose it."""
        opened: Opened = self._request(Resume(session=session, secret=secret))
        h = SessionHandle(self, opened, persona, portrait)
        self._handles.append(h)
        return h

    def _open(self, persona: Persona | None, portrait: bytes | None, options: dict[str, Any],
              retry: bool = True, first_utt: int = 1) -> Opened:
        msg = Open(persona=persona or Persona(), has_portrait=portrait is not None, first_utt=first_utt,
                   **options)
        blobs = (portrait,) if portrait is not None else ()
        opened: Opened = self._request(msg, *blobs, timeout=max(self.timeout, 30.0), retry=retry)
        return opened

    def _forget(self, handle: SessionHandle) -> None:
        if handle in self._handles:
            self._handles.remove(handle)

    # ---- reconnect and heartbeats
    def _reconnect(self) -> None:
        """New DEALER, hello, then each session: resumed with its secret, or (the daemon lost it) opened again
        with the same persona/portrait and the next utterance id, its running utterances ending `lost`."""
        with self._lock:
            self._new_dealer()
            self._hello()
            for h in list(self._handles):
                if h.closed:
                    continue
                try:
                    h._rebind(self._roundtrip(Resume(session=h.id, secret=h.info.secret), (), self.timeout),
                              resumed=True)
                except (UnknownSessionError, NotOwnerError):
                    reopened = self._open(h.persona, h.portrait, h.options, retry=False,
                                          first_utt=h.utterances.next_utt)
                    h._rebind(reopened, resumed=False)
            self.reconnects += 1
        if self.on_reconnect is not None:
            try:
                self.on_reconnect(self)
            except Exception:
                pass

    def _heartbeat_loop(self) -> None:
        while not self._hb_stop.is_set():
            period = (self.welcome.heartbeat_ms if self.welcome else 1000) / 1000.0
            if self._hb_stop.wait(period / 2):
                return
            if time.monotonic() - self._last_sent < period:
                continue
            try:
                with self._lock:
                    if self._closed:
                        return
                    live = [h for h in self._handles if not h.closed]
                    # Pinging with a session id detects a restarted daemon (it answers not_welcomed/unknown).
                    self._roundtrip(Ping(session=live[0].id if live else None), (), max(2.0, 2 * period))
            except RECONNECT_ON:
                if not self.auto_reconnect:
                    continue
                try:
                    self._reconnect()
                except Exception:
                    self._hb_stop.wait(1.0)   # daemon still down: try again later
            except Exception:
                pass
