"""The one error every portrait refusal raises (an `invalid_portrait` protocol error)."""

from __future__ import annotations

from sdk.errors import InvalidInputError
from sdk.protocol.messages import ErrorCode


REASONS = ("not_an_image", "too_large", "no_face", "several_faces", "face_too_small", "bad_points", "invalid")


class PortraitError(InvalidInputError):
    """The portrait is not an image, too large, has no face (and no face points were given), several faces, or a
    face too small to animate. `.code` is `ErrorCode.INVALID_PORTRAIT`; `.reason` says which (one of REASONS), so a
    user interface can act on it (e.g. offer to place the face's five points on `no_face`)."""

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(ErrorCode.INVALID_PORTRAIT, message)
        self.reason = reason if reason in REASONS else "invalid"
