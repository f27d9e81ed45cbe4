"""Encoding and decoding of protocol v2 multipart messages (msgpack header + raw binary frames).

    frames = encode(Chat(session="s1", text="hi"))            # -> [header]
    msg, blobs = decode_client(frames)                          # -> (Chat(...), [])
    frames = encode_media(VideoPacket(...), payload=rgb_bytes, topic=b"xs2/<media key>")
    pkt, payload = decode_media(frames, topic=b"xs2/<media key>")

Decoding never raises anything but `ProtocolError` (with an `ErrorCode`), whatever the bytes; what one message
can make the decoder allocate is bounded (MAX_HEADER_BYTES and msgpack's per-object limits).
"""

from __future__ import annotations

import struct

from typing import Any, Sequence

import msgpack
from pydantic import TypeAdapter, ValidationError

from .constants import (MAX_AUDIO_SECONDS, MAX_HEADER_BYTES, MAX_PORTRAIT_BYTES, MAX_PORTRAIT_PIXELS,
                        MAX_TEXT_CHARS, VIDEO_FORMATS)
from .errors import ProtocolError
from .image_size import image_size
from .messages import (
    PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
    TOPIC_PREFIX,
    AudioPacket,
    ClientMessage,
    ErrorCode,
    MediaPacket,
    MotionPacket,
    ServerMessage,
    VideoPacket,
)

_client: TypeAdapter[Any] = TypeAdapter(ClientMessage)
_server: TypeAdapter[Any] = TypeAdapter(ServerMessage)
_media: TypeAdapter[Any] = TypeAdapter(MediaPacket)

# msgpack's limits for one header (<= 64 KiB): no string or list in a valid header comes near them.
_UNPACK_LIMITS = dict(max_str_len=MAX_HEADER_BYTES, max_bin_len=MAX_HEADER_BYTES, max_array_len=1024,
                      max_map_len=64, max_ext_len=0)


def pack_header(msg: Any) -> bytes:
    """msgpack bytes of a message's header (a map; bytes stay bytes)."""
    return bytes(msgpack.packb(msg.model_dump(mode="python", exclude_none=False), use_bin_type=True))


def unpack_header(raw: bytes) -> dict[str, Any]:
    """Parse a header frame into a dict, or raise ProtocolError(MALFORMED/UNSUPPORTED_VERSION)."""
    if not isinstance(raw, (bytes, bytearray, memoryview)) or len(raw) > MAX_HEADER_BYTES:
        raise ProtocolError(ErrorCode.MALFORMED, "header frame missing or larger than 64 KiB",
                            req=peek_req(raw))
    try:
        obj = msgpack.unpackb(bytes(raw), raw=False, strict_map_key=True, **_UNPACK_LIMITS)
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


def peek_req(raw: Any) -> int:
    """The `req` of a header that may be invalid or oversized (so an error reply can still name it), else 0.

    Streams through the top-level map: other keys' values are skipped, not decoded, so a header of any size
    costs no allocation beyond its own bytes. Only a real integer counts (not "7", 7.0 or true)."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        return 0
    try:
        unpacker = msgpack.Unpacker(raw=False, max_buffer_size=max(len(raw), 1), max_str_len=64,
                                   max_bin_len=64, max_array_len=64, max_map_len=64, max_ext_len=0)
        unpacker.feed(bytes(raw))
        for _ in range(min(unpacker.read_map_header(), 64)):
            key = unpacker.unpack()
            if key == "req":
                req = unpacker.unpack()
                return req if type(req) is int and 0 <= req < 2 ** 63 else 0
            unpacker.skip()
    except Exception:  # not msgpack, not a map, a key too long, truncated: no req to name
        return 0
    return 0


def _validate(adapter: TypeAdapter[Any], obj: dict[str, Any], req: int = 0) -> Any:
    try:
        return adapter.validate_python(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        code = ErrorCode.UNKNOWN_TYPE if first.get("type") in ("union_tag_invalid", "union_tag_not_found") \
            else ErrorCode.MALFORMED
        raise ProtocolError(code, f"{where}: {first.get('msg')}", req=req) from None


def encode(msg: Any, *blobs: bytes) -> list[bytes]:
    """Frames of a control message: [header, *blobs]."""
    return [pack_header(msg), *blobs]


def decode_client(frames: Sequence[bytes]) -> tuple[Any, list[bytes]]:
    """Decode a client -> daemon message (frames after the ROUTER identity). Checks the blob rules and limits:
    text length, the portrait's byte size, the audio's length in seconds at its declared rate, and no frames a
    message does not take. Errors carry `req`. (The daemon also reads the portrait's header before anything
    decodes it: `check_portrait_header`.)"""
    if not frames:
        raise ProtocolError(ErrorCode.MALFORMED, "empty message")
    msg = _validate(_client, unpack_header(frames[0]), req=peek_req(frames[0]))
    blobs = [bytes(f) for f in frames[1:]]
    try:
        _check_blobs(msg, blobs)
    except ProtocolError as exc:
        exc.req = msg.req
        raise
    return msg, blobs


def _check_blobs(msg: Any, blobs: list[bytes]) -> None:
    kind = msg.type
    if kind in ("chat", "speak"):
        if not msg.text.strip():
            raise ProtocolError(ErrorCode.EMPTY_TEXT, f"{kind} text is empty", session=msg.session)
        if len(msg.text) > MAX_TEXT_CHARS:
            raise ProtocolError(ErrorCode.TEXT_TOO_LONG,
                                f"{kind} text has {len(msg.text)} characters (at most {MAX_TEXT_CHARS})",
                                session=msg.session)
    elif kind == "open":
        if len(blobs) != (1 if msg.has_portrait else 0) or (blobs and not blobs[0]):
            raise ProtocolError(ErrorCode.MALFORMED, "open takes exactly one non-empty blob (the portrait) "
                                                     "with has_portrait, none without")
        if blobs and len(blobs[0]) > MAX_PORTRAIT_BYTES:
            raise ProtocolError(ErrorCode.INVALID_PORTRAIT,
                                f"the portrait has {len(blobs[0])} bytes (at most 16 MiB)")
    elif kind == "audio":
        if len(blobs) != 1 or len(blobs[0]) % 2:
            raise ProtocolError(ErrorCode.INVALID_AUDIO, "audio needs one blob of PCM16 (an even byte count)",
                                session=msg.session)
        seconds = len(blobs[0]) / 2 / msg.sample_rate
        if seconds > MAX_AUDIO_SECONDS:
            raise ProtocolError(ErrorCode.INVALID_AUDIO, f"one audio message carries {seconds:.2f} s at "
                                f"{msg.sample_rate} Hz (at most {MAX_AUDIO_SECONDS:g} s)",
                                session=msg.session)
    if blobs and kind not in ("open", "audio"):
        raise ProtocolError(ErrorCode.MALFORMED, f"{kind} takes no binary frames",
                            session=getattr(msg, "session", None))


def check_portrait_header(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) of a PNG or JPEG portrait whose size and declared pixel count are within the
    limits (None for another format: sdk.portrait checks its header before decoding it);
    ProtocolError(INVALID_PORTRAIT) otherwise. Reads the header only: nothing is decoded."""
    if len(data) > MAX_PORTRAIT_BYTES:
        raise ProtocolError(ErrorCode.INVALID_PORTRAIT,
                            f"the portrait has {len(data)} bytes (at most 16 MiB)")
    found = image_size(data)
    if found is None:
        return None
    fmt, w, h = found
    if w < 1 or h < 1 or w * h > MAX_PORTRAIT_PIXELS:
        raise ProtocolError(ErrorCode.INVALID_PORTRAIT, f"the portrait is {w}x{h} pixels (at most "
                            f"{MAX_PORTRAIT_PIXELS:,} pixels; checked before decoding)")
    return found


def decode_server(frames: Sequence[bytes]) -> tuple[Any, list[bytes]]:
    """Decode a daemon -> client control message."""
    if not frames:
        raise ProtocolError(ErrorCode.MALFORMED, "empty message")
    return _validate(_server, unpack_header(frames[0])), [bytes(f) for f in frames[1:]]


def topic_for(media_key: str) -> bytes:
    """The media topic of a session: b"xs2/" + its media key (ASCII)."""
    return TOPIC_PREFIX + media_key.encode("ascii")


def encode_media(pkt: Any, payload: bytes | memoryview | None = None, *, topic: bytes) -> list[Any]:
    """Frames of a media packet: [topic, header] or [topic, header, payload]."""
    frames: list[Any] = [topic, pack_header(pkt)]
    if payload is not None:
        frames.append(payload)
    return frames


def decode_media(frames: Sequence[bytes], topic: bytes | None = None) -> tuple[Any, bytes | None]:
    """Decode [topic, header, payload?]; checks the payload size against the header and, when `topic` is
    given, that the message came on it."""
    if len(frames) not in (2, 3):
        raise ProtocolError(ErrorCode.MALFORMED, f"media message has {len(frames)} frames (2 or 3 expected)")
    if topic is not None and bytes(frames[0]) != topic:
        raise ProtocolError(ErrorCode.MALFORMED, "media message on another topic")
    pkt = _validate(_media, unpack_header(frames[1]))
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


def motion_values(packet: Any, payload: bytes | None, names: Sequence[str]) -> dict[str, float]:
    """A `motion` packet's payload as {channel name: value}, the names being the session's
    `opened.motion_channels` (ProtocolError(MALFORMED) for another packet type or a payload of another size)."""
    if getattr(packet, "type", None) != "motion" or payload is None:
        raise ProtocolError(ErrorCode.MALFORMED, "not a motion packet with its payload")
    if len(payload) != 4 * len(names) or packet.channels != len(names):
        raise ProtocolError(ErrorCode.MALFORMED, f"motion packet of {len(payload) // 4} values for "
                                                 f"{len(names)} channel names")
    values = struct.unpack(f"<{len(names)}f", payload)
    return dict(zip(names, values))


def json_schema() -> dict[str, Any]:
    """JSON Schema of every v2 header (client, server and media messages)."""
    return {
        "protocol_version": PROTOCOL_VERSION,
        "client_messages": _client.json_schema(),
        "server_messages": _server.json_schema(),
        "media_packets": _media.json_schema(),
    }
