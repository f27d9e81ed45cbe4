"""Which video frame to show now: audio is the master clock (show the newest frame whose pts <= clock).

While no audio plays (idle animation, a muted stream) frames free-run at the video rate in arrival order.
Pure Python (no Qt) so the policy is tested on its own.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sdk.protocol import FPS, SAMPLE_RATE


@dataclass(frozen=True)
class Frame:
    """One received video frame: `pts` in audio samples, RGB24 `data` of `width` x `height`."""

    pts: int
    data: bytes
    width: int
    height: int


class FrameScheduler:
    """Holds received frames until they are due. `max_frames` bounds memory (oldest dropped)."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, fps: int = FPS, max_frames: int = 250) -> None:
        self.sample_rate = sample_rate
        self.frame_s = 1.0 / fps
        self.frames: deque[Frame] = deque(maxlen=max_frames)
        self._last_free = 0.0
        self.dropped = 0

    def push(self, frame: Frame) -> None:
        self.frames.append(frame)

    def clear(self) -> None:
        self.frames.clear()

    def due(self, clock: int | None, now: float, audio_active: bool) -> Frame | None:
        """The frame to paint now, or None to keep the current one.

        clock: the audio clock in samples (None before any audio); now: monotonic seconds;
        audio_active: audio is playing (frames then wait for the clock)."""
        if not self.frames:
            return None
        if audio_active and clock is not None:
            shown = None
            while self.frames and self.frames[0].pts <= clock:
                if shown is not None:
                    self.dropped += 1
                shown = self.frames.popleft()
            return shown
        if now - self._last_free >= self.frame_s:
            self._last_free = now
            return self.frames.popleft()
        return None

    def offset_ms(self, frame: Frame, clock: int | None) -> float | None:
        """A/V offset of `frame` against the audio clock in ms (positive: video ahead of audio)."""
        if clock is None:
            return None
        return (frame.pts - clock) * 1000.0 / self.sample_rate
