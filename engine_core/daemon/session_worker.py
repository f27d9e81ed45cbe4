"""One thread per daemon session: opens the engine session, then runs the block loop (`next_chunk`) with
real-time pacing and a bounded lead, turning each AVChunk into timed media packets in the session's Outbox.

Generation runs ahead of publication by at most `lead_s` seconds of media, then waits; an interrupt flushes
the queued (not yet published) packets so the barge-in takes effect within one chunk. A reply out of silence
does not wait for the lead to drain: the worker wakes whenever the Thinker queues speech (`Session.on_speech`)
and runs the block loop as soon as a reply's first chunk's speech is there (`Session.reply_ready`); that chunk
takes the queued idle media's place (`Outbox.skip_idle`), so the lead never delays an answer. (Until v12b it
looked every 10 ms instead.)
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import Any, Callable

import numpy as np

from sdk.protocol import topic_for
from sdk.protocol.constants import SAMPLES_PER_FRAME
from sdk.protocol.messages import (AudioPacket, EventPacket, MotionPacket, Opened, StatePacket, TextPacket,
                                   VideoPacket)

from .media import ChunkPackets, MediaPublisher, Outbox, describe, new_media_key
from .memory import release_memory

log = logging.getLogger("xstreamer.daemon.session")

LATE_S = 0.08       # queued media that ran out this long before the next chunk: the session fell behind real time

# Order of packets sharing one pts: barge-in/start events, text, audio, video, then end events.
_RANK = {"moved": 0, "interrupted": 0, "utterance_start": 1, "text": 2, "audio": 3, "video": 4, "motion": 5,
         "utterance_end": 6}


def chunk_packets(chunk: Any, session: str, utt_offset: int = 0) -> tuple[ChunkPackets, int]:
    """AVChunk -> ([(offset samples, packet, payload)], n_samples), in publication order (see ChunkPackets).

    Every 40 ms frame gives one audio packet (882 PCM16 samples), one video packet (RGB24, or RGBA32 for a
    transparent portrait) and, for a motion-space model, one motion packet (float32 channels), all with the same
    pts; texts and events are placed at their own pts (clipped into the chunk). The engine numbers a session's
    utterances from 1; on the wire they start at the session's `first_utt` (utt_offset + 1).
    """
    n = chunk.num_frames
    n_samples = n * SAMPLES_PER_FRAME
    audio = np.ascontiguousarray(chunk.audio, dtype="<i2")        # [n * 882] int16
    frames = np.ascontiguousarray(chunk.frames, dtype=np.uint8)   # [n, S, S, 3|4]
    motion = getattr(chunk, "motion", None)
    motion = None if motion is None else np.ascontiguousarray(motion, dtype="<f4")   # [n, K]
    fmt = "rgba32" if frames.shape[3] == 4 else "rgb24"
    if audio.shape != (n_samples,):
        raise ValueError(f"chunk audio has shape {audio.shape}, expected ({n_samples},)")
    h, w = int(frames.shape[1]), int(frames.shape[2])
    utt = wire_utt(chunk.utt, utt_offset)
    keyed: list[tuple[int, int, int, Any, bytes | None]] = []    # (offset, rank, arrival, packet, payload)

    def add(off: int, rank: str, packet: Any, payload: bytes | None = None) -> None:
        keyed.append((off, _RANK[rank], len(keyed), packet, payload))

    last = max(0, n_samples - SAMPLES_PER_FRAME)
    for i in range(n):
        off = i * SAMPLES_PER_FRAME
        add(off, "audio", AudioPacket(session=session, utt=utt, seq=0, pts=off),
            audio[off: off + SAMPLES_PER_FRAME].tobytes())
        add(off, "video", VideoPacket(session=session, utt=utt, seq=0, pts=off, width=w, height=h, format=fmt),
            frames[i].tobytes())
        if motion is not None:
            add(off, "motion", MotionPacket(session=session, utt=utt, seq=0, pts=off, channels=int(motion.shape[1])),
                motion[i].tobytes())
    for t in chunk.texts:
        off = min(max(0, int(t.pts) - int(chunk.pts)), last)
        role = t.role if t.role in ("assistant", "user") else "assistant"
        add(off, "text", TextPacket(session=session, utt=utt, seq=0, pts=off, text=str(t.text), role=role,
                                    final=bool(t.final)))
    for e in chunk.events:
        if e.event not in _RANK:
            continue
        off = min(max(0, int(e.pts) - int(chunk.pts)), last)
        add(off, e.event, EventPacket(session=session, utt=wire_utt(e.utt, utt_offset), seq=0, pts=off,
                                      event=e.event, reason=str(e.reason or "")))
    keyed.sort(key=lambda k: k[:3])
    return [(off, packet, payload) for off, _, _, packet, payload in keyed], n_samples


def wire_utt(engine_utt: int, utt_offset: int) -> int:
    """The utterance id on the wire of an engine utterance id (0, idle, stays 0)."""
    return int(engine_utt) + utt_offset if engine_utt else 0


def _closed_opener() -> Any:
    raise RuntimeError("session closed")


class SessionWorker(threading.Thread):
    """Opens an engine session and feeds its chunks into an Outbox until closed.

    `reply(ok: bool, payload)` is called exactly once, from this thread, when the open succeeded
    (payload = the engine session) or failed (payload = the exception).
    """

    def __init__(self, sid: str, opener: Callable[[], Any], publisher: MediaPublisher, *, lead_s: float,
                 model_name: str, reply: Callable[[bool, Any], None], on_exit: Callable[[str], None],
                 subscribe_wait_s: float = 1.5, first_utt: int = 1, holder: bytes = b"",
                 on_late: Callable[[str], None] | None = None):
        super().__init__(name=f"xs-session-{sid}", daemon=True)
        self.sid = sid
        self.holders = {holder}                  # ROUTER routing ids of the connections holding it (control)
        self.secret = secrets.token_urlsafe(24)  # lets a new connection of that client `resume` it
        self.utt_offset = first_utt - 1
        self.pending: set[int] = set()           # wire utt ids acknowledged and not yet ended
        self.turn_audio_s = 0.0                  # user audio of the turn in progress (control thread)
        self.opened: Opened | None = None        # the `opened` reply (a `resume` gets it again)
        self.opener = opener
        self.publisher = publisher
        self.lead_s = lead_s
        self.model_name = model_name
        self.reply = reply
        self.on_exit = on_exit
        self.subscribe_wait_s = subscribe_wait_s
        self.on_late = on_late                   # told when this session's queued media ran out (fell behind)
        self.session: Any = None
        self.outbox = Outbox(sid, topic_for(new_media_key()))
        self.outbox.state_fn = self._state
        self._closing = threading.Event()
        self._wake = threading.Event()
        self._pending_lock = threading.Lock()
        self.publishing = threading.Event()      # set once the outbox is live (its topic can be subscribed)
        self.close_reason = "client"
        self.gen_fps = 0.0
        self.chunks = 0

    @property
    def topic(self) -> str:
        """The session's media topic (ASCII): only its owner learns it, from `opened`."""
        return self.outbox.topic.decode("ascii")

    # ---- called from the control thread
    def accepted(self, engine_utt: int | None) -> int:
        """The wire id of a turn the engine accepted (chat/speak/final audio); counted until it ends."""
        utt = wire_utt(engine_utt or 0, self.utt_offset)
        if utt:
            with self._pending_lock:
                self.pending.add(utt)
        return utt

    def queued(self) -> int:
        with self._pending_lock:
            return len(self.pending)

    def interrupt(self) -> None:
        """Barge-in: stop the reply in the engine and drop every queued packet (and every queued turn)."""
        if self.session is not None:
            self.session.interrupt()
        self.outbox.flush()
        with self._pending_lock:
            self.pending.clear()
        self._wake.set()

    def close(self, reason: str = "client") -> None:
        """Ask the worker to stop; it publishes `session_closed` and a final `closed` state, then exits."""
        self.close_reason = reason
        self._closing.set()
        self._wake.set()

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    # ---- the worker thread
    def _state(self) -> StatePacket:
        box = self.outbox
        state = "closed" if self._closing.is_set() else str(getattr(self.session, "state", "idle"))
        if state not in ("idle", "thinking", "speaking", "closed"):
            state = "idle"
        lead = max(0.0, box.ahead_s(time.monotonic())) * 1000.0
        return StatePacket(session=self.sid, utt=box.last_utt, seq=0, pts=box.last_pts, state=state,
                           fps=round(self.gen_fps, 2), lead_ms=round(lead, 1), model=self.model_name)

    def run(self) -> None:
        try:
            self.session = self.opener()
        except BaseException as exc:  # reported to the client as a typed error
            self.reply(False, exc)
            self.on_exit(self.sid)
            return
        finally:
            self.opener = _closed_opener   # (it holds the portrait's bytes)
        self.publisher.add(self.outbox)
        self.publishing.set()
        self.session.on_speech(self._wake.set)           # a reply's speech wakes the worker out of its lead wait
        self.reply(True, self.session)
        try:
            self.outbox.subscribed.wait(self.subscribe_wait_s)   # don't stream into the void at start
            self._loop()
        except Exception as exc:
            log.exception("session %s failed", self.sid)
            self.close_reason = f"internal error: {type(exc).__name__}: {exc}"
        finally:
            self._finish()

    def _loop(self) -> None:
        box = self.outbox
        t_last = time.monotonic()
        while not self._closing.is_set():
            # Bounded lead: wait while the queued media runs more than lead_s ahead of real time, unless a reply
            # out of silence can start (it then takes the queued idle media's place: not a lead's wait later).
            self._wake.clear()                          # (before the checks: a wake-up after them is not lost)
            ahead = box.ahead_s(time.monotonic())
            if ahead > self.lead_s and not self.session.reply_ready():
                self._wake.wait(ahead - self.lead_s)
                continue
            chunk = self.session.next_chunk()
            if self._closing.is_set():
                break
            if self.chunks >= 2 and box.ahead_s(time.monotonic()) < -LATE_S and self.on_late is not None:
                self.on_late(self.sid)                  # its media ran out before this chunk: behind real time
            packets, n_samples = chunk_packets(chunk, self.sid, self.utt_offset)
            if any(e.event == "utterance_start" for e in chunk.events):
                box.skip_idle()
            ended = {wire_utt(e.utt, self.utt_offset) for e in chunk.events
                     if e.event in ("utterance_end", "interrupted")}
            if ended:
                with self._pending_lock:
                    self.pending -= ended
            box.put_chunk(packets, n_samples)
            now = time.monotonic()
            dt = max(1e-6, now - t_last)
            t_last = now
            fps = chunk.num_frames / dt
            self.gen_fps = fps if self.chunks == 0 else 0.8 * self.gen_fps + 0.2 * fps
            self.chunks += 1

    def _finish(self) -> None:
        box = self.outbox
        box.flush()
        utt = box.last_utt
        box.put_now(EventPacket(session=self.sid, utt=utt, seq=0, pts=0, event="session_closed",
                                reason=self.close_reason))
        box.put_now(StatePacket(session=self.sid, utt=utt, seq=0, pts=0, state="closed", model=self.model_name))
        box.finished = True
        try:
            self.session.close()
        except Exception:
            log.exception("closing engine session %s", self.sid)
        self.session = None            # the engine session's memory is not held by this record ...
        release_memory()               # ... and what it freed goes back to the OS (daemon/memory.py)
        log.info("closed (%s): %s", self.close_reason, describe(box))
        self.on_exit(self.sid)
