"""The usable cast: for each identity id, the first seeded draw whose neutral portrait OpenCV's face detector
finds (characters a face detector takes for faces).

`characters` defines the identity space (raw seeded draws); `draw` renders them; this module sits on both.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from engine_core.data.synth.characters import IdentityParams, sample_identity
from engine_core.data.synth.draw import FaceState, draw_frame

MAX_ATTEMPTS = 6


@lru_cache(maxsize=1)
def _frontal_cascade():  # noqa: ANN202
    import cv2

    from engine_core.errors import BackendUnavailableError

    path = Path(getattr(getattr(cv2, "data", None), "haarcascades", "")) / "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(str(path)) if hasattr(cv2, "CascadeClassifier") else None
    if cascade is None or cascade.empty():
        raise BackendUnavailableError(f"OpenCV {cv2.__version__} has no Haar cascades (opencv-python-headless < 5 "
                                      "is needed to pick the corpus's characters)")
    return cascade


def face_detected(img: np.ndarray) -> bool:
    """True when OpenCV's default frontal-face Haar cascade finds a face in the RGB image (scale 1.1, 5
    neighbours): the corpus's characters are those a face detector takes for faces. BackendUnavailableError where
    OpenCV has no cascades."""
    import cv2

    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return len(_frontal_cascade().detectMultiScale(gray, 1.1, 5, minSize=(40, 40))) > 0


@lru_cache(maxsize=4096)
def identity_params(identity_id: int) -> IdentityParams:
    """The character of `identity_id` (deterministic; 0 <= id < NUM_IDENTITIES recommended).

    Draws up to `MAX_ATTEMPTS` candidates from the seeded space and keeps the first whose neutral portrait the
    OpenCV frontal-face cascade detects (about 90% of raw draws pass), so that portraits are usable by the
    engine's face check; the last candidate is kept if none passes.
    """
    if identity_id < 0:
        raise ValueError(f"identity_id must be >= 0, got {identity_id}")
    for attempt in range(MAX_ATTEMPTS):
        p = sample_identity(identity_id, attempt)
        if face_detected(draw_frame(p, FaceState())):
            break
    return p


