"""xstreamer wire protocol, version 2 (pydantic models are the single source of truth; shared numbers live in
`sdk.protocol.constants`, the daemon's ready line in `sdk.protocol.ready`)."""

from . import constants
from .codec import (check_portrait_header, decode_client, decode_media, decode_server, encode, encode_media,
                    json_schema, motion_values, pack_header, peek_req, topic_for, unpack_header)
from .constants import (DEFAULT_CONTROL, DEFAULT_CONTROL_PORT, DEFAULT_HOST, DEFAULT_MEDIA_PORT, FPS,
                        FRAME_SIZE, MAX_PROMPT_CHARS, MAX_REPLY_SENTENCES, MAX_TEXT_CHARS, SAMPLE_RATE,
                        SAMPLES_PER_FRAME, VOICES)
from .errors import ProtocolError, UnsupportedVersionError, XStreamerError
from .messages import *  # noqa: F401,F403  (the message models are the public API)
from .messages import END_EVENTS, PROTOCOL_VERSION, ErrorCode, Persona
from .ready import ReadyLine, format_ready_line, parse_ready_line

__all__ = [
    "constants", "check_portrait_header", "peek_req", "END_EVENTS", "decode_client", "decode_media",
    "decode_server", "encode", "encode_media", "json_schema", "motion_values",
    "pack_header", "topic_for", "unpack_header", "ProtocolError", "UnsupportedVersionError",
    "XStreamerError", "DEFAULT_CONTROL", "DEFAULT_CONTROL_PORT", "DEFAULT_HOST", "DEFAULT_MEDIA_PORT", "FPS",
    "FRAME_SIZE", "MAX_PROMPT_CHARS", "MAX_REPLY_SENTENCES", "MAX_TEXT_CHARS", "PROTOCOL_VERSION",
    "SAMPLE_RATE", "SAMPLES_PER_FRAME", "VOICES", "ErrorCode", "Persona", "ReadyLine", "format_ready_line",
    "parse_ready_line",
]
