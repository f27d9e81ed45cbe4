"""Typed errors of the engine. Each carries a stable `code` that the daemon maps onto protocol error codes."""

from __future__ import annotations


class EngineError(Exception):
    """Base class of every error the engine raises on bad input."""

    code = "internal"


class PortraitError(EngineError):
    """The portrait is not an image, has no face, several faces, or a face too small to use."""

    code = "invalid_portrait"


class PersonaError(EngineError):
    """The persona is empty or invalid."""

    code = "invalid_persona"


class TextError(EngineError):
    """A chat/speak text is empty or too long."""

    code = "empty_text"


class AudioError(EngineError):
    """User audio that cannot be used (wrong dtype, rate, or length)."""

    code = "invalid_audio"


class CheckpointError(EngineError):
    """A checkpoint is missing, unreadable, or of the wrong shape for its config."""

    code = "internal"


class ConfigError(EngineError):
    """An unknown preset or an inconsistent config."""

    code = "internal"


class BackendUnavailableError(EngineError):
    """A Thinker/codec backend's weights or packages are not present on this machine."""

    code = "internal"
