"""asyncio client of the xstreamer daemon (zmq.asyncio); the same API as `sdk.client`, with `await`.

    async with AsyncClient("tcp://127.0.0.1:7570") as client:
        s = await client.open_session()
        utt = await s.speak("Hello!")
        async for pkt, payload in s.packets(timeout=5):
            if pkt.type == "event" and pkt.utt == utt and pkt.event in END_EVENTS:
                break
        await s.close()

Requests are serialised by an asyncio.Lock; a heartbeat task pings when idle and reconnects when the daemon
stops answering or restarted (hello, `resume` each session with its secret, or open it again: its running
utterances end `lost`, its utterance ids continue), as `sdk.client.Client` does.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections import deque
from typing import Any, AsyncIterator, Callable

import numpy as np
import zmq
import zmq.asyncio

from sdk.client import LOST_REASON, RECONNECT_ON, check_size, media_endpoint_for, pcm16_bytes, point_sub
from sdk.errors import (ClientClosedError, DaemonTimeoutError, NotOwnerError, NotWelcomedError,
                        UnknownSessionError, error_from_reply)
from sdk.keys import ClientKeys
from sdk.protocol import ProtocolError, decode_media, decode_server, encode
from sdk.protocol.constants import DEFAULT_CONTROL, FRAME_SIZE
from sdk.protocol.messages import (PROTOCOL_VERSION, Audio, Chat, Close, Error, Hello, Interrupt, Load, LoadReport,
                                   Open, Opened, Persona, Ping, Resume, SetPersona, Speak, Welcome)
from sdk.utterances import Utterances


class AsyncSessionHandle:
    """One avatar session of an `AsyncClient` (see `sdk.client.SessionHandle` for the semantics)."""

    def __init__(self, client: "AsyncClient", opened: Opened, persona: Persona | None, portrait: bytes | None,
                 options: dict | None = None):
        self._client = client
        self.persona = persona
        self.portrait = portrait
        self.options = dict(options or {})
        self.info: Opened = opened
        self.closed = False
        self.utterances = Utterances()
        self._local: deque[tuple[Any, bytes | None]] = deque()    # `lost` events, delivered first
        self._sub: zmq.asyncio.Socket | None = None
        self._sub_endpoint = ""
        self._topic = ""
        self._subscribe(client.media_endpoint, opened.topic)

    @property
    def id(self) -> str:
        return self.info.session

    @property
    def topic(self) -> str:
        return self.info.topic

    @property
    def media_endpoint(self) -> str:
        return self._client.media_endpoint

    def _subscribe(self, endpoint: str, topic: str) -> None:
        self._sub = point_sub(self._client._ctx, self._sub, endpoint, topic, self._sub_endpoint, self._topic,
                              self._client.keys)
        self._sub_endpoint, self._topic = endpoint, topic

    def _rebind(self, opened: Opened, resumed: bool) -> None:
        if not resumed:
            lost = self.utterances.lose_all(self.info.session, LOST_REASON)
            self._local.extend((pkt, None) for pkt in lost)
        self.info = opened
        self._subscribe(self._client.media_endpoint, opened.topic)

    async def chat(self, text: str) -> int:
        """A user turn in text; returns the reply's utterance id."""
        ack = await self._client._session_call(self, lambda sid: Chat(session=sid, text=text))
        return self.utterances.issued(ack.utt)

    async def speak(self, text: str) -> int:
        """Say `text` verbatim; returns its utterance id."""
        ack = await self._client._session_call(self, lambda sid: Speak(session=sid, text=text))
        return self.utterances.issued(ack.utt)

    async def hear(self, pcm: np.ndarray, sample_rate: int, final: bool = False) -> int | None:
        """Send user voice (int16 mono); with final=True returns the reply's utterance id."""
        blob = pcm16_bytes(pcm)
        ack = await self._client._session_call(
            self, lambda sid: Audio(session=sid, sample_rate=sample_rate, final=final), blob,
            timeout=max(self._client.timeout, 30.0) if final else None)
        return self.utterances.issued(ack.utt) if final else None

    async def interrupt(self) -> None:
        """Barge-in: stop the current reply."""
        await self._client._session_call(self, lambda sid: Interrupt(session=sid))

    async def set_persona(self, persona: Persona) -> None:
        """Replace the persona from the next turn on."""
        await self._client._session_call(self, lambda sid: SetPersona(session=sid, persona=persona))
        self.persona = persona

    async def close(self) -> None:
        """Close the session (best effort) and its SUB socket. Idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            await self._client._request(Close(session=self.id), timeout=min(self._client.timeout, 2.0),
                                        retry=False)
        except Exception:
            pass
        self._client._forget(self)
        if self._sub is not None:
            self._sub.close(linger=0)
            self._sub = None

    async def recv(self, timeout: float | None = None) -> tuple[Any, bytes | None] | None:
        """The next (packet, payload) or None after `timeout` seconds; malformed messages are skipped."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.closed:
            if self._local:
                return self._local.popleft()
            left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            sub = self._sub
            if sub is not None and await sub.poll(max(0, int(left * 1000))):
                frames = await sub.recv_multipart()
                try:
                    item = decode_media(frames, topic=self._topic.encode("ascii"))
                except ProtocolError:
                    continue
                self.utterances.seen(item[0])
                return item
            if deadline is not None and time.monotonic() >= deadline:
                return None
        raise ClientClosedError("session handle is closed")

    async def packets(self, timeout: float | None = None) -> AsyncIterator[tuple[Any, bytes | None]]:
        """Async-iterate (packet, payload); DaemonTimeoutError (a TimeoutError) after `timeout` s of silence.
        """
        while not self.closed:
            item = await self.recv(timeout)
            if item is None:
                raise DaemonTimeoutError(f"no media packet for {timeout} s", session=self.id)
            yield item

    async def __aenter__(self) -> "AsyncSessionHandle":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncClient:
    """asyncio twin of `sdk.client.Client` (same constructor and methods, awaitable)."""

    def __init__(self, control: str = DEFAULT_CONTROL, client_name: str = "", timeout: float = 5.0,
                 auto_reconnect: bool = True, on_reconnect: Callable[["AsyncClient"], Any] | None = None,
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
        self._ctx = zmq.asyncio.Context()
        self._lock = asyncio.Lock()
        self._dealer: zmq.asyncio.Socket | None = None
        self._req = itertools.count(1)
        self._handles: list[AsyncSessionHandle] = []
        self._closed = False
        self._last_sent = 0.0
        self._hb: asyncio.Task | None = None

    async def connect(self) -> Welcome:
        """Open the DEALER socket and say hello."""
        async with self._lock:
            self._new_dealer()
            await self._hello()
        if self.heartbeat and self._hb is None:
            self._hb = asyncio.get_running_loop().create_task(self._heartbeat_loop())
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

    async def _hello(self) -> None:
        w = await self._roundtrip(Hello(versions=[PROTOCOL_VERSION], client=self.client_name), (), self.timeout)
        self.welcome = w
        self.media_endpoint = media_endpoint_for(self.control, w.media_endpoint)

    async def close(self) -> None:
        """Close every session and the sockets. Idempotent."""
        if self._closed:
            return
        for h in list(self._handles):
            await h.close()
        self._closed = True
        if self._hb is not None:
            self._hb.cancel()
            try:
                await self._hb
            except (asyncio.CancelledError, Exception):
                pass
        if self._dealer is not None:
            self._dealer.close(linger=0)
            self._dealer = None
        self._ctx.term()

    async def __aenter__(self) -> "AsyncClient":
        if self.welcome is None:
            await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _roundtrip(self, msg: Any, blobs: tuple[bytes, ...], timeout: float) -> Any:
        if self._closed or self._dealer is None:
            raise ClientClosedError("client is closed or not connected")
        check_size(msg, blobs)
        req = next(self._req)
        msg = msg.model_copy(update={"req": req})
        await self._dealer.send_multipart(encode(msg, *blobs))
        self._last_sent = time.monotonic()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not await self._dealer.poll(int(left * 1000)):
                raise DaemonTimeoutError(f"no reply to {msg.type} within {timeout} s from {self.control}")
            try:
                reply, _ = decode_server(await self._dealer.recv_multipart())
            except ProtocolError:
                continue
            if reply.req != req:
                continue
            if isinstance(reply, Error):
                raise error_from_reply(reply)
            return reply

    async def _request(self, msg: Any, *blobs: bytes, timeout: float | None = None, retry: bool = True) -> Any:
        async with self._lock:
            try:
                return await self._roundtrip(msg, blobs, timeout or self.timeout)
            except (DaemonTimeoutError, NotWelcomedError):
                if not (retry and self.auto_reconnect):
                    raise
                await self._reconnect_locked()
                return await self._roundtrip(msg, blobs, timeout or self.timeout)

    async def _session_call(self, handle: AsyncSessionHandle, build: Callable[[str], Any], *blobs: bytes,
                            timeout: float | None = None) -> Any:
        if handle.closed:
            raise ClientClosedError("session handle is closed")
        async with self._lock:
            try:
                return await self._roundtrip(build(handle.id), blobs, timeout or self.timeout)
            except RECONNECT_ON:
                if not self.auto_reconnect:
                    raise
                await self._reconnect_locked()
                return await self._roundtrip(build(handle.id), blobs, timeout or self.timeout)

    async def ping(self, session: str | None = None) -> Any:
        """Round-trip a ping; returns the Pong."""
        return await self._request(Ping(session=session))

    async def load(self) -> LoadReport:
        """How loaded the daemon is (as `sdk.client.Client.load`)."""
        report: LoadReport = await self._request(Load())
        return report

    async def open_session(self, persona: Persona | None = None, portrait: bytes | None = None,
                           face_points: list | None = None, video_size: int = FRAME_SIZE) -> AsyncSessionHandle:
        """Open a session and subscribe to its media (arguments as `sdk.client.Client.open_session`)."""
        options = {"face_points": face_points, "video_size": video_size}
        async with self._lock:
            opened = await self._open_locked(persona, portrait, options)
        h = AsyncSessionHandle(self, opened, persona, portrait, options)
        self._handles.append(h)
        return h

    async def resume_session(self, session: str, secret: str, persona: Persona | None = None,
                             portrait: bytes | None = None) -> AsyncSessionHandle:
        """Hold a session another connection opened (its id and secret); see Client.resume_session."""
        opened: Opened = await self._request(Resume(session=session, secret=secret))
        h = AsyncSessionHandle(self, opened, persona, portrait)
        self._handles.append(h)
        return h

    async def _open_locked(self, persona: Persona | None, portrait: bytes | None, options: dict[str, Any],
                           first_utt: int = 1) -> Opened:
        msg = Open(persona=persona or Persona(), has_portrait=portrait is not None, first_utt=first_utt,
                   **options)
        blobs = (portrait,) if portrait is not None else ()
        opened: Opened = await self._roundtrip(msg, blobs, max(self.timeout, 30.0))
        return opened

    def _forget(self, handle: AsyncSessionHandle) -> None:
        if handle in self._handles:
            self._handles.remove(handle)

    async def _reconnect_locked(self) -> None:
        self._new_dealer()
        await self._hello()
        for h in list(self._handles):
            if h.closed:
                continue
            try:
                h._rebind(await self._roundtrip(Resume(session=h.id, secret=h.info.secret), (), self.timeout),
                          resumed=True)
            except (UnknownSessionError, NotOwnerError):
                reopened = await self._open_locked(h.persona, h.portrait, h.options, h.utterances.next_utt)
                h._rebind(reopened, resumed=False)
        self.reconnects += 1
        if self.on_reconnect is not None:
            try:
                res = self.on_reconnect(self)
                if asyncio.iscoroutine(res):
                    await res
            except Exception:
                pass

    async def _heartbeat_loop(self) -> None:
        while not self._closed:
            period = (self.welcome.heartbeat_ms if self.welcome else 1000) / 1000.0
            await asyncio.sleep(period / 2)
            if time.monotonic() - self._last_sent < period:
                continue
            async with self._lock:
                try:
                    live = [h for h in self._handles if not h.closed]
                    await self._roundtrip(Ping(session=live[0].id if live else None), (), max(2.0, 2 * period))
                except RECONNECT_ON:
                    if self.auto_reconnect:
                        try:
                            await self._reconnect_locked()
                        except Exception:
                            await asyncio.sleep(1.0)
                except Exception:
                    pass
