"""Portraits: the one module that decodes a user's picture, finds its face and cuts the frame the avatar is made of.

Torch-free, so the studio shows exactly what the engine will use:

    p = load_portrait("me.png")                       # or bytes, or a uint8 array; size=512 for 512x512 frames
    p.image        # uint8 [size, size, 3] RGB, or [size, size, 4] RGBA when the picture has transparency
    p.landmarks    # float32 [68, 2], dlib's 68-point layout in p.image's pixels
    load_portrait(data, face_points=[[x, y]] * 5)     # where no face is found: eyes, nose tip, mouth corners

Every refusal is a `PortraitError` (protocol code `invalid_portrait`) saying why: not an image, too many pixels,
no face (with how to place the five points), several faces, a face too small.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sdk.portrait.errors import PortraitError
from sdk.portrait.framing import crop, frame_box
from sdk.portrait.image import Source, decode_image
from sdk.portrait.landmarks import (MIN_FACE_PX, NO_FACE, LandmarkerUnavailableError, find_face, fit_five_points,
                                    given_face)
from sdk.protocol.constants import FRAME_SIZE, VIDEO_SIZES


@dataclass
class Portrait:
    """A usable portrait.

    image:        uint8 [size, size, 3] RGB or [size, size, 4] RGBA (straight alpha) - the avatar's frame at rest
    landmarks:    float32 [68, 2] face landmarks in `image` pixels (dlib's 68-point layout)
    face_box:     (x, y, w, h) of the landmarks' bounding box in source pixels
    crop_box:     (x, y, side, side) of the frame in source pixels (may extend past the source's edges)
    source_size:  (width, height) of the decoded source image
    found_by:     "detector" (dlib), "cascade" (OpenCV, then dlib's landmarks), "face_points" (the user's) or
                  "given" (landmarks known from elsewhere, e.g. a built-in character's drawing)
    source_landmarks: float32 [68, 2] the landmarks in source pixels (what a chooser draws on the picture)
    """

    image: np.ndarray
    landmarks: np.ndarray
    face_box: tuple[int, int, int, int]
    crop_box: tuple[int, int, int, int]
    source_size: tuple[int, int]
    found_by: str
    source_landmarks: np.ndarray
    warnings: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        """Side of the square frame in pixels."""
        return int(self.image.shape[0])

    @property
    def has_alpha(self) -> bool:
        """Whether the frame carries an alpha channel (a picture with transparency)."""
        return self.image.shape[2] == 4

    @property
    def rgb(self) -> np.ndarray:
        """The frame without its alpha channel: uint8 [size, size, 3]."""
        return np.ascontiguousarray(self.image[:, :, :3])


def load_portrait(data: Source, face_points: np.ndarray | list | None = None, size: int = FRAME_SIZE,
                  landmarks: np.ndarray | tuple | list | None = None) -> Portrait:
    """Decode `data` (image file bytes, a path, or a uint8 RGB/RGBA array), find its one face (or place it from five
    `face_points`, or take its 68 `landmarks` as given, both in source pixels), and cut the square
    head-and-shoulders frame at `size` (one of VIDEO_SIZES). PortraitError on any refusal."""
    if size not in VIDEO_SIZES:
        raise PortraitError(f"frame size {size} is not one of {VIDEO_SIZES}")
    source = decode_image(data)
    h, w = source.shape[:2]
    if min(h, w) < MIN_FACE_PX:
        raise PortraitError(f"the portrait is too small ({w}x{h} px) to hold a usable face")
    if landmarks is not None:
        face = given_face(source, landmarks)
    else:
        face = find_face(source) if face_points is None else fit_five_points(source, face_points)
    x0, y0, side = frame_box(face.landmarks, w, h)
    image = crop(source, (x0, y0, side), size)
    landmarks = ((face.landmarks - [x0, y0]) * (size / side)).astype(np.float32)
    return Portrait(image=image, landmarks=landmarks, face_box=face.box, crop_box=(x0, y0, side, side),
                    source_size=(w, h), found_by=face.found_by,
                    source_landmarks=face.landmarks.astype(np.float32))


__all__ = ["Portrait", "PortraitError", "LandmarkerUnavailableError", "load_portrait", "decode_image", "NO_FACE"]
