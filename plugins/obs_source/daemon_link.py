"""The bridge's link to the daemon, through the SDK's `AsyncClient`: one session, opened (or attached to),
kept alive across daemon restarts.

`DaemonLink.run()` loops forever: connect, open the session (or attach to `session`) and hand every media
packet to `on_packet(header_bytes, payload, published_ms)`. The SDK's heartbeat notices a dead or restarted
daemon and re-opens the session (same persona and portrait) on its own; the link reports the new session
through `on_state()`. While no packet (not even the daemon's ~1 Hz `state`) arrived for STALL_S, the daemon
counts as disconnected. Requests (chat, speak, interrupt) raise LinkError while the daemon is unreachable
and `ProtocolError` when it refuses them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from sdk.aio import AsyncClient, AsyncSessionHandle
from sdk.errors import ClientClosedError, DaemonTimeoutError
from sdk.protocol import Persona, ProtocolError, pack_header
from sdk.protocol.messages import Opened

STALL_S = 2.5          # no media packet for this long: the daemon is gone (it publishes `state` ~1/s)
TIMEOUT_S = 2.0        # request timeout given to the SDK
BACKOFF = (0.1, 0.2, 0.4, 0.8, 1.0)


class LinkError(Exception):
    """The daemon is not connected (or did not answer in time)."""


class EndpointMoved(Exception):
    """The daemon the bridge started came back on other ports: connect again there."""


class DaemonLink:
    """One daemon session as seen by the bridge (see the module docstring)."""

    def __init__(self, endpoint: str | None, persona: Persona | None = None, portrait: bytes | None = None,
                 session: str | None = None, log: Callable[[str], None] = print, secret: str = "",
                 keys: Any = None, face_points: list | None = None) -> None:
        self.endpoint = endpoint or ""
        self._endpoint_known = asyncio.Event()
        if endpoint:
            self._endpoint_known.set()
        self.persona = persona or Persona()
        self.portrait = portrait
        self.face_points = face_points   # five [x, y] in the portrait's pixels where its face cannot be found
        self.attach = session
        self.attach_secret = secret      # protocol v2: attaching needs the session's secret (its `opened`)
        self.keys = keys                 # CURVE client keys (sdk.keys.ClientKeys or a bundle folder), or None
        self.log = log
        self.on_packet: Callable[[bytes, bytes | None, float], None] = lambda h, p, t: None
        self.on_state: Callable[[], None] = lambda: None
        self.last_error: str | None = None
        self._client: AsyncClient | None = None
        self._handle: AsyncSessionHandle | None = None
        self._info: dict | None = None
        self._epoch = 0
        self._counts = {"connects": 0, "media_packets": 0, "seq_gaps": 0}
        self._last_seq: int | None = None
        self._last_media = 0.0

    # ---- public -----------------------------------------------------------------------------------------
    def session_info(self) -> dict | None:
        """{"session", "sample_rate", "fps", "width", "height", "video_format", "motion_channels", "model",
        "epoch"} while the daemon is live (`motion_channels`: the names of a motion packet's values, in order;
        empty for a model without motion)."""
        return self._info

    def stats(self) -> dict:
        return {**self._counts, "sdk_reconnects": self._client.reconnects if self._client else 0}

    async def chat(self, text: str) -> dict:
        handle = self._live()
        return {"utt": await self._guard(handle.chat(text)), "session": handle.id}

    async def speak(self, text: str) -> dict:
        handle = self._live()
        return {"utt": await self._guard(handle.speak(text)), "session": handle.id}

    async def interrupt(self) -> dict:
        handle = self._live()
        await self._guard(handle.interrupt())
        return {"session": handle.id}

    def set_endpoint(self, endpoint: str) -> None:
        """The daemon's control endpoint, once known (a daemon the bridge starts itself: after its ready line)."""
        self.endpoint = endpoint
        self._endpoint_known.set()

    async def run(self) -> None:
        """Connect, serve the session, reconnect: forever (cancel to stop)."""
        failures = 0
        await self._endpoint_known.wait()
        while True:
            try:
                await self._serve_once()
            except asyncio.CancelledError:
                raise
            except EndpointMoved:
                failures = 0
                continue
            except (ProtocolError, ClientClosedError, OSError) as exc:
                message = str(exc) or type(exc).__name__
                if message != self.last_error:
                    self.log(f"daemon {self.endpoint}: {message}; retrying")
                self.last_error = message
            finally:
                await self._teardown()
            await asyncio.sleep(BACKOFF[min(failures, len(BACKOFF) - 1)])
            failures += 1

    async def close(self) -> None:
        await self._teardown()

    # ---- internals --------------------------------------------------------------------------------------
    def _live(self) -> AsyncSessionHandle:
        if self._handle is None or self._info is None:
            raise LinkError(f"not connected to the daemon at {self.endpoint or '(starting)'}"
                            + (f" ({self.last_error})" if self.last_error else ""))
        return self._handle

    async def _guard(self, call: Any) -> Any:
        try:
            return await call
        except (DaemonTimeoutError, ClientClosedError) as exc:
            raise LinkError(f"the daemon at {self.endpoint} did not answer: {exc}") from None

    def _publish_state(self, opened: Opened | None) -> None:
        if opened is None:
            self._info = None
        else:
            self._epoch += 1
            self._info = {"session": opened.session, "sample_rate": opened.sample_rate, "fps": opened.fps,
                          "width": opened.width, "height": opened.height, "video_format": opened.video_format,
                          "motion_channels": list(opened.motion_channels), "model": opened.model,
                          "epoch": self._epoch}
            self._last_seq = None
            self._last_media = time.monotonic()
        self.on_state()

    def _reconnected(self, client: AsyncClient) -> None:
        """SDK callback after it reconnected and re-opened the session (a restarted daemon)."""
        if self._handle is not None:
            self._counts["connects"] += 1
            self.log(f"reconnected: session {self._handle.id}")
            self._publish_state(self._handle.info)

    async def _serve_once(self) -> None:
        self._client = AsyncClient(self.endpoint, client_name="xstreamer-obs", timeout=TIMEOUT_S,
                                   on_reconnect=self._reconnected, keys=self.keys)
        await self._client.connect()
        if self.attach:
            self._handle = await self._client.resume_session(self.attach, self.attach_secret)
        else:
            self._handle = await self._client.open_session(persona=self.persona, portrait=self.portrait,
                                                             face_points=self.face_points)
        self._counts["connects"] += 1
        self.last_error = None
        self.log(f"session {self._handle.id} on {self.endpoint} (media {self._client.media_endpoint})")
        self._publish_state(self._handle.info)
        await self._pump(self._handle)

    async def _pump(self, handle: AsyncSessionHandle) -> None:
        connected_to = self.endpoint
        while True:
            if self.endpoint != connected_to:
                self.log(f"the daemon moved to {self.endpoint}")
                raise EndpointMoved(self.endpoint)
            item = await handle.recv(timeout=0.25)
            now = time.monotonic()
            if item is None:
                if self._info is not None and now - self._last_media > STALL_S:
                    self.last_error = f"no media from the daemon for {STALL_S:g} s"
                    self.log(f"daemon {self.endpoint}: {self.last_error}; waiting for it")
                    self._publish_state(None)
                continue
            pkt, payload = item
            self._last_media = now
            if self._info is None:       # media again after a stall, on the same session
                self.last_error = None
                self._publish_state(handle.info)
            self._counts["media_packets"] += 1
            if self._last_seq is not None and pkt.seq > self._last_seq + 1:
                self._counts["seq_gaps"] += 1
            self._last_seq = pkt.seq
            self.on_packet(pack_header(pkt), payload, time.time() * 1000.0)

    async def _teardown(self) -> None:
        client, handle, self._client, self._handle = self._client, self._handle, None, None
        if self._info is not None:
            self._publish_state(None)
        if self.attach and handle is not None and not handle.closed:
            # An attached handle is not the client's to close (that would close the owner's session), but its
            # SUB socket must go before the client terminates its context. The SDK has no attach API yet.
            handle.closed = True
            if handle._sub is not None:
                handle._sub.close(linger=0)
                handle._sub = None
        if client is not None:
            try:
                await asyncio.wait_for(client.close(), 3.0)
            except Exception:  # noqa: BLE001 - closing a client of a dead daemon may time out
                pass
