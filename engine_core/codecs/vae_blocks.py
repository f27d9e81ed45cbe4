"""Network blocks of SmallVAE: a per-frame convolutional encoder and decoder.

Layout (downsample = 2**L, channels = (c0, ..., c_{L-1}) from high to low resolution):

    encoder: [B,3,H,W] -pixel_unshuffle(2)-> [B,12,H/2,W/2] -conv-> c0
             level i: ResBlock(c_i) x enc_blocks[i], then stride-2 conv c_i -> c_{i+1} (not after the last)
             -> SiLU -> conv -> [B,latent_channels,H/2**L,W/2**L]
    decoder: [B,latent_channels,h,w] -conv-> c_{L-1}
             level i (L-1 .. 0): ResBlock(c_i) x dec_blocks[i], then conv c_i -> 4*c_{i-1} + pixel_shuffle(2)
             -> SiLU -> conv c0 -> 12 -> pixel_shuffle(2) -> [B,3,H,W]

No normalisation layers (cheap on CPU, batch independent); residual branches start at zero so an untrained
network is well conditioned. Everything runs in channels_last memory format on CPU for speed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


class ResBlock(nn.Module):
    """Pre-activation residual block: x + conv(silu(conv(silu(x)))), second conv zero-initialised."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B,C,H,W] -> [B,C,H,W]
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class Encoder(nn.Module):
    """Frames [B,3,H,W] in [-1,1] -> raw latents [B,latent_channels,H/downsample,W/downsample]."""

    def __init__(self, channels: Sequence[int], blocks: Sequence[int], latent_channels: int) -> None:
        super().__init__()
        levels = len(channels)
        self.conv_in = nn.Conv2d(12, channels[0], 3, padding=1)
        layers: list[nn.Module] = []
        for i in range(levels):
            layers += [ResBlock(channels[i]) for _ in range(blocks[i])]
            if i < levels - 1:
                layers.append(nn.Conv2d(channels[i], channels[i + 1], 3, stride=2, padding=1))
        self.body = nn.Sequential(*layers)
        self.conv_out = nn.Conv2d(channels[-1], latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pixel_unshuffle(x, 2)  # [B,12,H/2,W/2]
        x = self.body(self.conv_in(x))  # [B,c_{L-1},H/2**L,W/2**L]
        return self.conv_out(F.silu(x))  # [B,latent,h,w]


class Decoder(nn.Module):
    """Raw latents [B,latent_channels,h,w] -> frames [B,3,h*downsample,w*downsample] (unclamped, ~[-1,1])."""

    def __init__(self, channels: Sequence[int], blocks: Sequence[int], latent_channels: int) -> None:
        super().__init__()
        levels = len(channels)
        self.conv_in = nn.Conv2d(latent_channels, channels[-1], 3, padding=1)
        layers: list[nn.Module] = []
        for i in range(levels - 1, -1, -1):
            layers += [ResBlock(channels[i]) for _ in range(blocks[i])]
            if i > 0:
                # 1x1 conv to 4x channels + pixel shuffle: cheap upsampling; the next 3x3 convs smooth it
                layers += [nn.SiLU(), nn.Conv2d(channels[i], 4 * channels[i - 1], 1), nn.PixelShuffle(2)]
        self.body = nn.Sequential(*layers)
        self.conv_out = nn.Conv2d(channels[0], 12, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.body(self.conv_in(z))  # [B,c0,H/2,W/2]
        return F.pixel_shuffle(self.conv_out(F.silu(x)), 2)  # [B,3,H,W]
