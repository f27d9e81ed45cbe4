"""CPBD sharpness (Narvekar & Karam 2011, "A no-reference image blur metric based on the cumulative
probability of blur detection"), implemented from the paper's definition.

1. Luminance image; edges by Canny, kept where the Sobel gradient is mostly horizontal (|Gx| >= |Gy|): the
   vertical edges whose width is measured along the row (Marziliano et al.).
2. 64x64 blocks; a block is an edge block when more than 0.2% of its pixels are edge pixels.
3. Per edge block, contrast C = max - min luminance; just-noticeable-blur width w_JNB = 5 if C <= 50 else 3.
4. Edge width w(e_i) at each edge pixel: distance between the local luminance extrema on either side along
   the row (end of the monotone run in the gradient's direction), times cos of the gradient angle.
5. P_blur(e_i) = 1 - exp(-|w(e_i) / w_JNB|^beta), beta = 3.6.
6. CPBD = share of edge pixels with P_blur <= P_JNB = 63%. Higher = sharper, in [0,1].
"""

from __future__ import annotations

import cv2
import numpy as np

BETA = 3.6
P_JNB = 0.63
BLOCK = 64


def _runs(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a bool [H, W-1] array of steps, the lengths of the True runs ending before / starting at each x.

    left[y, x]: number of consecutive True steps at indices x-1, x-2, ...; right[y, x]: at x, x+1, ...
    Returned arrays are [H, W] (one per pixel).
    """
    h, w1 = pos.shape
    left = np.zeros((h, w1 + 1), np.int32)
    right = np.zeros((h, w1 + 1), np.int32)
    for x in range(1, w1 + 1):
        left[:, x] = np.where(pos[:, x - 1], left[:, x - 1] + 1, 0)
    for x in range(w1 - 1, -1, -1):
        right[:, x] = np.where(pos[:, x], right[:, x + 1] + 1, 0)
    return left, right


def edge_widths(gray: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(widths [N], (ys, xs)) of the edge pixels in a float gray image, measured along rows."""
    d = np.diff(gray, axis=1)
    lu, ru = _runs(d > 0)    # rising runs
    ld, rd = _runs(d < 0)    # falling runs
    gx = cv2.Sobel(gray, cv2.CV_64F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_64F, 0, 1, ksize=3)
    ys, xs = np.nonzero(edges)
    rising = gx[ys, xs] > 0
    w = np.where(rising, lu[ys, xs] + ru[ys, xs], ld[ys, xs] + rd[ys, xs]).astype(np.float64)
    ang = np.arctan2(np.abs(gy[ys, xs]), np.abs(gx[ys, xs]))
    w = w * np.cos(ang)  # row width -> width across the edge
    return w, (ys, xs)


def cpbd(img: np.ndarray) -> float:
    """CPBD of a uint8 RGB [H,W,3] or gray [H,W] image; NaN when the image has no edge block."""
    img = np.asarray(img)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    if img.ndim != 2 or img.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB or gray image, got {img.dtype} {img.shape}")
    gray = img.astype(np.float64)
    canny = cv2.Canny(img, 50, 150) > 0
    gx = cv2.Sobel(gray, cv2.CV_64F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_64F, 0, 1, ksize=3)
    edges = canny & (np.abs(gx) >= np.abs(gy))
    h, w = gray.shape
    keep = np.zeros_like(edges)
    wjnb = np.zeros(gray.shape, np.float64)
    for y0 in range(0, h, BLOCK):
        for x0 in range(0, w, BLOCK):
            e = edges[y0:y0 + BLOCK, x0:x0 + BLOCK]
            if e.sum() > 0.002 * e.size:
                blk = gray[y0:y0 + BLOCK, x0:x0 + BLOCK]
                keep[y0:y0 + BLOCK, x0:x0 + BLOCK] = e
                wjnb[y0:y0 + BLOCK, x0:x0 + BLOCK] = 5.0 if blk.max() - blk.min() <= 50 else 3.0
    if not keep.any():
        return float("nan")
    widths, (ys, xs) = edge_widths(gray, keep)
    p_blur = 1.0 - np.exp(-np.abs(widths / wjnb[ys, xs]) ** BETA)
    return float((p_blur <= P_JNB).mean())


def cpbd_frames(frames: np.ndarray, every: int = 5) -> float:
    """Mean CPBD over every `every`-th frame of [T,H,W,3] (NaN frames ignored)."""
    vals = [cpbd(f) for f in np.asarray(frames)[::every]]
    vals = [v for v in vals if not np.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")
