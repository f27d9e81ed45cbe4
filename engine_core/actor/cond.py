"""What conditions the Actor's chunks (`ChunkCond`), and the zero inputs of a pass of a given shape (`blank_pass`:
warm-up and graph capture in actor/model.py and actor/batch.py, benchmarks, tests). Its own module so that the
Actor (model.py) and its batched passes (batch.py) both use it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine_core.config import ModelConfig


@dataclass
class ChunkCond:
    """Conditioning of m chunks starting at chunk k0 (batch B, Thinker width Dth, M = max_hidden_tokens).

    speech:        float [B, m, F, S]        speech features of each frame
    hidden:        float [B, R+m, M, Dth]    Thinker hidden states of chunks k0-R .. k0+m-1 (R = cross_chunks)
    hidden_frames: long  [B, R+m, M]         absolute frame of each hidden token
    hidden_mask:   bool  [B, R+m, M]         which hidden slots hold a token
    tokens:        long  [B, m, T] or None   the token slots' inputs (`actor.token_stream`; actor/tokens.py)
    """

    speech: torch.Tensor
    hidden: torch.Tensor
    hidden_frames: torch.Tensor
    hidden_mask: torch.Tensor
    tokens: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> ChunkCond:
        return ChunkCond(*(t.to(device) for t in (self.speech, self.hidden, self.hidden_frames, self.hidden_mask)),
                         tokens=None if self.tokens is None else self.tokens.to(device))


def blank_pass(cfg: ModelConfig, m: int, device: torch.device | str,
               dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, ChunkCond]:
    """Zero inputs (x, sigma, cond) of a streaming pass over m chunks: the shapes of a real one, no content."""
    r, mm, f = cfg.cross_chunks, cfg.max_hidden_tokens, cfg.chunk_frames
    x = torch.zeros(1, m, cfg.latent_frames, cfg.vae.latent_channels, cfg.latent_hw, cfg.latent_hw, device=device,
                    dtype=dtype)
    cond = ChunkCond(torch.zeros(1, m, f, cfg.thinker.speech_feature_size, device=device, dtype=dtype),
                     torch.zeros(1, r + m, mm, cfg.thinker.hidden_size, device=device, dtype=dtype),
                     torch.zeros(1, r + m, mm, dtype=torch.long, device=device),
                     torch.zeros(1, r + m, mm, dtype=torch.bool, device=device))
    return x, torch.zeros(1, m, device=device, dtype=dtype), cond


__all__ = ["ChunkCond", "blank_pass"]
