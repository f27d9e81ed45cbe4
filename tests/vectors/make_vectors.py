"""Generate the protocol v2 golden test vectors (deterministic): `python tests/vectors/make_vectors.py`.

For every vector NAME it writes NAME.msgpack (the exact bytes of the header frame) and NAME.json (what a
decoder must make of it). The format is described in tests/vectors/README.md; the Python, C# and
JavaScript codecs all test against these files.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import msgpack

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sdk.protocol import messages as m  # noqa: E402
from sdk.protocol.codec import pack_header, topic_for  # noqa: E402
from sdk.protocol.constants import MAX_TEXT_CHARS as MAX_TEXT  # noqa: E402

OUT = Path(__file__).resolve().parent
HEX_KEY = "$hex"   # a bytes value inside a header is written to JSON as {"$hex": "<lowercase hex>"}


def payload(n: int) -> bytes:
    """The deterministic payload of every vector: bytes(i % 251 for i in range(n))."""
    return bytes(i % 251 for i in range(n))


def to_json(obj: Any) -> Any:
    """A decoded msgpack value as JSON (bytes -> {"$hex": ...})."""
    if isinstance(obj, (bytes, bytearray)):
        return {HEX_KEY: bytes(obj).hex()}
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    return obj


VECTORS: list[dict] = []


def add(name: str, direction: str, header: bytes, *, valid: bool, payload_len: int = 0, frames: int | None = None,
        topic: bytes | None = None, error_code: str | None = None, note: str = "") -> None:
    """Register one vector. Control frames: [header, payload*]; media frames: [topic, header, payload?]."""
    if frames is None:
        frames = (2 if direction == "media" else 1) + (1 if payload_len else 0)
    try:
        decoded: Any = to_json(msgpack.unpackb(header, raw=False))
    except Exception:
        decoded = None
    entry = {
        "name": name,
        "direction": direction,
        "valid": valid,
        "header": decoded,
        "header_hex": header.hex(),
        "frames": frames,
        "payload_len": payload_len,
        "payload_sha256": hashlib.sha256(payload(payload_len)).hexdigest(),
    }
    if direction == "media":
        entry["topic"] = (topic or b"").decode("ascii", "replace")
    if not valid:
        entry["error_code"] = error_code
    if note:
        entry["note"] = note
    VECTORS.append({"entry": entry, "header": header})


def raw(obj: dict) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


KEY = "0123456789abcdef0123456789abcdef"     # a session's media key (the daemon draws 128 random bits)
SECRET = "Zx9-secret-from-opened_0123456789ab"  # a session's secret (the daemon draws 192 random bits)


def valid(name: str, direction: str, msg: Any, payload_len: int = 0, note: str = "") -> None:
    topic = topic_for(KEY) if direction == "media" else None
    add(name, direction, pack_header(msg), valid=True, payload_len=payload_len, topic=topic, note=note)


def build() -> None:
    S = "s0001"
    persona = m.Persona(name="Ada", system_prompt="You are Ada, a cheerful guide.", greeting="Hi! I am Ada.",
                        voice="joe", model="tiny", character=None)
    # ---- client -> daemon
    valid("client_hello", "client", m.Hello(req=1, versions=[2], client="vector-test/1.0"))
    valid("client_hello_multi", "client", m.Hello(req=2, versions=[3, 2, 1], client=""))
    valid("client_open_default", "client", m.Open(req=3))
    valid("client_open_portrait", "client", m.Open(req=4, persona=persona, has_portrait=True), payload_len=1000,
          note="payload frame = the portrait file bytes (not a real image in this vector)")
    valid("client_open_first_utt", "client", m.Open(req=14, video_size=512, first_utt=8),
          note="re-opening after a daemon restart: utterance ids continue at 8")
    valid("client_resume", "client", m.Resume(req=15, session=S, secret=SECRET))
    valid("client_chat", "client", m.Chat(req=5, session=S, text="Hello there! Ünïcödé ✓"))
    valid("client_speak", "client", m.Speak(req=6, session=S, text="Welcome to the stream."))
    valid("client_audio", "client", m.Audio(req=7, session=S, sample_rate=16000, final=False), payload_len=640)
    valid("client_audio_final", "client", m.Audio(req=8, session=S, sample_rate=48000, final=True),
          payload_len=960)
    valid("client_interrupt", "client", m.Interrupt(req=9, session=S))
    valid("client_set_persona", "client", m.SetPersona(req=10, session=S, persona=persona))
    valid("client_close", "client", m.Close(req=11, session=S))
    valid("client_ping", "client", m.Ping(req=12))
    valid("client_ping_session", "client", m.Ping(req=13, session=S))
    valid("client_load", "client", m.Load(req=16))
    # ---- daemon -> client
    valid("server_welcome", "server", m.Welcome(req=1, version=2, server="xstreamer/0.1.0 model=tiny",
                                                media_endpoint="tcp://127.0.0.1:7571", heartbeat_ms=1000,
                                                session_timeout_s=30.0))
    valid("server_opened", "server", m.Opened(req=4, session=S, topic=topic_for(KEY).decode(),
                                              secret=SECRET, model="tiny",
                                              warnings=["portrait: face is small"]))
    valid("server_ack", "server", m.Ack(req=5, session=S, utt=3))
    valid("server_pong", "server", m.Pong(req=12, sessions=2, state="ok"))
    valid("server_error", "server", m.Error(req=2, code=m.ErrorCode.UNSUPPORTED_VERSION,
                                            message="no common protocol version", supported_versions=[2]))
    valid("server_error_not_owner", "server", m.Error(req=6, code=m.ErrorCode.NOT_OWNER,
                                                      message="the session belongs to another connection",
                                                      session=S))
    valid("server_error_rate_limited", "server", m.Error(req=7, code=m.ErrorCode.RATE_LIMITED,
                                                         message="more than 100 requests a second"))
    valid("server_load_report", "server", m.LoadReport(req=16, model="default", sessions=3, capacity=4,
                                                       capacity_source="bench", accepting=True, utilization=0.62,
                                                       fps_min=25.0, rss_mb=1520.5, gpu_mb=0.0, replicas=1))
    valid("server_error_busy", "server", m.Error(req=17, code=m.ErrorCode.BUSY,
                                                 message="busy: this daemon holds 4 sessions in real time (bench: "
                                                         "docs/performance.md); 4 open"))
    valid("server_error_session", "server", m.Error(req=5, code=m.ErrorCode.UNKNOWN_SESSION,
                                                    message="no session 'zz'", session="zz"))
    # ---- media (daemon -> subscribers)
    valid("media_audio", "media", m.AudioPacket(session=S, utt=3, seq=120, pts=105840), payload_len=882 * 2)
    valid("media_video", "media", m.VideoPacket(session=S, utt=3, seq=121, pts=105840),
          payload_len=256 * 256 * 3)
    valid("media_video_rgba512", "media", m.VideoPacket(session=S, utt=3, seq=121, pts=105840, width=512,
                                                         height=512, format="rgba32"), payload_len=512 * 512 * 4)
    valid("media_motion", "media", m.MotionPacket(session=S, utt=3, seq=123, pts=105840),
          payload_len=len(m.MOTION_CHANNELS) * 4)
    valid("media_text", "media", m.TextPacket(session=S, utt=3, seq=122, pts=105840, text="Hello, I'm Ada.",
                                              role="assistant", final=False))
    valid("media_text_user", "media", m.TextPacket(session=S, utt=4, seq=200, pts=200000,
                                                   text="what's up", role="user", final=True))
    for ev in ("utterance_start", "utterance_end", "interrupted", "session_closed", "lost", "moved"):
        reason = {"interrupted": "client", "moved": "replica lost (replica-0: ActorDiedError); reopened on replica-1"}
        valid(f"media_event_{ev}", "media", m.EventPacket(session=S, utt=0 if ev == "moved" else 3, seq=123,
                                                          pts=106722, event=ev, reason=reason.get(ev, "")))
    valid("media_state", "media", m.StatePacket(session=S, utt=0, seq=7, pts=4410, state="idle", fps=25.0,
                                                lead_ms=320.5, model="tiny"))
    valid("media_video_idle_big_pts", "media", m.VideoPacket(session=S, utt=0, seq=2 ** 33, pts=2 ** 40),
          payload_len=256 * 256 * 3)

    # ---- invalid ones
    def bad(name: str, direction: str, header: bytes, code: m.ErrorCode, **kw: Any) -> None:
        add(name, direction, header, valid=False, error_code=code.value, **kw)

    E = m.ErrorCode
    chat = m.Chat(req=5, session=S, text="hi").model_dump()
    bad("invalid_not_msgpack", "client", b"\xc1\x00\xff", E.MALFORMED)
    bad("invalid_truncated_msgpack", "client", pack_header(m.Chat(session=S, text="hello"))[:-3], E.MALFORMED)
    bad("invalid_not_a_map", "client", raw([1, "chat"]), E.MALFORMED)
    bad("invalid_missing_version", "client", raw({k: v for k, v in chat.items() if k != "v"}), E.MALFORMED)
    bad("invalid_version_bool", "client", raw({**chat, "v": True}), E.MALFORMED)
    bad("invalid_unsupported_version", "client", raw({**chat, "v": 1}), E.UNSUPPORTED_VERSION)
    bad("invalid_hello_version_99", "client", raw({"v": 99, "type": "hello", "req": 1, "versions": [99]}),
        E.UNSUPPORTED_VERSION)
    bad("invalid_missing_field", "client", raw({k: v for k, v in chat.items() if k != "text"}), E.MALFORMED)
    bad("invalid_wrong_type", "client", raw({**chat, "text": 5}), E.MALFORMED)
    bad("invalid_wrong_type_req", "client", raw({**chat, "req": "five"}), E.MALFORMED)
    bad("invalid_req_string_digits", "client", raw({**chat, "req": "7"}), E.MALFORMED)
    bad("invalid_req_float", "client", raw({**chat, "req": 7.0}), E.MALFORMED)
    bad("invalid_req_bool", "client", raw({**chat, "req": True}), E.MALFORMED)
    bad("invalid_hello_no_versions", "client", raw({"v": 2, "type": "hello", "req": 1}), E.MALFORMED)
    bad("invalid_hello_empty_versions", "client", raw({"v": 2, "type": "hello", "req": 1, "versions": []}),
        E.MALFORMED)
    bad("invalid_audio_final_int", "client", raw({**m.Audio(session=S).model_dump(), "final": 1}),
        E.MALFORMED, payload_len=640)
    bad("invalid_extra_field", "client", raw({**chat, "colour": "red"}), E.MALFORMED)
    bad("invalid_unknown_type", "client", raw({"v": 2, "type": "dance", "req": 1}), E.UNKNOWN_TYPE)
    bad("invalid_missing_type", "client", raw({"v": 2, "req": 1}), E.UNKNOWN_TYPE)
    bad("invalid_server_type_from_client", "client", pack_header(m.Pong(req=1)), E.UNKNOWN_TYPE)
    bad("invalid_empty_text", "client", pack_header(m.Chat(req=1, session=S, text="   ")), E.EMPTY_TEXT)
    bad("invalid_text_too_long", "client", pack_header(m.Speak(req=1, session=S, text="a" * (MAX_TEXT + 1))),
        E.TEXT_TOO_LONG)
    bad("invalid_chat_extra_frame", "client", pack_header(m.Chat(req=1, session=S, text="hi")), E.MALFORMED,
        payload_len=10)
    bad("invalid_open_portrait_missing", "client", pack_header(m.Open(req=1, has_portrait=True)), E.MALFORMED)
    bad("invalid_open_extra_frame", "client", pack_header(m.Open(req=1)), E.MALFORMED, payload_len=10,
        note="an open without has_portrait takes no blob")
    bad("invalid_audio_odd_bytes", "client", pack_header(m.Audio(req=1, session=S)), E.INVALID_AUDIO,
        payload_len=641)
    bad("invalid_audio_no_blob", "client", pack_header(m.Audio(req=1, session=S)), E.INVALID_AUDIO)
    bad("invalid_audio_rate", "client", raw({**m.Audio(session=S).model_dump(), "sample_rate": 1000}),
        E.MALFORMED, payload_len=640)
    bad("invalid_audio_too_long_8k", "client", pack_header(m.Audio(req=1, session=S, sample_rate=8000)),
        E.INVALID_AUDIO, payload_len=8000 * 2 * 10 + 2, note="10 s + 1 sample at the declared 8 kHz")
    bad("invalid_server_unknown_type", "server", raw({"v": 2, "type": "surprise", "req": 0}), E.UNKNOWN_TYPE)
    bad("invalid_server_unsupported_version", "server", raw({**m.Pong().model_dump(), "v": 7}),
        E.UNSUPPORTED_VERSION)
    audio = m.AudioPacket(session=S, utt=1, seq=1, pts=882)
    video = m.VideoPacket(session=S, utt=1, seq=2, pts=882)
    bad("invalid_media_audio_size", "media", pack_header(audio), E.MALFORMED, payload_len=882 * 2 - 2,
        topic=topic_for(KEY), note="payload size mismatch")
    bad("invalid_media_video_size", "media", pack_header(video), E.MALFORMED, payload_len=256 * 256 * 3 + 3,
        topic=topic_for(KEY), note="payload size mismatch")
    bad("invalid_media_video_no_payload", "media", pack_header(video), E.MALFORMED, topic=topic_for(KEY))
    bad("invalid_media_text_with_payload", "media",
        pack_header(m.TextPacket(session=S, utt=1, seq=3, pts=882, text="x")), E.MALFORMED, payload_len=4,
        topic=topic_for(KEY))
    bad("invalid_media_negative_seq", "media", raw({**audio.model_dump(), "seq": -1}), E.MALFORMED,
        payload_len=882 * 2, topic=topic_for(KEY))
    bad("invalid_media_unknown_event", "media",
        raw({**m.EventPacket(session=S, utt=1, seq=4, pts=0, event="interrupted").model_dump(), "event": "boom"}),
        E.MALFORMED, topic=topic_for(KEY))
    bad("invalid_media_unsupported_version", "media", raw({**audio.model_dump(), "v": 1}),
        E.UNSUPPORTED_VERSION, payload_len=882 * 2, topic=topic_for(KEY))



def main() -> int:
    VECTORS.clear()
    build()
    names = [v["entry"]["name"] for v in VECTORS]
    assert len(names) == len(set(names)), "duplicate vector names"
    for old in list(OUT.glob("*.msgpack")) + [p for p in OUT.glob("*.json") if p.name != "index.json"]:
        old.unlink()
    for v in VECTORS:
        name = v["entry"]["name"]
        (OUT / f"{name}.msgpack").write_bytes(v["header"])
        (OUT / f"{name}.json").write_text(json.dumps(v["entry"], indent=2, ensure_ascii=False) + "\n",
                                          encoding="utf-8")
    (OUT / "index.json").write_text(json.dumps({"protocol_version": m.PROTOCOL_VERSION, "vectors": names},
                                               indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(VECTORS)} vectors to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
