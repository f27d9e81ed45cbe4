"""The media side of the daemon: per-session timed outboxes and the one thread that owns the XPUB socket.

Session workers put packets into their session's `Outbox` with a wall-clock due time (real-time pacing on the
session's audio clock); the `MediaPublisher` thread sends every packet when it falls due, assigns the
per-session `seq`, answers subscriptions with the session's latest `state` (a last-value cache for late
joiners), publishes a `state` packet about once a second per session, and never blocks: a slow or vanished
subscriber only fills its own ZeroMQ pipe (SNDHWM), where PUB drops whole messages for it alone.

Media is private to its session's holders: the XPUB runs in manual mode (ZMQ_XPUB_MANUAL), so a subscription
reaches libzmq only when the publisher accepts it, and it accepts nothing but the exact topic of a live
session. That topic is "xs2/" + an unguessable media key (128 random bits) handed out only in the owner's
`opened`: subscribing to "" or "xs2/" gets nothing, and no packet's topic names a session id.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import zmq

from sdk.protocol import encode_media, topic_for
from sdk.protocol.messages import TOPIC_PREFIX
from sdk.protocol.constants import SAMPLE_RATE
from sdk.protocol.messages import MediaPacket, StatePacket

log = logging.getLogger("xstreamer.daemon.media")


@dataclass
class OutItem:
    """One packet waiting to be published: the protocol model (its `seq` is given when it is sent) and its
    binary payload."""

    due: float              # time.monotonic() at which to publish
    packet: MediaPacket
    payload: bytes | None = None

    @property
    def pts(self) -> int:
        return self.packet.pts

    @property
    def utt(self) -> int:
        return self.packet.utt

    @property
    def kind(self) -> str:
        return self.packet.type


# One chunk's packets for `Outbox.put_chunk`: (offset in samples from the chunk's first, packet, payload),
# in publication order; the packet's pts is set from the offset when the chunk is queued.
ChunkPackets = list[tuple[int, MediaPacket, "bytes | None"]]


class Outbox:
    """The timed packet queue of one session (filled by its worker, drained by the publisher).

    The session clock maps pts to wall time: due(pts) = t0 + (pts - pts0) / sample_rate. It starts when
    the first chunk is queued and is re-based when generation falls behind real time, so pts stays
    continuous on the wire while packets never pile up late.
    """

    def __init__(self, session: str, topic: bytes | None = None, sample_rate: int = SAMPLE_RATE):
        self.session = session
        self.topic = topic if topic is not None else topic_for(new_media_key())
        self.sample_rate = sample_rate
        self.lock = threading.Lock()
        self.items: deque[OutItem] = deque()
        self.seq = 0                 # next seq (publisher only)
        self.next_pts = 0            # pts of the next sample to queue
        self.t0: float | None = None
        self.pts0 = 0
        self.last_pts = 0            # pts of the latest published packet
        self.last_utt = 0
        self.subscribed = threading.Event()
        self.finished = False        # no more items will come: remove once drained
        self.flushed = 0             # packets dropped by interrupt/close flushes
        self.published = 0
        self.send_errors = 0
        self.last_state = 0.0
        self.state_fn: Callable[[], StatePacket] = lambda: StatePacket(session=session, utt=0, seq=0, pts=0,
                                                                        state="idle")

    def due(self, pts: int) -> float:
        assert self.t0 is not None
        return self.t0 + (pts - self.pts0) / self.sample_rate

    def ahead_s(self, now: float) -> float:
        """How far (seconds) the queued media runs ahead of real time (0 before the clock starts)."""
        with self.lock:
            return 0.0 if self.t0 is None else self.due(self.next_pts) - now

    def put_chunk(self, packets: ChunkPackets, n_samples: int, late_slack_s: float = 0.08) -> None:
        """Queue one chunk's packets (sorted; see ChunkPackets): their pts are set here, on the session clock.
        """
        now = time.monotonic()
        with self.lock:
            if self.t0 is None or self.due(self.next_pts) < now - late_slack_s:
                self.t0, self.pts0 = now, self.next_pts       # start, or re-base after falling behind
            base = self.next_pts
            for off, packet, payload in packets:
                pts = base + off
                self.items.append(OutItem(self.due(pts), packet.model_copy(update={"pts": pts}), payload))
            self.next_pts = base + n_samples

    def put_now(self, packet: MediaPacket) -> None:
        """Queue a payload-less packet (event/state) for immediate publication at the current pts."""
        with self.lock:
            pts = self.next_pts if self.t0 is not None else 0
            self.items.append(OutItem(0.0, packet.model_copy(update={"pts": pts})))

    def flush(self) -> int:
        """Drop every queued packet (interrupt/close); the pts of the next chunk continues from the last sent.
        """
        with self.lock:
            return self._flush_locked()

    def skip_idle(self) -> int:
        """Drop the queued packets if every one is idle media (utt 0 audio/video), as `flush` does: a reply
        that starts out of silence then goes out now, not behind up to a lead of idle frames and silence.
        Anything else queued (a reply's media, text, events) keeps it all. Returns the packets dropped."""
        with self.lock:
            if any(it.utt or it.kind not in ("audio", "video", "motion") for it in self.items):
                return 0
            return self._flush_locked()

    def _flush_locked(self) -> int:
        n = len(self.items)
        if n:
            first = self.items[0]
            self.next_pts = max(first.pts, self.last_pts)
            if self.t0 is not None and first.due > 0:
                self.t0, self.pts0 = first.due, self.next_pts
            self.items.clear()
        self.flushed += n
        return n

    def pop_due(self, now: float) -> tuple[list[OutItem], float | None]:
        """Items due by `now` (in order) and the due time of the next one."""
        out: list[OutItem] = []
        with self.lock:
            while self.items and self.items[0].due <= now:
                out.append(self.items.popleft())
            return out, (self.items[0].due if self.items else None)


class MediaPublisher(threading.Thread):
    """Owns the XPUB socket; publishes every session's packets when due. Thread-safe `add`/`remove`."""

    def __init__(self, ctx: zmq.Context, endpoint: str, sndhwm: int = 250, state_interval_s: float = 1.0,
                 secure: Callable[[zmq.Socket], None] | None = None):
        super().__init__(name="xs-media", daemon=True)
        self.ctx = ctx
        self._secure = secure           # makes the socket a CURVE server (before bind), with keys
        self.state_interval_s = state_interval_s
        self._outboxes: dict[str, Outbox] = {}
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._ready = threading.Event()
        self._bind_error: BaseException | None = None
        self._endpoint_req = endpoint
        self._sndhwm = sndhwm
        self.endpoint = ""
        self.refused_subscriptions = 0   # subscriptions to anything but a live session's exact topic

    # ---- called from other threads
    def add(self, box: Outbox) -> None:
        box.last_state = time.monotonic()   # the first state goes to the first subscriber (seq 0)
        with self._lock:
            self._outboxes[box.topic] = box

    def remove(self, topic: bytes) -> None:
        with self._lock:
            self._outboxes.pop(topic, None)

    def start_and_wait(self, timeout: float = 10.0) -> str:
        """Start the thread, wait until the socket is bound; returns the bound endpoint."""
        self.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("media publisher did not start")
        if self._bind_error is not None:
            raise self._bind_error
        return self.endpoint

    def stop(self) -> None:
        self._halt.set()

    # ---- the publisher thread
    def run(self) -> None:
        try:
            sock = self.ctx.socket(zmq.XPUB)
            sock.setsockopt(zmq.SNDHWM, self._sndhwm)
            sock.setsockopt(zmq.XPUB_MANUAL, 1)        # we decide which subscriptions libzmq honours
            sock.setsockopt(zmq.XPUB_VERBOSER, 1)      # every (un)subscription reaches us, duplicates too
            sock.setsockopt(zmq.MAXMSGSIZE, 4096)      # subscriptions (and CURVE handshakes) are short
            sock.setsockopt(zmq.LINGER, 0)
            if self._secure is not None:
                self._secure(sock)
            sock.bind(self._endpoint_req)
            self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        except BaseException as exc:  # reported to start_and_wait
            self._bind_error = exc
            self._ready.set()
            return
        self._ready.set()
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        try:
            while not self._halt.is_set():
                next_due = self._publish_due(sock)
                wait_ms = 10.0 if next_due is None else max(0.0, min(10.0, (next_due - time.monotonic()) * 1000))
                if poller.poll(wait_ms):
                    self._read_subscriptions(sock)
        finally:
            sock.close(linger=0)

    def _boxes(self) -> list[Outbox]:
        with self._lock:
            return list(self._outboxes.values())

    def _publish_due(self, sock: zmq.Socket) -> float | None:
        now = time.monotonic()
        soonest: float | None = None
        for box in self._boxes():
            items, nxt = box.pop_due(now)
            for item in items:
                self._send(sock, box, item)
            if nxt is not None:
                soonest = nxt if soonest is None else min(soonest, nxt)
            if now - box.last_state >= self.state_interval_s and not box.finished:
                self._send_state(sock, box)
            if box.finished and nxt is None:
                self.remove(box.topic)
        return soonest

    def _send_state(self, sock: zmq.Socket, box: Outbox) -> None:
        box.last_state = time.monotonic()
        try:
            state = box.state_fn()
        except Exception:  # a state snapshot must never kill the publisher
            log.exception("state of session %s", box.session)
            state = StatePacket(session=box.session, utt=0, seq=0, pts=0, state="idle")
        self._send(sock, box, OutItem(0.0, state.model_copy(update={"pts": box.last_pts, "utt": box.last_utt})))

    def _send(self, sock: zmq.Socket, box: Outbox, item: OutItem) -> None:
        try:
            packet = item.packet.model_copy(update={"seq": box.seq})
            frames = encode_media(packet, item.payload, topic=box.topic)
        except Exception:
            log.exception("could not encode a %s packet of session %s", item.kind, box.session)
            return
        try:
            sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            box.send_errors += 1
            return
        except zmq.ZMQError:
            log.exception("publish failed")
            box.send_errors += 1
            return
        box.seq += 1
        box.published += 1
        if item.kind != "state":
            box.last_pts = max(box.last_pts, item.pts)
            box.last_utt = item.utt

    def _read_subscriptions(self, sock: zmq.Socket) -> None:
        """Honour a subscription only to the exact topic of a live session (XPUB_MANUAL: setsockopt right
        after the recv applies to the subscriber that sent it); unsubscriptions are passed on."""
        while True:
            try:
                msg = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if not msg or msg[0] not in (0, 1):
                continue
            topic = bytes(msg[1:])
            if msg[0] == 0:
                if topic.startswith(TOPIC_PREFIX):
                    sock.setsockopt(zmq.UNSUBSCRIBE, topic)
                continue
            with self._lock:
                box = self._outboxes.get(topic)
            if box is None or box.finished:
                self.refused_subscriptions += 1
                continue
            sock.setsockopt(zmq.SUBSCRIBE, topic)
            box.subscribed.set()
            self._send_state(sock, box)   # last-value cache for a late joiner


def new_media_key() -> str:
    """An unguessable media key (128 random bits, hex): a session's topic is "xs2/" + key."""
    return secrets.token_hex(16)


def describe(box: Any) -> str:
    """One log line of a session's publishing counters."""
    return (f"session {box.session}: published={box.published} flushed={box.flushed} "
            f"send_errors={box.send_errors}")
