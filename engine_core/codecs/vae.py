"""Video VAE interface and the project's own small per-frame VAE (`SmallVAE`) (tiny/default).

Conventions shared by every `VideoVAE` (the Actor works in this latent space):

- frames in:  uint8 numpy [T,H,W,3] RGB (0..255), or a float torch tensor [T,3,H,W] in [-1,1]
              (H = W = 256 in every preset; H and W must be multiples of `spatial_factor`).
- latents:    float32 torch tensor [T',C,h,w], C = `latent_channels`, h = H / `spatial_factor`,
              T' = latent frames (T' = T for SmallVAE; T' = 1 + (T-1)/8 for LTX). Latents are *normalised*
              (roughly zero mean, unit std per channel, from stats stored with the weights), which is what a
              diffusion model wants; `decode` undoes the normalisation.
- frames out: `decode` -> float tensor [T,3,H,W] in [-1,1] (clamped) on the VAE's device;
              `decode_frames` -> uint8 numpy [T,H,W,3] RGB (what AVChunk carries).

SmallVAE is a plain autoencoder (no KL term): training adds small Gaussian noise to the latents and a light
L2 penalty so the decoder tolerates the imperfect latents a diffusion model produces; `fit_latent_stats`
stores the per-channel mean/std after training. Weights are saved as one safetensors file with the config
JSON in its metadata (see vae_io.py).
"""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from engine_core.checkpoint import VAE_VERSION
from engine_core.codecs.vae_blocks import Decoder, Encoder
from engine_core.errors import ConfigError


def frames_to_tensor(
    frames: np.ndarray | torch.Tensor,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """uint8 [T,H,W,3] (numpy or torch) or float [T,3,H,W] in [-1,1] -> float tensor [T,3,H,W] in [-1,1]."""
    if isinstance(frames, np.ndarray):
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"numpy frames must be uint8 [T,H,W,3]; got {frames.dtype} {frames.shape}")
        frames = torch.from_numpy(np.ascontiguousarray(frames))
    if not isinstance(frames, torch.Tensor):
        raise ValueError(f"frames must be a numpy array or torch tensor, not {type(frames).__name__}")
    if frames.dtype == torch.uint8:
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"uint8 frames must be [T,H,W,3]; got {tuple(frames.shape)}")
        x = frames.to(device).permute(0, 3, 1, 2).to(dtype) / 127.5 - 1.0  # [T,3,H,W]
        return x.contiguous()
    if not frames.is_floating_point() or frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(
            f"float frames must be [T,3,H,W] in [-1,1]; got {frames.dtype} {tuple(frames.shape)}"
        )
    return frames.to(device=device, dtype=dtype)


def tensor_to_frames(x: torch.Tensor) -> np.ndarray:
    """Float tensor [T,3,H,W] in [-1,1] -> uint8 numpy [T,H,W,3] (rounded, clamped)."""
    y = (x.detach().float() + 1.0).mul_(127.5).add_(0.5).clamp_(0, 255).to(torch.uint8)  # [T,3,H,W]
    return y.permute(0, 2, 3, 1).contiguous().cpu().numpy()


class VideoVAE(abc.ABC):
    """What the Actor and the engine need from a video codec (see the module docstring for shapes)."""

    @property
    @abc.abstractmethod
    def latent_channels(self) -> int:
        """C of the latents [T',C,h,w]."""

    @property
    @abc.abstractmethod
    def spatial_factor(self) -> int:
        """Pixels per latent cell along H and W."""

    @property
    @abc.abstractmethod
    def temporal_factor(self) -> int:
        """Frames per latent frame (1 = per-frame codec; LTX: 8, with 1 + 8k frames)."""

    @abc.abstractmethod
    def encode(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Frames -> normalised latents float32 [T',C,h,w]."""

    @abc.abstractmethod
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents [T',C,h,w] -> float frames [T,3,H,W] in [-1,1]."""

    def decode_frames(self, latents: torch.Tensor) -> np.ndarray:
        """Normalised latents [T',C,h,w] -> uint8 RGB frames [T,H,W,3] (numpy)."""
        return tensor_to_frames(self.decode(latents))

    def num_latent_frames(self, num_frames: int) -> int:
        """T' for T input frames (T must be 1 + k*temporal_factor when temporal_factor > 1)."""
        tf = self.temporal_factor
        if tf == 1:
            return num_frames
        if num_frames < 1 or (num_frames - 1) % tf:
            raise ValueError(f"frame count must be 1 + {tf}k, got {num_frames}")
        return 1 + (num_frames - 1) // tf

    def latent_shape(self, num_frames: int, height: int = 256, width: int = 256) -> tuple[int, int, int, int]:
        """(T', C, h, w) of the latents of `num_frames` frames of height x width."""
        sf = self.spatial_factor
        return (self.num_latent_frames(num_frames), self.latent_channels, height // sf, width // sf)


@dataclass
class SmallVAEConfig:
    """Shape of a SmallVAE. `channels` run from the highest resolution (H/2) to the lowest (H/downsample);
    downsample must equal 2 ** len(channels). enc_blocks / dec_blocks: residual blocks per level."""

    image_size: int = 256
    downsample: int = 16
    latent_channels: int = 16
    channels: tuple[int, ...] = (24, 48, 96, 192)
    enc_blocks: tuple[int, ...] = (1, 1, 1, 1)
    dec_blocks: tuple[int, ...] = (1, 1, 1, 2)
    version: int = field(default=VAE_VERSION)

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        self.enc_blocks = tuple(int(b) for b in self.enc_blocks)
        self.dec_blocks = tuple(int(b) for b in self.dec_blocks)
        levels = len(self.channels)
        if levels < 1 or self.downsample != 2**levels:
            raise ConfigError(
                f"SmallVAEConfig: downsample {self.downsample} must be 2**len(channels) = {2**levels}"
            )
        if len(self.enc_blocks) != levels or len(self.dec_blocks) != levels:
            raise ConfigError("SmallVAEConfig: enc_blocks and dec_blocks need one entry per channel level")
        if self.image_size % self.downsample:
            raise ConfigError(
                f"SmallVAEConfig: image_size {self.image_size} not a multiple of {self.downsample}"
            )
        if self.latent_channels < 1 or min(self.channels) < 1:
            raise ConfigError("SmallVAEConfig: channel counts must be positive")

    @classmethod
    def tiny(cls) -> SmallVAEConfig:
        """CPU-test preset: 16x16x8 latents, ~0.1 M parameters."""
        return cls(
            downsample=16,
            latent_channels=8,
            channels=(8, 16, 32, 32),
            enc_blocks=(0, 1, 1, 1),
            dec_blocks=(0, 1, 1, 1),
        )

    @classmethod
    def default(cls) -> SmallVAEConfig:
        """The embedded default: 16x16x16 latents (48x compression), decoder sized for > 60 fps on 2 cores."""
        return cls()

    @classmethod
    def from_name(cls, name: str) -> SmallVAEConfig:
        """Preset by name ("tiny" | "default")."""
        if name not in ("tiny", "default"):
            raise ConfigError(f"unknown SmallVAE preset {name!r} (tiny | default)")
        return getattr(cls, name)()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples become lists)."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SmallVAEConfig:
        """Build from a stored dict, upgrading older versions (unknown keys are an error)."""
        d = upgrade_small_vae_config(dict(d))
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"SmallVAEConfig: unknown keys {sorted(unknown)}")
        return cls(**d)


def upgrade_small_vae_config(d: dict[str, Any]) -> dict[str, Any]:
    """A config dict without a version gets the current one; a newer one is refused (ConfigError). Files go
    through engine_core.checkpoint.upgrade_checkpoint first; this guards dicts built elsewhere."""
    d.setdefault("version", VAE_VERSION)
    if d["version"] > VAE_VERSION:
        raise ConfigError(f"SmallVAE config version {d['version']} is newer than this code ({VAE_VERSION})")
    return d


class SmallVAE(nn.Module, VideoVAE):
    """The project's per-frame convolutional autoencoder (temporal factor 1)."""

    def __init__(self, cfg: SmallVAEConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or SmallVAEConfig.default()
        c = self.cfg
        self.encoder = Encoder(c.channels, c.enc_blocks, c.latent_channels)
        self.decoder = Decoder(c.channels, c.dec_blocks, c.latent_channels)
        self.register_buffer("latent_mean", torch.zeros(c.latent_channels))  # [C]
        self.register_buffer("latent_std", torch.ones(c.latent_channels))  # [C]
        self.to(memory_format=torch.channels_last)

    # -- VideoVAE properties ------------------------------------------------------------------------------
    @property
    def latent_channels(self) -> int:
        return self.cfg.latent_channels

    @property
    def spatial_factor(self) -> int:
        return self.cfg.downsample

    @property
    def temporal_factor(self) -> int:
        return 1

    @property
    def device(self) -> torch.device:
        """Device of the weights."""
        return self.latent_mean.device

    # -- raw (unnormalised) paths, used in training ---------------------------------------------------
    def encode_raw(self, x: torch.Tensor) -> torch.Tensor:
        """Float frames [B,3,H,W] in [-1,1] -> raw latents [B,C,h,w] (with gradients)."""
        self._check_hw(x.shape[-2], x.shape[-1])
        return self.encoder(x.contiguous(memory_format=torch.channels_last))

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        """Raw latents [B,C,h,w] -> float frames [B,3,H,W], unclamped (with gradients)."""
        return self.decoder(z.contiguous(memory_format=torch.channels_last))

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        """Raw latents [B,C,h,w] -> normalised latents."""
        return (z - self.latent_mean.view(1, -1, 1, 1)) / self.latent_std.view(1, -1, 1, 1)

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised latents [B,C,h,w] -> raw latents."""
        return z * self.latent_std.view(1, -1, 1, 1) + self.latent_mean.view(1, -1, 1, 1)

    # -- VideoVAE API ---------------------------------------------------------------------------------
    @torch.inference_mode()
    def encode(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Frames (uint8 [T,H,W,3] or float [T,3,H,W]) -> normalised latents float32 [T,C,H/16,W/16]."""
        x = frames_to_tensor(frames, self.device)  # [T,3,H,W]
        return self.normalize(self.encode_raw(x)).contiguous()

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents [T,C,h,w] -> frames float32 [T,3,h*16,w*16] in [-1,1]."""
        if latents.ndim != 4 or latents.shape[1] != self.latent_channels:
            raise ValueError(f"latents must be [T,{self.latent_channels},h,w]; got {tuple(latents.shape)}")
        z = self.denormalize(latents.to(self.device, torch.float32))
        return self.decode_raw(z).clamp_(-1.0, 1.0).contiguous()

    @torch.no_grad()
    def fit_latent_stats(self, raw_latents: torch.Tensor) -> None:
        """Store per-channel mean/std of raw latents [N,C,h,w] (call after training, on real frames)."""
        mean = raw_latents.float().mean(dim=(0, 2, 3))
        std = raw_latents.float().std(dim=(0, 2, 3)).clamp_min(1e-5)
        self.latent_mean.copy_(mean)
        self.latent_std.copy_(std)

    def _check_hw(self, h: int, w: int) -> None:
        f = self.cfg.downsample
        if h % f or w % f:
            raise ValueError(f"frame size {h}x{w} must be a multiple of {f}")

    def num_parameters(self, part: str = "all") -> int:
        """Parameter count of "all", "encoder" or "decoder"."""
        mod = {"all": self, "encoder": self.encoder, "decoder": self.decoder}[part]
        return sum(p.numel() for p in mod.parameters())
