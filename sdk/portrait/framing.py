"""The square head-and-shoulders frame of a portrait, placed from its landmarks.

The frame is `FRAME_IODS` inter-ocular distances wide and centred `EYES_BELOW_TOP` of its height below its top
edge on the eyes' midpoint. A square image that already is a head-and-shoulders frame (the face, jaw to jaw,
`WHOLE_FACE_SHARE` of its width and wholly inside it: the built-in characters, frames of a clip) is used whole.
Past the image's edges the border is replicated (transparent where the image has alpha).
"""

from __future__ import annotations

import numpy as np

from sdk.portrait.template import eye_frame

FRAME_IODS = 4.4           # frame side / inter-ocular distance
EYES_BELOW_TOP = 0.42      # the eyes' midpoint sits this far down the frame
WHOLE_FACE_SHARE = (0.3, 0.75)    # a square image whose face spans this share of its width is used whole


def frame_box(landmarks: np.ndarray, width: int, height: int) -> tuple[int, int, int]:
    """(x0, y0, side) of the square frame in source pixels (it may extend past the image)."""
    lm = np.asarray(landmarks, np.float64)
    centre, iod, _ = eye_frame(lm)
    share = float(np.hypot(*(lm[16] - lm[0]))) / width
    inside = lm.min() >= 0 and lm[:, 0].max() < width and lm[:, 1].max() < height
    if width == height and WHOLE_FACE_SHARE[0] <= share <= WHOLE_FACE_SHARE[1] and inside:
        return 0, 0, width
    side = int(round(FRAME_IODS * iod))
    x0 = int(round(centre[0] - side / 2))
    y0 = int(round(centre[1] - EYES_BELOW_TOP * side))
    if side <= width:                       # keep the square inside the image where it fits
        x0 = min(max(x0, 0), width - side)
    if side <= height:
        y0 = min(max(y0, 0), height - side)
    return x0, y0, side


def crop(image: np.ndarray, box: tuple[int, int, int], size: int) -> np.ndarray:
    """The square `box` (x0, y0, side) of an RGB(A) image resized to size x size (area filter down, Lanczos up)."""
    import cv2

    x0, y0, side = box
    h, w = image.shape[:2]
    pad = max(0, -x0, -y0, x0 + side - w, y0 + side - h)
    if pad:
        if image.shape[2] == 4:       # transparent beyond an image that has alpha
            src = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0, 0))
        else:
            src = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    else:
        src = image
    part = src[y0 + pad:y0 + pad + side, x0 + pad:x0 + pad + side]
    if side == size:
        return np.ascontiguousarray(part)
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LANCZOS4
    return cv2.resize(part, (size, size), interpolation=interp)
