"""Encoding and decoding of protocol v1 multipart messages (msgpack header + raw binary frames).

    frames = encode(Chat(session="s1", text="hi"))            # -> [header]
    msg, blobs = decode_client(frames)                          # -> (Chat(...), [])
    frames = encode_media(VideoPacket(...), payload=rgb_bytes)  # -> [topic, header, payload]
    pkt, payload = decode_media(frames)

Decoding never raises anything but `ProtocolError` (with an `ErrorCode`), whatever the bytes.
"""

from __future__ import annotations

from typing import Any, Sequence

import msgpack
from pydantic import TypeAdapter, ValidationError

from .constants import MAX_HEADER_BYTES
from .errors import ProtocolError
from .messages import (
    MAX_AUDIO_SAMPLES,
    MAX_PORTRAIT_BYTES,
    MAX_TEXT_CHARS,
    SUPPORTED_VERSIONS,
    TOPIC_PREFIX,
    VIDEO_FORMATS,
    AudioPacket,
    ClientMessage,
    ErrorCode,
    MediaPacket,
    MotionPacket,
    ServerMessage,
    VideoPacket,
)

_client = TypeAdapter(ClientMessage)
_server = TypeAdapter(ServerMessage)
_media = TypeAdapter(MediaPacket)


def pack_header(msg: Any) -> bytes:
    """msgpack bytes of a message's header (a map; bytes stay bytes)."""
    return msgpack.packb(msg.model_dump(mode="python", exclude_none=False), use_bin_type=True)


def unpack_header(raw: bytes) -> dict:
    """Parse a header frame into a dict, or raise ProtocolError(MALFORMED/UNSUPPORTED_VERSION)."""
    if not isinstance(raw, (bytes, bytearray, memoryview)) or len(raw) > MAX_HEADER_BYTES:
        raise ProtocolError(ErrorCode.MALFORMED, "header frame missing or larger than 64 KiB")
    try:
        obj = msgpack.unpackb(bytes(raw), raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated exception types
        raise ProtocolError(ErrorCode.MALFORMED, f"header is not msgpack: {type(exc).__name__}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(ErrorCode.MALFORMED, "header is not a msgpack map")
    version = obj.get("v")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ProtocolError(ErrorCode.MALFORMED, "header lacks an integer 'v' (protocol version)")
    if version not in SUPPORTED_VERSIONS:
        raise ProtocolError(ErrorCode.UNSUPPORTED_VERSION,
                            f"protocol version {version} is not supported (supported: {list(SUPPORTED_VERSIONS)})")
    return obj


def _validate(adapter: TypeAdapter, obj: dict) -> Any:
    try:
        return adapter.validate_python(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        code = ErrorCode.UNKNOWN_TYPE if first.get("type") in ("union_tag_invalid", "union_tag_not_found") \
            else ErrorCode.MALFORMED
        raise ProtocolError(code, f"{where}: {first.get('msg')}") from None


def encode(msg: Any, *blobs: bytes) -> list[bytes]:
    """Frames of a control message: [header, *blobs]."""
    return [pack_header(msg), *blobs]


def decode_client(frames: Sequence[bytes]) -> tuple[Any, list[bytes]]:
    """Decode a client -> daemon message (frames after the ROUTER identity). Checks blob limits."""
    if not frames:
        raise ProtocolError(ErrorCode.MALFORMED, "empty message")
    msg = _validate(_client, unpack_header(frames[0]))
    blobs = [bytes(f) for f in frames[1:]]
    kind = msg.type
    if kind in ("chat", "speak"):
        if not msg.text.strip():
            raise ProtocolError(ErrorCode.EMPTY_TEXT, f"{kind} text is empty", session=msg.session)
        if len(msg.text) > MAX_TEXT_CHARS:
            raise ProtocolError(ErrorCode.TEXT_TOO_LONG,
                                f"{kind} text has {len(msg.text)} characters (at most {MAX_TEXT_CHARS})",
                                session=msg.session)
    elif kind == "open":
        if msg.has_portrait and (len(blobs) != 1 or not blobs[0]):
            raise ProtocolError(ErrorCode.MALFORMED, "open with has_portrait needs exactly one non-empty blob")
        if blobs and len(blobs[0]) > MAX_PORTRAIT_BYTES:
            raise ProtocolError(ErrorCode.INVALID_PORTRAIT, "portrait is larger than 16 MiB")
    elif kind == "audio":
        if len(blobs) != 1 or len(blobs[0]) % 2:
            raise ProtocolError(ErrorCode.INVALID_AUDIO, "audio needs one blob of PCM16 (an even byte count)",
                                session=msg.session)
        if len(blobs[0]) // 2 > MAX_AUDIO_SAMPLES:
            raise ProtocolError(ErrorCode.INVALID_AUDIO, "audio message longer than 10 s", session=msg.session)
    if kind not in ("open", "audio") and blobs:
        raise ProtocolError(ErrorCode.MALFORMED, f"{kind} takes no binary frames")
    return msg, blobs


def decode_server(frames: Sequence[bytes]) -> tuple[Any, list[bytes]]:
    """Decode a daemon -> client control message."""
    if not frames:
        raise ProtocolError(ErrorCode.MALFORMED, "empty message")
    return _validate(_server, unpack_header(frames[0])), [bytes(f) for f in frames[1:]]


def topic_for(session: str) -> bytes:
    return TOPIC_PREFIX + session.encode("ascii")


def encode_media(pkt: Any, payload: bytes | memoryview | None = None) -> list[Any]:
    """Frames of a media packet: [topic, header] or [topic, header, payload]."""
    frames: list[Any] = [topic_for(pkt.session), pack_header(pkt)]
    if payload is not None:
        frames.append(payload)
    return frames


def decode_media(frames: Sequence[bytes]) -> tuple[Any, bytes | None]:
    """Decode [topic, header, payload?]; checks the payload size against the header."""
    if len(frames) not in (2, 3):
        raise ProtocolError(ErrorCode.MALFORMED, f"media message has {len(frames)} frames (2 or 3 expected)")
    pkt = _validate(_media, unpack_header(frames[1]))
    if bytes(frames[0]) != topic_for(pkt.session):
        raise ProtocolError(ErrorCode.MALFORMED, "topic does not match the packet's session")
    payload = bytes(frames[2]) if len(frames) == 3 else None
    expected = None
    if isinstance(pkt, AudioPacket):
        expected = pkt.samples * 2
    elif isinstance(pkt, VideoPacket):
        expected = pkt.width * pkt.height * VIDEO_FORMATS[pkt.format]
    elif isinstance(pkt, MotionPacket):
        expected = pkt.channels * 4
    if expected is not None and (payload is None or len(payload) != expected):
        got = None if payload is None else len(payload)
        raise ProtocolError(ErrorCode.MALFORMED, f"{pkt.type} payload has {got} bytes, header says {expected}")
    if expected is None and payload is not None:
        raise ProtocolError(ErrorCode.MALFORMED, f"{pkt.type} packets carry no payload")
    return pkt, payload


def json_schema() -> dict:
    """JSON Schema of every v1 header (client, server and media messages)."""
    return {
        "protocol_version": 1,
        "client_messages": _client.json_schema(),
        "server_messages": _server.json_schema(),
        "media_packets": _media.json_schema(),
    }
