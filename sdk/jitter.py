"""A jitter buffer for one session's media with audio as the master clock.

    jb = JitterBuffer()
    jb.push(pkt, payload)                 # every packet from SessionHandle.packets()
    pcm = jb.pull_audio(441)              # int16 [441]: the audio device's callback (silence when starved)
    frame = jb.video_for_clock()          # (pts, rgb24 bytes) of the newest frame with pts <= audio clock
    jb.stats()                            # underruns, dropped frames, seq gaps, av offset, buffered ms

PUB delivers a session's packets in order, so there is no reordering: a `seq` gap means packets were
dropped (a slow subscriber) and is counted; a lost audio stretch is played as silence so that video stays
in sync. A `seq` that goes backwards means the session restarted (daemon restart / reconnect): the buffer
resets. Thread-safe (push from the network thread, pull from the audio thread).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from sdk.protocol.messages import SAMPLE_RATE


@dataclass
class JitterStats:
    """Counters of a JitterBuffer (see `JitterBuffer.stats`)."""

    underruns: int = 0           # pulls that found less audio than asked for (after playback started)
    dropped_frames: int = 0      # video frames skipped because a newer one was already due
    late_frames: int = 0         # video frames that arrived after the audio clock had passed them
    seq_gaps: int = 0            # packets missing according to seq
    resets: int = 0              # stream restarts (seq went backwards)
    av_offset_ms: float = 0.0    # pts of the shown frame minus the audio clock (negative: video behind)
    buffered_ms: float = 0.0     # audio queued ahead of the clock


class JitterBuffer:
    """Audio-master A/V buffer. `prebuffer_ms`: audio to gather before playback (re)starts."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, prebuffer_ms: float = 120.0, max_video: int = 50):
        self.sample_rate = sample_rate
        self.prebuffer = int(sample_rate * prebuffer_ms / 1000)
        self.max_video = max_video
        self._lock = threading.Lock()
        self._reset_state()
        self._stats = JitterStats()
        self.others: deque[tuple[Any, bytes | None]] = deque(maxlen=1000)   # text/event/state packets

    def _reset_state(self) -> None:
        self._audio: deque[tuple[int, np.ndarray]] = deque()   # (pts, int16 samples), contiguous pts order
        self._video: deque[tuple[int, bytes]] = deque()
        self._last_seq: int | None = None
        self.clock: int | None = None      # pts of the next audio sample to play
        self.playing = False
        self._shown: tuple[int, bytes] | None = None

    # ---- input
    def push(self, pkt: Any, payload: bytes | None) -> None:
        """Add a packet (from `SessionHandle.packets()`); text/event/state go to `self.others`."""
        with self._lock:
            if self._last_seq is not None and pkt.seq <= self._last_seq:
                self._reset_state()
                self._stats.resets += 1
            if self._last_seq is not None and pkt.seq > self._last_seq + 1:
                self._stats.seq_gaps += pkt.seq - self._last_seq - 1
            self._last_seq = pkt.seq
            if pkt.type == "audio" and payload is not None:
                if self.clock is not None and pkt.pts + pkt.samples <= self.clock:
                    return   # entirely in the past
                self._audio.append((pkt.pts, np.frombuffer(payload, dtype="<i2")))
            elif pkt.type == "video" and payload is not None:
                if self.clock is not None and self.playing and pkt.pts + self.sample_rate // 25 <= self.clock:
                    self._stats.late_frames += 1
                self._video.append((pkt.pts, payload))
                while len(self._video) > self.max_video:
                    self._video.popleft()
                    self._stats.dropped_frames += 1
            else:
                self.others.append((pkt, payload))

    def pop_others(self) -> list[tuple[Any, bytes | None]]:
        """Take the queued text/event/state packets."""
        with self._lock:
            out = list(self.others)
            self.others.clear()
            return out

    def _buffered(self) -> int:
        if not self._audio:
            return 0
        start = self._audio[0][0] if self.clock is None else max(self.clock, self._audio[0][0])
        end = self._audio[-1][0] + len(self._audio[-1][1])
        return max(0, end - start)

    # ---- output
    def pull_audio(self, n: int) -> np.ndarray:
        """The next `n` samples (int16) at the audio clock; silence while prebuffering, in gaps, or starved."""
        out = np.zeros(n, dtype=np.int16)
        with self._lock:
            if not self.playing:
                if self._buffered() < self.prebuffer:
                    return out
                self.playing = True
                if self.clock is None and self._audio:
                    self.clock = self._audio[0][0]
            assert self.clock is not None
            got = 0
            while got < n and self._audio:
                pts, pcm = self._audio[0]
                if pts + len(pcm) <= self.clock:
                    self._audio.popleft()
                    continue
                if pts > self.clock:            # a gap (dropped packets): play silence until pts
                    skip = min(n - got, pts - self.clock)
                    got += skip
                    self.clock += skip
                    continue
                start = self.clock - pts
                take = min(n - got, len(pcm) - start)
                out[got:got + take] = pcm[start:start + take]
                got += take
                self.clock += take
                if start + take >= len(pcm):
                    self._audio.popleft()
            if got < n:
                self._stats.underruns += 1
                self.clock += n - got           # time goes on; re-gather a prebuffer
                self.playing = False
            return out

    def video_for_clock(self, pts: int | None = None) -> tuple[int, bytes] | None:
        """The newest frame with pts <= `pts` (default: the audio clock, i.e. the last sample pulled); older
        ones are dropped. When no new frame is due the last one is held; None before the first frame."""
        with self._lock:
            clock = (None if self.clock is None else self.clock - 1) if pts is None else pts
            if clock is None:
                return self._shown
            best = None
            while self._video and self._video[0][0] <= clock:
                if best is not None:
                    self._stats.dropped_frames += 1
                best = self._video.popleft()
            if best is not None:
                self._shown = best
            if self._shown is not None:
                self._stats.av_offset_ms = (self._shown[0] - clock) * 1000.0 / self.sample_rate
            return self._shown

    def stats(self) -> JitterStats:
        """A snapshot of the counters."""
        with self._lock:
            s = JitterStats(**vars(self._stats))
            s.buffered_ms = self._buffered() * 1000.0 / self.sample_rate
            return s
