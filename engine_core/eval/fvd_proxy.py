"""fvd_proxy: a Fréchet distance between simple spatio-temporal feature statistics of real and generated clips.

FVD proper embeds 16-frame windows with an I3D network trained on Kinetics; no such network is packaged here,
so this is NOT FVD and its numbers are not comparable with published FVD values. Each 16-frame window (stride 8)
of a clip becomes a 112-d feature:
  - 8x8 area-downsampled luminance of the window's mean frame (64, /255),
  - 4x4 map of the mean absolute frame difference inside the window (16, /255, x10),
  - per-channel mean and std of the window (6, /255),
  - gradient-magnitude histogram of the mean frame (10 bins, normalised),
  - 4x4 map of the temporal std (16, /255, x10).
Fréchet distance d^2 = |mu_r - mu_g|^2 + tr(S_r + S_g - 2 (S_r^1/2 S_g S_r^1/2)^1/2) with a 1e-6 ridge.
"""

from __future__ import annotations

import cv2
import numpy as np

WINDOW, STRIDE = 16, 8


def window_features(frames: np.ndarray) -> np.ndarray:
    """float64 [N,112] features of the 16-frame windows of uint8 frames [T,H,W,3] (N = 0 when T < 16)."""
    f = np.asarray(frames)
    if f.ndim != 4 or f.shape[-1] != 3:
        raise ValueError(f"frames must be [T,H,W,3], got {f.shape}")
    gray = (f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114).astype(np.float32)
    feats = []
    for s in range(0, len(f) - WINDOW + 1, STRIDE):
        g = gray[s:s + WINDOW]
        mean = g.mean(0)
        diff = np.abs(np.diff(g, axis=0)).mean(0)
        tstd = g.std(0)
        gx = cv2.Sobel(mean, cv2.CV_32F, 1, 0)
        gy = cv2.Sobel(mean, cv2.CV_32F, 0, 1)
        hist, _ = np.histogram(np.hypot(gx, gy), bins=10, range=(0, 400))
        win = f[s:s + WINDOW].reshape(-1, 3).astype(np.float32)
        feats.append(np.concatenate([
            cv2.resize(mean, (8, 8), interpolation=cv2.INTER_AREA).ravel() / 255.0,
            cv2.resize(diff, (4, 4), interpolation=cv2.INTER_AREA).ravel() / 25.5,
            win.mean(0) / 255.0, win.std(0) / 255.0,
            hist / max(1, hist.sum()),
            cv2.resize(tstd, (4, 4), interpolation=cv2.INTER_AREA).ravel() / 25.5,
        ]))
    return np.array(feats, np.float64).reshape(-1, 112)


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(real: np.ndarray, gen: np.ndarray, ridge: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to feature rows [N,D] and [M,D] (needs N, M >= 2)."""
    if len(real) < 2 or len(gen) < 2:
        raise ValueError("need at least 2 feature rows on each side")
    mu1, mu2 = real.mean(0), gen.mean(0)
    s1 = np.cov(real, rowvar=False) + ridge * np.eye(real.shape[1])
    s2 = np.cov(gen, rowvar=False) + ridge * np.eye(real.shape[1])
    r1 = _sqrtm_psd(s1)
    cross = _sqrtm_psd(r1 @ s2 @ r1)
    return float(max(0.0, ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * cross)))


def fvd_proxy(real_clips: list[np.ndarray], gen_clips: list[np.ndarray]) -> float:
    """`fvd_proxy_frechet` over all 16-frame windows of the real and the generated clips (lower = closer)."""
    r = np.concatenate([window_features(c) for c in real_clips]) if real_clips else np.zeros((0, 112))
    g = np.concatenate([window_features(c) for c in gen_clips]) if gen_clips else np.zeros((0, 112))
    return frechet_distance(r, g)
