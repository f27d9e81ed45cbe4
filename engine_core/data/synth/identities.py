"""The usable cast: for each identity id, the first seeded draw whose neutral portrait OpenCV's face detector
finds (so every corpus and gallery character passes the engine's portrait check).

`characters` defines the identity space (raw seeded draws); `draw` renders them; this module sits on both.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from engine_core.data.synth.characters import IdentityParams, sample_identity
from engine_core.data.synth.draw import FaceState, draw_frame

MAX_ATTEMPTS = 6


def face_detected(img: np.ndarray) -> bool:
    """True when OpenCV's default frontal-face Haar cascade (the engine's first portrait detector) finds a face
    in the RGB image (scale 1.1, 5 neighbours); BackendUnavailableError where OpenCV has no cascades."""
    import cv2

    from engine_core.portrait import face_cascades

    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return len(face_cascades()[0].detectMultiScale(gray, 1.1, 5, minSize=(40, 40))) > 0


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


