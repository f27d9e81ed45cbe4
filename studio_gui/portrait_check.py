"""Identity portrait checks with OpenCV's bundled frontal-face Haar cascade (no engine_core import).

`check_portrait(data)` decodes PNG/JPEG bytes (or a path), finds exactly one face big enough to animate,
and returns the square crop the model will use (256x256 RGB). Every refusal is a `PortraitRejected`
whose `reason` is one of ``unreadable``, ``no_face``, ``several_faces``, ``tiny_face`` and whose message
is a sentence meant for the user. The functions may run on any thread (the studio checks images off the
GUI thread): the one shared cascade classifier is used under a lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CROP_SIZE = 256          # the crop side the model consumes (protocol v1 FRAME_SIZE)
MIN_FACE_PX = 64         # a face narrower than this (in source pixels) is too small to animate
CROP_MARGIN = 1.9        # crop side = face side * CROP_MARGIN (hair, chin, a little shoulder)
DETECT_MIN_SIDE = 480    # small images are upscaled to this shorter side before detection
DETECT_MAX_SIDE = 1280   # large images are downscaled to this longer side before detection
MAX_BYTES = 16 * 1024 * 1024

_cascade = None
_cascade_lock = threading.Lock()     # OpenCV classifiers are not safe to share between threads unguarded


class PortraitRejected(ValueError):
    """The image cannot be used as an identity portrait; `reason` is a stable code, str() is for users."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class PortraitCheck:
    """An accepted portrait: `crop` (CROP_SIZE x CROP_SIZE x 3 uint8 RGB), the face box in source
    pixels (x, y, w, h) and the source size (w, h)."""

    crop: np.ndarray
    face: tuple[int, int, int, int]
    image_size: tuple[int, int]


def _face_cascade():
    """The frontal-face cascade, loaded once (call with `_cascade_lock` held)."""
    global _cascade
    if _cascade is None:
        import cv2

        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        _cascade = cv2.CascadeClassifier(str(path))
        if _cascade.empty():
            raise RuntimeError(f"OpenCV face cascade missing at {path}")
    return _cascade


def decode_image(data: bytes | str | Path) -> np.ndarray:
    """PNG/JPEG/... bytes or a file path -> H x W x 3 uint8 RGB; PortraitRejected('unreadable')."""
    import cv2

    if isinstance(data, (str, Path)):
        try:
            data = Path(data).read_bytes()
        except OSError as exc:
            raise PortraitRejected("unreadable", f"Cannot open the file: {exc.strerror or exc}.") from exc
    if len(data) > MAX_BYTES:
        raise PortraitRejected("unreadable", f"The file is larger than {MAX_BYTES // (1024 * 1024)} MiB.")
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if bgr is None or bgr.size == 0:
        raise PortraitRejected("unreadable", "This file is not an image I can read (use a PNG or JPEG).")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def detect_faces(rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Frontal faces in `rgb` (H x W x 3) as (x, y, w, h) boxes in source pixels, largest first."""
    import cv2

    h, w = rgb.shape[:2]
    scale = 1.0
    if min(h, w) < DETECT_MIN_SIDE:
        scale = DETECT_MIN_SIDE / min(h, w)
    elif max(h, w) > DETECT_MAX_SIDE:
        scale = DETECT_MAX_SIDE / max(h, w)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if scale != 1.0:
        gray = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR)
    gray = cv2.equalizeHist(gray)
    with _cascade_lock:
        found = _face_cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=6, minSize=(40, 40))
    boxes = [tuple(int(round(v / scale)) for v in box) for box in (found if len(found) else [])]
    return sorted(boxes, key=lambda b: -b[2] * b[3])  # type: ignore[return-value]


def crop_face(rgb: np.ndarray, face: tuple[int, int, int, int], size: int = CROP_SIZE) -> np.ndarray:
    """Square crop centred on `face` (side = face side * CROP_MARGIN, edges replicated) -> size x size RGB."""
    import cv2

    x, y, w, h = face
    side = int(round(max(w, h) * CROP_MARGIN))
    cx, cy = x + w / 2, y + h / 2 + 0.08 * h          # a little lower: keep the chin
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    H, W = rgb.shape[:2]
    pad = max(0, -x0, -y0, x0 + side - W, y0 + side - H)
    if pad:
        rgb = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + pad, y0 + pad
    crop = rgb[y0:y0 + side, x0:x0 + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(crop, (size, size), interpolation=interp))


def check_portrait(data: bytes | str | Path) -> PortraitCheck:
    """Validate an identity portrait and return its model crop; raises PortraitRejected with the reason."""
    rgb = decode_image(data)
    faces = detect_faces(rgb)
    if not faces:
        raise PortraitRejected("no_face", "No face found. Use a well-lit, front-facing photo of one person.")
    if len(faces) > 1:
        raise PortraitRejected("several_faces",
                               f"{len(faces)} faces found. The portrait must show exactly one person.")
    face = faces[0]
    if min(face[2], face[3]) < MIN_FACE_PX:
        raise PortraitRejected("tiny_face", f"The face is only {face[2]} px wide; it must be at least "
                               f"{MIN_FACE_PX} px. Use a larger or closer photo.")
    return PortraitCheck(crop=crop_face(rgb, face), face=face, image_size=(rgb.shape[1], rgb.shape[0]))
