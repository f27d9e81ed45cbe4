"""The motion codec: what the Actor's "latents" are when it works in motion space.

A latent frame is one motion frame, [C = NUM_CHANNELS, 1, 1] (`channels.to_latent` scaling), so the Actor's video
tokens are one per 40 ms frame. The identity reference is the portrait's normalised landmarks [1, 1, 136]. Frames
are drawn by the portrait renderer, at the portrait's own size (256 or 512) and with its alpha.
"""

from __future__ import annotations

import numpy as np
import torch

from engine_core.motion.channels import NUM_CHANNELS, from_latent, to_latent
from engine_core.motion.render import PortraitRenderer
from sdk.portrait import Portrait
from sdk.portrait.template import normalised


class MotionCodec:
    """Stateless: `frames_of(portrait)` gives the per-session drawing side. `pool`: a RenderPool
    (engine_core/motion/render_pool.py) whose worker processes draw the sessions' frames (set by `Engine.load` for a
    daemon on the CPU); None: each session draws in its own process."""

    kind = "motion"
    latent_channels = NUM_CHANNELS
    temporal_factor = 1
    pool = None

    def identity(self, portrait: Portrait) -> torch.Tensor:
        """float32 [1, 1, 136]: the face's landmarks without place, size and roll (the Actor's identity tokens)."""
        return torch.from_numpy(normalised(portrait.landmarks).reshape(1, 1, -1).copy())

    @staticmethod
    def encode_motion(frames: np.ndarray) -> torch.Tensor:
        """Motion frames [T, NUM_CHANNELS] -> latents [T, NUM_CHANNELS, 1, 1] (training targets)."""
        return torch.from_numpy(to_latent(frames)).reshape(len(frames), NUM_CHANNELS, 1, 1)

    @staticmethod
    def decode_motion(latents: torch.Tensor) -> np.ndarray:
        """Latents [Fl, NUM_CHANNELS, 1, 1] -> motion frames float32 [Fl, NUM_CHANNELS] (clamped)."""
        return from_latent(latents.detach().float().cpu().numpy().reshape(latents.shape[0], NUM_CHANNELS))


class MotionFrames:
    """The drawing side of one session: its identity tensor and `make(latents)` -> (frames, motion)."""

    def __init__(self, codec: MotionCodec, portrait: Portrait, chunk_frames: int = 64) -> None:
        self.codec = codec
        self.portrait = portrait
        self.renderer = PortraitRenderer(portrait.image, portrait.landmarks)
        self.remote = (codec.pool.renderer(portrait.image, portrait.landmarks, chunk_frames)
                       if codec.pool is not None else None)       # the same renderer, in a worker process
        self.identity = codec.identity(portrait)

    def make(self, latents: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Latents [Fl, C, 1, 1] -> (uint8 frames [Fl, S, S, 3|4], float32 motion [Fl, NUM_CHANNELS])."""
        motion = self.codec.decode_motion(latents)
        if self.remote is not None:
            return self.remote.render_many(motion), motion
        frames = np.stack([self.renderer.render(m) for m in motion])
        return frames, motion

    def close(self) -> None:
        """Free the worker's renderer (a session that ends)."""
        if self.remote is not None:
            self.remote.close()
