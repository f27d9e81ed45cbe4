"""xstreamer wire protocol, version 1 (pydantic models are the single source of truth)."""

from .codec import (decode_client, decode_media, decode_server, encode, encode_media, json_schema,
                    pack_header, topic_for, unpack_header)
from .errors import ProtocolError, UnsupportedVersionError, XStreamerError
from .messages import *  # noqa: F401,F403  (the message models are the public API)
from .messages import (FPS, FRAME_SIZE, PROTOCOL_VERSION, SAMPLE_RATE, SAMPLES_PER_FRAME, ErrorCode, Persona)

__all__ = [
    "decode_client", "decode_media", "decode_server", "encode", "encode_media", "json_schema",
    "pack_header", "topic_for", "unpack_header", "ProtocolError", "UnsupportedVersionError",
    "XStreamerError", "FPS", "FRAME_SIZE", "PROTOCOL_VERSION", "SAMPLE_RATE", "SAMPLES_PER_FRAME",
    "ErrorCode", "Persona",
]
