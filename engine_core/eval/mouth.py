"""A mouth-opening measure from pixels: the share of dark "mouth-interior" pixels inside the mouth box.

Definition (per frame): crop the mouth box [x0,y0,x1,y1]; luminance Y = 0.299 R + 0.587 G + 0.114 B; each
pixel gets a dark membership m = clip((HI - Y) / (HI - LO), 0, 1) with LO = 32, HI = 48 (a soft threshold, so
a blurred edge counts in part), further zeroed where Y is above 0.6 x the box's skin reference (the median
luminance of the box's 2-px border ring), so a dark-skinned face never counts as mouth interior. The opening is
sum(m) / (box area x FULL_OPEN_FRACTION), clipped to [0,1]; FULL_OPEN_FRACTION = 0.35 is the interior share of
a generator mouth box at full opening. Values compare within one box (one character); use correlations across
characters. Works on any renderer whose open mouth is dark (the synthetic corpus draws it RGB (42,10,18)).
"""

from __future__ import annotations

import numpy as np

LO, HI = 32.0, 48.0
FULL_OPEN_FRACTION = 0.35


def _check_box(box, h: int, w: int) -> tuple[int, int, int, int]:  # noqa: ANN001
    x0, y0, x1, y1 = (int(v) for v in box)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 4 or y1 - y0 < 4:
        raise ValueError(f"mouth box {list(box)} is empty or smaller than 4x4 inside a {w}x{h} frame")
    return x0, y0, x1, y1


def luminance(rgb: np.ndarray) -> np.ndarray:
    """float32 luminance of uint8 RGB [..., 3]."""
    return rgb[..., 0] * np.float32(0.299) + rgb[..., 1] * np.float32(0.587) + rgb[..., 2] * np.float32(0.114)


def mouth_opening(frames: np.ndarray, box) -> np.ndarray:  # noqa: ANN001
    """float32 [T] mouth opening in [0,1] for uint8 frames [T,H,W,3] (or one [H,W,3] -> [1]).

    box: one [x0,y0,x1,y1] for all frames, or [T,4] boxes (one per frame).
    """
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [T,H,W,3] RGB, got shape {frames.shape}")
    boxes = np.asarray(box)
    if boxes.ndim == 1:
        boxes = np.tile(boxes[None], (len(frames), 1))
    if boxes.shape != (len(frames), 4):
        raise ValueError(f"box must be [4] or [T,4] with T={len(frames)}, got {boxes.shape}")
    out = np.zeros(len(frames), np.float32)
    for t, (f, b) in enumerate(zip(frames, boxes)):
        x0, y0, x1, y1 = _check_box(b, f.shape[0], f.shape[1])
        y = luminance(f[y0:y1, x0:x1].astype(np.float32))
        ring = np.concatenate([y[:2].ravel(), y[-2:].ravel(), y[:, :2].ravel(), y[:, -2:].ravel()])
        ref = float(np.median(ring))
        m = np.clip((HI - y) / (HI - LO), 0.0, 1.0)
        m[y > 0.6 * ref] = 0.0
        out[t] = min(1.0, float(m.sum()) / (y.size * FULL_OPEN_FRACTION))
    return out
