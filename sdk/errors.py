"""Errors the SDK raises. Every one is a `sdk.protocol.ProtocolError` (with `.code`, an ErrorCode) or the base
`XStreamerError`; a daemon `error` reply becomes the subclass matching its code (see `error_from_reply`)."""

from __future__ import annotations

from typing import Any

from sdk.protocol.errors import ProtocolError, UnsupportedVersionError, XStreamerError
from sdk.protocol.messages import ErrorCode


class NotWelcomedError(ProtocolError):
    """A request reached the daemon before `hello` (the SDK reconnects on it automatically)."""


class UnknownSessionError(ProtocolError):
    """The session does not exist (closed, timed out, or the daemon restarted)."""


class NotOwnerError(ProtocolError):
    """The session belongs to another connection (the SDK resumes its own sessions with their secret)."""


class RateLimitedError(ProtocolError):
    """Too many requests a second from this connection, or too many turns queued in the session."""


class InvalidInputError(ProtocolError):
    """The daemon refused an input: portrait, persona, text or audio (see `.code`)."""


class TooManySessionsError(ProtocolError):
    """The daemon already serves its maximum number of sessions."""


class BusyError(ProtocolError):
    """The daemon holds no more sessions in real time (its capacity, or its open sessions fell behind): try later or
    another daemon; `client.load()` says how loaded it is."""


class DaemonTimeoutError(ProtocolError, TimeoutError):
    """No reply (or no media) from the daemon in time: it is down, restarting or busy. `.code` is
    ErrorCode.UNAVAILABLE, a code the daemon itself never sends."""

    def __init__(self, message: str = "", session: str | None = None, req: int = 0):
        super().__init__(ErrorCode.UNAVAILABLE, message, session=session, req=req)


class ClientClosedError(XStreamerError):
    """The client or the session handle was closed."""


_BY_CODE: dict[ErrorCode, type[ProtocolError]] = {
    ErrorCode.UNSUPPORTED_VERSION: UnsupportedVersionError,
    ErrorCode.NOT_WELCOMED: NotWelcomedError,
    ErrorCode.UNKNOWN_SESSION: UnknownSessionError,
    ErrorCode.NOT_OWNER: NotOwnerError,
    ErrorCode.RATE_LIMITED: RateLimitedError,
    ErrorCode.INVALID_PORTRAIT: InvalidInputError,
    ErrorCode.INVALID_PERSONA: InvalidInputError,
    ErrorCode.EMPTY_TEXT: InvalidInputError,
    ErrorCode.TEXT_TOO_LONG: InvalidInputError,
    ErrorCode.INVALID_AUDIO: InvalidInputError,
    ErrorCode.TOO_MANY_SESSIONS: TooManySessionsError,
    ErrorCode.BUSY: BusyError,
}


def error_from_reply(err: Any) -> ProtocolError:
    """The exception for a daemon `Error` message (keeps code, message, session, req)."""
    cls = _BY_CODE.get(err.code, ProtocolError)
    exc = cls(err.code, err.message, session=err.session, req=err.req)
    if isinstance(exc, UnsupportedVersionError):
        exc.supported_versions = list(err.supported_versions)   # type: ignore[attr-defined]
    return exc


__all__ = ["XStreamerError", "ProtocolError", "UnsupportedVersionError", "NotWelcomedError",
           "UnknownSessionError", "NotOwnerError", "RateLimitedError", "InvalidInputError",
           "TooManySessionsError", "BusyError", "DaemonTimeoutError",
           "ClientClosedError", "error_from_reply"]
