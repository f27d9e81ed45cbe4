"""Nothing unbounded, no request without its answer (issue #23, items 3 and 4), over real loopback sockets: a
decompression bomb is refused before decoding, user audio is bounded per message (seconds at the declared
rate) and per turn, an oversized blob or header gets a typed error that names its `req`, a message too large
for the socket is refused by the SDK before it is sent, and the schema's rules hold (`req` a real integer,
`versions` required and non-empty, no stray frames).

Written against the wire (codes compared as strings), so each test also runs against a v1 daemon and fails
there.
"""

from __future__ import annotations

import struct
import zlib

import msgpack
import numpy as np
import pytest

from sdk.client import Client
from sdk.launcher import DaemonProcess
from sdk.protocol import pack_header
from sdk.protocol.messages import PROTOCOL_VERSION, Hello, Open, Ping
from test_daemon_helpers import RawControl, collect_until, is_end

pytestmark = pytest.mark.process


@pytest.fixture(scope="module")
def daemon():
    with DaemonProcess(model="tiny") as d:
        yield d


def _code(reply) -> str:
    return reply.code.value if reply.type == "error" else reply.type


def _raw(control: str) -> RawControl:
    raw = RawControl(control)
    assert raw.call(Hello(req=1, versions=[PROTOCOL_VERSION])).type == "welcome"
    return raw


def _peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM), MB."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def png_bomb(side: int = 20000) -> bytes:
    """A valid 1-bit greyscale PNG of side x side pixels, all black: ~50 KB on disk, side² bytes decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\x00" + bytes((side + 7) // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"), reason="reads /proc (Linux)")
def test_a_decompression_bomb_is_refused_before_anything_decodes_it(daemon):
    bomb = png_bomb()
    assert len(bomb) < 200_000
    before = _peak_rss_mb(daemon.proc.pid)
    with Client(daemon.control, heartbeat=False, timeout=60) as client:
        with pytest.raises(Exception) as info:
            client.open_session(portrait=bomb)
    assert getattr(info.value, "code", None) is not None, info.value
    assert info.value.code.value == "invalid_portrait" and "pixels" in info.value.message, info.value
    assert _peak_rss_mb(daemon.proc.pid) - before < 100, "the daemon decoded the bomb"


def test_user_audio_is_bounded_per_turn(daemon):
    chunk = (np.sin(np.arange(80_000) * 0.05) * 3000).astype(np.int16)      # 10 s at 8 kHz
    with Client(daemon.control, heartbeat=False) as client, client.open_session() as s:
        for _ in range(6):
            assert s.hear(chunk, 8000) is None                               # 60 s: the most a turn takes
        with pytest.raises(Exception) as info:
            s.hear(chunk, 8000)
        assert info.value.code.value == "invalid_audio" and "turn" in info.value.message
        utt = s.hear(chunk[:0], 8000, final=True)                             # the turn still ends normally
        collect_until(s, is_end(utt), timeout=120)
        assert s.hear(chunk, 8000) is None                                    # and the next turn starts at 0


def test_the_audio_limit_is_seconds_at_the_declared_rate(daemon):
    with Client(daemon.control, heartbeat=False) as client, client.open_session() as s:
        assert s.hear(np.zeros(48_000 * 9, np.int16), 48_000) is None        # 9 s at 48 kHz: fine
        with pytest.raises(Exception) as info:
            s.hear(np.zeros(8_000 * 10 + 800, np.int16), 8_000)              # 10.1 s at 8 kHz: too long
        assert info.value.code.value == "invalid_audio"


def test_an_oversized_portrait_gets_a_typed_error_naming_its_req(daemon):
    raw = _raw(daemon.control)
    try:
        raw.send_frames([pack_header(Open(req=42, has_portrait=True)), b"\x89PNG" + bytes(18 * 1024 * 1024)])
        reply = raw.recv(timeout=30)
        assert (_code(reply), reply.req) == ("invalid_portrait", 42)
        assert raw.call(Ping(req=43)).type == "pong"                         # the connection is still ours
    finally:
        raw.close()


def test_an_oversized_header_gets_malformed_naming_its_req(daemon):
    raw = _raw(daemon.control)
    try:
        header = msgpack.packb({"v": PROTOCOL_VERSION, "type": "chat", "session": "s", "text": "x" * 100_000,
                                "req": 77})
        raw.send_frames([header])
        reply = raw.recv()
        assert (_code(reply), reply.req) == ("malformed", 77)
    finally:
        raw.close()


@pytest.mark.parametrize("req", ["7", 7.0, True], ids=["string", "float", "bool"])
def test_req_must_be_an_integer(daemon, req):
    raw = _raw(daemon.control)
    try:
        raw.send_frames([msgpack.packb({"v": PROTOCOL_VERSION, "type": "ping", "req": req})])
        assert _code(raw.recv()) == "malformed"
    finally:
        raw.close()


def test_hello_needs_versions_and_open_takes_no_stray_frame(daemon):
    raw = RawControl(daemon.control)
    try:
        for header in ({"v": PROTOCOL_VERSION, "type": "hello", "req": 1},
                       {"v": PROTOCOL_VERSION, "type": "hello", "req": 2, "versions": []}):
            raw.send_frames([msgpack.packb(header)])
            assert _code(raw.recv()) == "malformed", header
        assert raw.call(Hello(req=3, versions=[PROTOCOL_VERSION])).type == "welcome"
        raw.send_frames([pack_header(Open(req=4)), b"a stray frame"])
        assert _code(raw.recv()) == "malformed"
    finally:
        raw.close()


def test_the_sdk_refuses_a_message_the_socket_would_drop(daemon):
    with Client(daemon.control, heartbeat=False) as client:
        with pytest.raises(Exception) as info:
            client.open_session(portrait=b"\x89PNG" + bytes(24 * 1024 * 1024))
        assert info.value.code.value == "invalid_portrait"
        assert client.reconnects == 0 and client.ping().type == "pong"
