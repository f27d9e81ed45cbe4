"""The one error every portrait refusal raises (an `invalid_portrait` protocol error)."""

from __future__ import annotations

from sdk.errors import InvalidInputError
from sdk.protocol.messages import ErrorCode


class PortraitError(InvalidInputError):
    """The portrait is not an image, too large, has no face (and no face points were given), several faces, or a
    face too small to animate. `.code` is `ErrorCode.INVALID_PORTRAIT`."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_PORTRAIT, message)
