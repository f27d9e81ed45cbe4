"""Image losses/metrics for training and checking SmallVAE: SSIM (Gaussian window) and image-gradient L1.

Both take float tensors [B,3,H,W] (any range; SSIM constants assume data range 2, i.e. [-1,1]).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _gauss_window(
    size: int, sigma: float, channels: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    ax = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2.0
    g = torch.exp(-(ax**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()  # [C,1,k,k]


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 2.0,
    size: int = 11,
    sigma: float = 1.5,
    reduce: bool = True,
) -> torch.Tensor:
    """Mean SSIM of x and y [B,C,H,W] (per image [B] when reduce=False); valid-region Gaussian window."""
    c = x.shape[1]
    w = _gauss_window(size, sigma, c, x.device, x.dtype)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = F.conv2d(x, w, groups=c), F.conv2d(y, w, groups=c)
    sxx = F.conv2d(x * x, w, groups=c) - mu_x**2
    syy = F.conv2d(y * y, w, groups=c) - mu_y**2
    sxy = F.conv2d(x * y, w, groups=c) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))  # [B,C,h,w]
    per_image = s.flatten(1).mean(1)
    return per_image.mean() if reduce else per_image


def gradient_l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L1 between horizontal and vertical pixel differences of x and y (keeps flat-shaded edges sharp)."""
    dx = (x[..., :, 1:] - x[..., :, :-1]) - (y[..., :, 1:] - y[..., :, :-1])
    dy = (x[..., 1:, :] - x[..., :-1, :]) - (y[..., 1:, :] - y[..., :-1, :])
    return dx.abs().mean() + dy.abs().mean()
