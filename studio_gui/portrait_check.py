"""The chooser's view of `sdk.portrait`: the frame the engine will use, or why a picture is refused.

`check_portrait(data, face_points=None)` runs `sdk.portrait.load_portrait` (the one module the engine uses too:
same decode, same face finding, same crop) and returns what the chooser shows; every refusal is a
`PortraitRejected` whose `reason` is ``unreadable``, ``no_face`` (five points can place the face),
``several_faces``, ``tiny_face`` or ``bad_points``, and whose message is a sentence for the user. It may run on
any thread (the studio checks images off the GUI thread).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sdk.portrait import LandmarkerUnavailableError, PortraitError, decode_image, load_portrait
from sdk.protocol import FRAME_SIZE

CROP_SIZE = FRAME_SIZE
POINT_NAMES = ("the centre of the left eye", "the centre of the right eye", "the tip of the nose",
               "the left corner of the mouth", "the right corner of the mouth")   # left/right as in the picture
NO_FACE_HINT = ("No face found. Press “Place face points…” and click the eyes, the tip of the nose and the "
                "corners of the mouth.")


class PortraitRejected(ValueError):
    """The image cannot be used as an identity portrait; `reason` is a stable code, str() is for users."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class PortraitCheck:
    """An accepted portrait, as the engine will use it.

    crop:         uint8 [S, S, 3] RGB or [S, S, 4] RGBA: the avatar's frame at rest (sdk.portrait's `image`)
    landmarks:    float32 [68, 2] face landmarks in `crop` pixels
    face:         (x, y, w, h) of the face in source pixels
    image_size:   (w, h) of the source
    found_by:     "detector", "cascade" or "face_points"
    face_points:  the five points it was placed with (source pixels), or None
    """

    crop: np.ndarray
    landmarks: np.ndarray
    face: tuple[int, int, int, int]
    image_size: tuple[int, int]
    found_by: str
    face_points: list[list[float]] | None = None
    warnings: list[str] = field(default_factory=list)


_REASONS = {"no_face": "no_face", "several_faces": "several_faces", "face_too_small": "tiny_face",
            "bad_points": "bad_points"}


def _reason(exc: PortraitError, with_points: bool) -> str:
    """The chooser's reason for a refusal, from the error's own `reason` (sdk.portrait.errors.REASONS)."""
    reason = _REASONS.get(exc.reason, "unreadable")
    return "unreadable" if reason == "bad_points" and not with_points else reason


def _sentence(reason: str, message: str) -> str:
    if reason == "no_face":
        return NO_FACE_HINT
    text = message[0].upper() + message[1:]
    return text if text.endswith(".") else text + "."


def source_image(data: bytes | str | Path) -> np.ndarray:
    """The decoded picture (uint8 [H, W, 3|4]) the five points are placed on; PortraitRejected when unreadable."""
    try:
        return decode_image(data)
    except PortraitError as exc:
        raise PortraitRejected("unreadable", _sentence("unreadable", exc.message)) from exc


def check_portrait(data: bytes | str | Path, face_points: list | None = None) -> PortraitCheck:
    """The frame `sdk.portrait` makes of `data` (with the user's five `face_points` where given);
    PortraitRejected with the reason otherwise."""
    if isinstance(data, (str, Path)) and not Path(data).is_file():
        raise PortraitRejected("unreadable", f"Cannot open the file {data}: it does not exist any more.")
    try:
        p = load_portrait(data, face_points=face_points, size=CROP_SIZE)
    except PortraitError as exc:
        reason = _reason(exc, face_points is not None)
        raise PortraitRejected(reason, _sentence(reason, exc.message)) from exc
    except LandmarkerUnavailableError as exc:
        raise PortraitRejected("unreadable", f"Faces cannot be found on this machine: {exc}.") from exc
    points = [[float(x), float(y)] for x, y in face_points] if face_points is not None else None
    return PortraitCheck(crop=p.image, landmarks=p.landmarks, face=p.face_box, image_size=p.source_size,
                         found_by=p.found_by, face_points=points, warnings=list(p.warnings))
