"""Time-aligned 3D rotary position embedding (ours; after Qwen2.5-Omni's TMRoPE).

Every token gets a position id triple (t, h, w). The time axis counts 25 ids per second: one per 40 ms
video frame, on the stream's absolute frame clock (frame 0 = start of the session).

    conditioning token of frame f (speech features + pooled Thinker states)  -> (f, f, f)
    Thinker hidden-state token aligned to frame f (cross-attention keys)      -> (f, f, f)
    video latent token of latent frame j of chunk k, cell (y, x)              -> (k*F + j*tf, y, x)
    identity token, cell (y, x)                                               -> (identity_time, y, x)

so tokens of different modalities with equal timestamps get equal time ids. The head dimension is split
into three sections (time: half, h: a quarter, w: a quarter); each section rotates by its own id.
"""

from __future__ import annotations

import torch

from engine_core.config import ModelConfig

FRAMES_PER_SECOND = 25


def time_id(seconds: float) -> int:
    """Time id of a timestamp in seconds (25 ids per second)."""
    return int(round(seconds * FRAMES_PER_SECOND))


def text_position_ids(frames: torch.Tensor) -> torch.Tensor:
    """Frame ids [...] (long) of text/audio/hidden/conditioning tokens -> position ids [..., 3] = (t, t, t)."""
    return frames.long().unsqueeze(-1).expand(*frames.shape, 3)


def grid_ids(cfg: ModelConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(y [P], x [P]) token-grid coordinates of one latent frame, row-major."""
    g = cfg.latent_hw // cfg.actor.patch
    y = torch.arange(g).repeat_interleave(g)
    x = torch.arange(g).repeat(g)
    return y, x


def video_position_ids(cfg: ModelConfig, first_chunk: int, num_chunks: int) -> torch.Tensor:
    """Position ids of the video tokens of chunks [first_chunk, first_chunk+num_chunks) -> [m, Fl*P, 3]."""
    y, x = grid_ids(cfg)                                            # [P]
    p, fl, tf = cfg.tokens_per_frame, cfg.latent_frames, cfg.vae.temporal_factor
    chunks = torch.arange(first_chunk, first_chunk + num_chunks)     # [m]
    t = chunks[:, None] * cfg.chunk_frames + torch.arange(fl)[None, :] * tf  # [m, Fl]
    t = t[:, :, None].expand(num_chunks, fl, p)                      # [m, Fl, P]
    ids = torch.stack([t, y.expand_as(t), x.expand_as(t)], dim=-1)   # [m, Fl, P, 3]
    return ids.reshape(num_chunks, fl * p, 3)


def cond_position_ids(cfg: ModelConfig, first_chunk: int, num_chunks: int) -> torch.Tensor:
    """Position ids of the per-frame conditioning tokens -> [m, F, 3] (t, t, t)."""
    f = cfg.chunk_frames
    frames = torch.arange(first_chunk * f, (first_chunk + num_chunks) * f).view(num_chunks, f)
    return text_position_ids(frames)


def identity_position_ids(cfg: ModelConfig) -> torch.Tensor:
    """Position ids of the identity tokens -> [P, 3] (identity_time, y, x)."""
    y, x = grid_ids(cfg)
    return torch.stack([torch.full_like(y, cfg.actor.identity_time), y, x], dim=-1)


class Rope3D:
    """Angles for position ids (t, h, w) and their application to queries/keys [B, H, L, Dh]."""

    def __init__(self, head_dim: int, theta: float = 10000.0) -> None:
        half = head_dim // 2                    # rotation pairs
        t_pairs = half // 2
        hw_pairs = (half - t_pairs) // 2
        self.sections = (t_pairs, hw_pairs, half - t_pairs - hw_pairs)
        self.inv_freq = [theta ** (-torch.arange(n, dtype=torch.float64) / max(n, 1)) for n in self.sections]

    def angles(self, pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """pos [..., L, 3] -> (cos, sin) [..., L, Dh/2] float32."""
        parts = [pos[..., i:i + 1].double() * f.to(pos.device) for i, f in enumerate(self.inv_freq)]
        ang = torch.cat(parts, dim=-1)          # [..., L, Dh/2]
        return ang.cos().float(), ang.sin().float()

    @staticmethod
    def apply(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """Rotate x [B, H, L, Dh] by (cos, sin) [L, Dh/2] or [B, L, Dh/2]."""
        if cos.ndim == 3:
            cos, sin = cos[:, None], sin[:, None]   # [B, 1, L, Dh/2]
        x1, x2 = x.float().chunk(2, dim=-1)
        out = torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
        return out.to(x.dtype)
