"""What the engine yields: one chunk of synchronized audio, video and text on the audio-sample clock."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TextItem:
    pts: int            # audio-sample clock of the first sample the text belongs to
    text: str
    role: str = "assistant"   # "assistant" (reply text) or "user" (transcript of the user's voice)
    final: bool = False


@dataclass
class EventItem:
    pts: int
    event: str          # "utterance_start" | "utterance_end" | "interrupted"
    utt: int
    reason: str = ""


@dataclass
class AVChunk:
    """`frames.shape[0]` video frames and exactly `frames.shape[0] * 882` audio samples.

    pts:     audio-sample clock (22,050 Hz) of the chunk's first sample / first frame
    utt:     utterance id of the chunk (0 = idle)
    audio:   int16 [n_frames * 882] mono PCM at 22,050 Hz
    frames:  uint8 [n_frames, S, S, 3] RGB or [n_frames, S, S, 4] RGBA (a transparent portrait); S = 256 or 512
    motion:  float32 [n_frames, K] the facial-animation channels of each frame (sdk.protocol.MOTION_CHANNELS), for
             a motion-space model; None otherwise
    """

    pts: int
    utt: int
    audio: np.ndarray
    frames: np.ndarray
    texts: list[TextItem] = field(default_factory=list)
    events: list[EventItem] = field(default_factory=list)
    motion: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])
