"""Typed protocol errors. Every decode failure is a ProtocolError carrying an ErrorCode."""

from __future__ import annotations

from .messages import ErrorCode


class XStreamerError(Exception):
    """Base class of every error the SDK raises."""


class ProtocolError(XStreamerError):
    """A message broke the protocol, or the daemon answered with an `error` message."""

    def __init__(self, code: ErrorCode, message: str = "", session: str | None = None, req: int = 0):
        super().__init__(f"[{code.value}] {message}")
        self.code = code
        self.message = message
        self.session = session
        self.req = req


class UnsupportedVersionError(ProtocolError):
    """Client and daemon share no protocol version."""
