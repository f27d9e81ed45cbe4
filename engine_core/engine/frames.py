"""A session's picture side: the identity reference its Actor reads and how a clean chunk becomes frames.

    maker = frame_maker(engine.vae, portrait)      # sdk.portrait.Portrait, at the session's frame size
    maker.identity                                  # the Actor's identity input (prefilled into the cache's sink)
    frames, motion = maker.make(latents)            # uint8 [Fl, S, S, 3|4]; motion [Fl, K] or None

Pixel codecs (SmallVAE, LTX-Video) decode latents to 256x256 RGB (scaled up for a 512 session); the motion codec
renders the portrait (engine_core/motion) and also hands back the motion channels for the wire.
"""

from __future__ import annotations

from typing import Any, Protocol

import cv2
import numpy as np
import torch

from sdk.portrait import Portrait


class FrameMaker(Protocol):
    identity: torch.Tensor

    def make(self, latents: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]: ...


class PixelFrames:
    """A pixel codec's frames: the portrait's 256x256 RGB encoded as identity, latents decoded by the codec."""

    def __init__(self, vae: Any, portrait: Portrait) -> None:
        self.vae = vae
        self.size = portrait.size
        rgb = portrait.rgb if portrait.size == 256 else cv2.resize(portrait.rgb, (256, 256), interpolation=cv2.INTER_AREA)
        with torch.inference_mode():
            self.identity = vae.encode(np.array(rgb)[None])[:1]

    def make(self, latents: torch.Tensor) -> tuple[np.ndarray, None]:
        frames = self.vae.decode_frames(latents)
        if self.size != frames.shape[1]:
            frames = np.stack([cv2.resize(f, (self.size, self.size), interpolation=cv2.INTER_LANCZOS4) for f in frames])
        return frames, None


def frame_maker(vae: Any, portrait: Portrait, chunk_frames: int = 64) -> FrameMaker:
    """The FrameMaker of codec `vae` for `portrait` (`chunk_frames`: the most frames one `make` draws)."""
    if getattr(vae, "kind", None) == "motion":
        from engine_core.motion.codec import MotionFrames

        return MotionFrames(vae, portrait, chunk_frames)
    return PixelFrames(vae, portrait)
