"""Typed errors of the engine. Each carries a stable `code`; the daemon maps it onto a protocol v2 ErrorCode
(`engine_core.daemon.server.error_code_of`): input errors share their code with the protocol, while
bad_checkpoint / bad_config / backend_unavailable (load-time errors, printed by the CLI) reach a client as
`internal`."""

from __future__ import annotations

from sdk.portrait.errors import PortraitError  # noqa: F401  (the one portrait error: sdk.portrait owns portraits)


class EngineError(Exception):
    """Base class of every error the engine raises on bad input."""

    code = "internal"


class PersonaError(EngineError):
    """The persona is empty or invalid."""

    code = "invalid_persona"


class TextError(EngineError):
    """A chat/speak text that cannot be used; the base class is raised for an empty text."""

    code = "empty_text"


class TextTooLongError(TextError):
    """A chat/speak text longer than the engine accepts (engine_core.engine.inputs.MAX_TEXT_CHARS)."""

    code = "text_too_long"


class ContextOverflowError(TextTooLongError):
    """The newest turn (with the system prompt) does not fit in the Thinker's context, even with every
    earlier turn dropped. The turn is refused; the conversation and the session go on."""


class AudioError(EngineError):
    """User audio that cannot be used (wrong dtype, rate, or length)."""

    code = "invalid_audio"


class CheckpointError(EngineError):
    """A checkpoint is missing, unreadable, of a newer version, or of the wrong shape for its config."""

    code = "bad_checkpoint"


class ConfigError(EngineError):
    """An unknown preset (or model directory) or an inconsistent config."""

    code = "bad_config"


class BackendUnavailableError(EngineError):
    """A Thinker/codec backend's weights or packages are not present on this machine."""

    code = "backend_unavailable"
