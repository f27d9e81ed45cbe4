"""Rigid head-pose alignment of a generated frame to its ground truth, for pose-independent face scores.

The corpus renderer sways every character's head with a random smooth track (±3 px, ±2 px, ±3°) drawn from
the clip's seed; a model that draws the right face with another sway loses SSIM for the sway alone (a
perfect render of the same speech with another sway scores 0.58-0.79 face SSIM). `align_to` estimates the
Euclidean motion (rotation + translation, 3 degrees of freedom) that best maps the generated frame onto the
truth inside the face box, with OpenCV's ECC (Evangelidis & Psarakis 2008), and warps the generated frame by
it. The motion is bounded (`MAX_SHIFT_PX`, `MAX_ANGLE_DEG`: a little more than the renderer's sway); an
estimate outside the bounds, or one that does not converge, leaves the frame as it was. A rigid warp moves
pixels but cannot draw a mouth or an eye that is not there, so aligned scores still measure appearance.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from engine_core.eval.mouth import luminance

MAX_SHIFT_PX = 8.0
MAX_ANGLE_DEG = 6.0
_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 60, 1e-5)


def estimate_pose(generated: np.ndarray, truth: np.ndarray, box) -> np.ndarray | None:  # noqa: ANN001
    """2x3 float32 warp mapping truth coordinates to generated ones (cv2 ECC convention), or None.

    generated, truth: uint8 RGB [H, W, 3]; box: [x0, y0, x1, y1] of the face (union over the clip).
    """
    g = cv2.GaussianBlur(luminance(generated.astype(np.float32)), (0, 0), 1.0)
    t = cv2.GaussianBlur(luminance(truth.astype(np.float32)), (0, 0), 1.0)
    mask = np.zeros(t.shape, np.uint8)
    x0, y0, x1, y1 = (int(v) for v in box)
    mask[y0:y1, x0:x1] = 1
    warp = np.eye(2, 3, dtype=np.float32)
    try:
        _, warp = cv2.findTransformECC(t, g, warp, cv2.MOTION_EUCLIDEAN, _CRITERIA, mask, 5)
    except cv2.error:
        return None
    angle = math.degrees(math.atan2(float(warp[1, 0]), float(warp[0, 0])))
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    # displacement of the face centre (what the renderer's dx/dy move), not of the image origin
    moved = warp @ np.array([cx, cy, 1.0], np.float32)
    shift = math.hypot(float(moved[0] - cx), float(moved[1] - cy))
    if not (np.isfinite(warp).all() and abs(angle) <= MAX_ANGLE_DEG and shift <= MAX_SHIFT_PX):
        return None
    return warp


def align_to(generated: np.ndarray, truth: np.ndarray, box) -> np.ndarray:  # noqa: ANN001
    """`generated` warped onto `truth`'s head pose (unchanged when no bounded pose is found)."""
    warp = estimate_pose(generated, truth, box)
    if warp is None:
        return generated
    h, w = truth.shape[:2]
    return cv2.warpAffine(generated, warp, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)
