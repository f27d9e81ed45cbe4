"""The motion channels (names owned by `sdk.protocol.MOTION_CHANNELS`) and their latent scaling.

A motion frame is a float32 vector over the channels: blendshape weights in [0, 1], head yaw/pitch/roll in
degrees, head x/y shift as a fraction of the face's width. The Actor works on `to_latent(frame)`: weights mapped
to [-1, 1], angles divided by `ANGLE_SCALE` and shifts by `SHIFT_SCALE`, so every channel has about unit range.
"""

from __future__ import annotations

import numpy as np

from sdk.protocol.constants import MOTION_BLENDSHAPES, MOTION_CHANNELS, MOTION_HEAD

NUM_CHANNELS = len(MOTION_CHANNELS)
NUM_BLENDSHAPES = len(MOTION_BLENDSHAPES)
INDEX = {name: i for i, name in enumerate(MOTION_CHANNELS)}
ANGLE_SCALE = 10.0        # degrees per latent unit
SHIFT_SCALE = 0.1         # face widths per latent unit
ANGLE_LIMIT = 25.0        # |angle| a frame may reach (the renderer moves a 2D picture: beyond this it breaks)
SHIFT_LIMIT = 0.3

WEIGHT_SCALE, WEIGHT_OFFSET = 2.0, -1.0      # a blendshape weight w in [0, 1] is the latent 2 w - 1

_SCALE = np.array([WEIGHT_SCALE] * NUM_BLENDSHAPES + [1 / ANGLE_SCALE] * 3 + [1 / SHIFT_SCALE] * 2, np.float32)
_OFFSET = np.array([WEIGHT_OFFSET] * NUM_BLENDSHAPES + [0.0] * len(MOTION_HEAD), np.float32)
_LOW = np.array([0.0] * NUM_BLENDSHAPES + [-ANGLE_LIMIT] * 3 + [-SHIFT_LIMIT] * 2, np.float32)
_HIGH = np.array([1.0] * NUM_BLENDSHAPES + [ANGLE_LIMIT] * 3 + [SHIFT_LIMIT] * 2, np.float32)


def neutral(frames: int = 1) -> np.ndarray:
    """float32 [frames, NUM_CHANNELS] of the rest pose (every weight 0, head straight)."""
    return np.zeros((frames, NUM_CHANNELS), np.float32)


def clamp(frames: np.ndarray) -> np.ndarray:
    """Channels clipped to what they may hold (weights [0, 1], angles and shifts to their limits)."""
    return np.clip(frames, _LOW, _HIGH).astype(np.float32)


def to_latent(frames: np.ndarray) -> np.ndarray:
    """Channels [..., NUM_CHANNELS] -> the Actor's latents (about unit range)."""
    return (np.asarray(frames, np.float32) * _SCALE + _OFFSET).astype(np.float32)


def from_latent(latents: np.ndarray) -> np.ndarray:
    """The Actor's latents [..., NUM_CHANNELS] -> channels, clamped."""
    return clamp((np.asarray(latents, np.float32) - _OFFSET) / _SCALE)
