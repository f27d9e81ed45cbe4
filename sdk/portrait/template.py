"""The 68-point face layout (dlib / iBUG 300-W) and a mean face in it.

Indices: jaw 0-16, right brow 17-21 and left brow 22-26 (as seen in the image: left to right), nose bridge 27-30,
nostrils 31-35, eyes 36-41 and 42-47, outer lips 48-59, inner lips 60-67.

`MEAN_FACE` is the mean of dlib's 68 landmarks over 17 portraits (5 public-domain photos and the 12 built-in
characters), each normalised so that the eye centres sit at (-0.5, 0) and (0.5, 0), then made left-right
symmetric. It places a face from five user points (`sdk.portrait.landmarks.fit_five_points`).
"""

from __future__ import annotations

import numpy as np

JAW = slice(0, 17)
BROW_A, BROW_B = slice(17, 22), slice(22, 27)       # image-left brow, image-right brow
NOSE_BRIDGE, NOSTRILS = slice(27, 31), slice(31, 36)
EYE_A, EYE_B = slice(36, 42), slice(42, 48)         # image-left eye, image-right eye
OUTER_LIPS, INNER_LIPS = slice(48, 60), slice(60, 68)
NOSE_TIP = 30
MOUTH_A, MOUTH_B = 48, 54                           # mouth corners, image-left and image-right

MEAN_FACE = np.array([
    [-1.209, 0.06], [-1.196, 0.363], [-1.172, 0.661], [-1.116, 0.965], [-1.003, 1.244], [-0.82, 1.482],
    [-0.577, 1.677], [-0.31, 1.822], [0.0, 1.869], [0.31, 1.822], [0.577, 1.677], [0.82, 1.482],
    [1.003, 1.244], [1.116, 0.965], [1.172, 0.661], [1.196, 0.363], [1.209, 0.06], [-0.919, -0.198],
    [-0.781, -0.331], [-0.581, -0.385], [-0.371, -0.364], [-0.177, -0.292], [0.177, -0.292], [0.371, -0.364],
    [0.581, -0.385], [0.781, -0.331], [0.919, -0.198], [0.0, -0.082], [0.0, 0.088], [0.0, 0.252], [0.0, 0.426],
    [-0.207, 0.631], [-0.104, 0.657], [0.0, 0.681], [0.104, 0.657], [0.207, 0.631], [-0.706, 0.011],
    [-0.579, -0.074], [-0.42, -0.081], [-0.285, 0.019], [-0.428, 0.061], [-0.583, 0.064], [0.285, 0.019],
    [0.42, -0.081], [0.579, -0.074], [0.706, 0.011], [0.583, 0.064], [0.428, 0.061], [-0.435, 1.039],
    [-0.262, 0.967], [-0.103, 0.928], [0.0, 0.953], [0.103, 0.928], [0.262, 0.967], [0.435, 1.039],
    [0.264, 1.147], [0.111, 1.194], [0.0, 1.205], [-0.111, 1.194], [-0.264, 1.147], [-0.369, 1.041],
    [-0.107, 1.022], [0.0, 1.032], [0.107, 1.022], [0.369, 1.041], [0.106, 1.073], [0.0, 1.086],
    [-0.106, 1.073],
], dtype=np.float64)


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """The five user points of a 68-point face: eye centres (image-left, image-right), nose tip, mouth corners
    (image-left, image-right) -> float64 [5, 2]."""
    lm = np.asarray(landmarks, np.float64)
    return np.stack([lm[EYE_A].mean(0), lm[EYE_B].mean(0), lm[NOSE_TIP], lm[MOUTH_A], lm[MOUTH_B]])


def eye_frame(landmarks: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(centre between the eyes [2], inter-ocular distance, roll angle in radians) of a 68-point face."""
    lm = np.asarray(landmarks, np.float64)
    a, b = lm[EYE_A].mean(0), lm[EYE_B].mean(0)
    v = b - a
    return (a + b) / 2, float(np.hypot(*v)), float(np.arctan2(v[1], v[0]))


def normalised(landmarks: np.ndarray) -> np.ndarray:
    """The face's geometry without its place, size and roll: 68 points with the eye centres at (-0.5, 0) and
    (0.5, 0) -> float32 [68, 2] (the identity reference the motion Actor reads)."""
    centre, iod, roll = eye_frame(landmarks)
    c, s = np.cos(-roll), np.sin(-roll)
    rot = np.array([[c, -s], [s, c]])
    return (((np.asarray(landmarks, np.float64) - centre) @ rot.T) / max(iod, 1e-6)).astype(np.float32)
