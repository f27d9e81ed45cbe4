"""The Unity core's managed ZeroMQ transport (ZMTP 3.x in C#, no libzmq) against real pyzmq peers on loopback.

A pyzmq ROUTER echoes multipart requests (empty, short, 300-byte and 70,000-byte frames: short and long
frame sizes) and an XPUB publishes to the topic the C# SUB subscribed to (and to another topic, which must
not arrive); the ROUTER is then closed and rebound on the same port and the client reconnects. Run with
the ZMTP 3.1 and 3.0 subscription forms, with NULL security and with CURVE (pyzmq's zmq.auth,
"ironhouse": only the listed client key), and the CURVE refusals: an unlisted client key, a wrong server
key, a client without keys against a CURVE daemon. The mono process never maps a libzmq.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest
from unity_build import MONO, mb

zmq = pytest.importorskip("zmq")
import zmq.auth  # noqa: E402
from zmq.auth.thread import ThreadAuthenticator  # noqa: E402

pytestmark = MONO

TOPIC = b"xs1/transport-test"
SIZES = [0, 10, 300, 70000]


def pattern(n: int, seed: int) -> bytes:
    return bytes((i * 7 + seed) % 251 for i in range(n))


def checksum(b: bytes) -> int:
    s = 0
    for x in b:
        s = (s * 31 + x) & 0x7FFFFFFF
    return s


def frames_json(frames: list[bytes]) -> list[list[int]]:
    return [[len(f), checksum(f)] for f in frames]


PUBLISHED = [
    [TOPIC, b"a"],
    [TOPIC, pattern(300, 1)],
    [TOPIC, pattern(100, 2), pattern(256 * 256 * 3, 3)],
    [TOPIC, b"", b""],
]


class Peer(threading.Thread):
    """ROUTER + XPUB on loopback, optionally CURVE servers; serves until stopped."""

    def __init__(self, ctx, server_secret: bytes | None = None):
        super().__init__(daemon=True)
        self.ctx, self.secret = ctx, server_secret
        self.subscriptions: list[bytes] = []
        self.stop = False
        self.router = self._router()
        self.port = int(self.router.last_endpoint.decode().rsplit(":", 1)[1])
        self.xpub = ctx.socket(zmq.XPUB)
        self._secure(self.xpub)
        self.xpub.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.xpub.linger = 0
        self.xpub.bind("tcp://127.0.0.1:0")
        self.media = self.xpub.last_endpoint.decode()
        self.published = False

    def _secure(self, sock) -> None:
        if self.secret is not None:
            sock.curve_secretkey = self.secret
            sock.curve_publickey = zmq.curve_public(self.secret)
            sock.curve_server = True

    def _router(self, port: int = 0):
        r = self.ctx.socket(zmq.ROUTER)
        self._secure(r)
        r.linger = 0
        r.bind(f"tcp://127.0.0.1:{port}")
        return r

    @property
    def control(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.xpub, zmq.POLLIN)
        while not self.stop:
            events = dict(poller.poll(50))
            if self.xpub in events:
                self.subscriptions.append(self.xpub.recv())
            if self.router not in events:
                continue
            ident, *msg = self.router.recv_multipart()
            if msg[0] == b"echo":
                self.router.send_multipart([ident, *msg])
            elif msg[0] == b"publish" and not self.published and self.subscriptions:
                self.published = True
                self.xpub.send_multipart([b"other/topic", b"must not arrive"])
                for m in PUBLISHED:
                    self.xpub.send_multipart(m)
            elif msg[0] == b"restart":
                self.router.send_multipart([ident, b"ok"])
                time.sleep(0.2)
                poller.unregister(self.router)
                self.router.close(linger=0)
                time.sleep(0.3)
                self.router = self._router(self.port)
                poller.register(self.router, zmq.POLLIN)
        self.router.close(linger=0)
        self.xpub.close(linger=0)


def run_check(*args: str) -> tuple[dict, str]:
    proc = subprocess.run(["mono", "--debug", str(mb.program("TransportCheck")), *args], capture_output=True,
                          text=True, timeout=120)
    tags = {}
    for line in proc.stdout.splitlines():
        tag, _, rest = line.partition(" ")
        tags[tag] = json.loads(rest) if rest.startswith("{") else rest
    assert proc.returncode == 0 and "FAIL" not in tags, proc.stdout + proc.stderr
    return tags, proc.stdout


@pytest.fixture
def ctx():
    c = zmq.Context()
    yield c
    c.destroy(linger=0)


@pytest.fixture
def certs(tmp_path):
    """Server and client certificates as `zmq.auth.create_certificates` writes them; authorized/ holds the client's public one."""
    keys = tmp_path / "keys"
    authorized = tmp_path / "authorized"
    keys.mkdir()
    authorized.mkdir()
    server_pub, server_secret = zmq.auth.create_certificates(str(keys), "server")
    client_pub, client_secret = zmq.auth.create_certificates(str(keys), "client")
    stranger_pub, stranger_secret = zmq.auth.create_certificates(str(keys), "stranger")
    Path(authorized / "client.key").write_text(Path(client_pub).read_text())
    return {
        "authorized": str(authorized),
        "server": zmq.auth.load_certificate(server_secret),
        "client": zmq.auth.load_certificate(client_secret),
        "stranger": zmq.auth.load_certificate(stranger_secret),
    }


@pytest.fixture
def auth(ctx, certs):
    a = ThreadAuthenticator(ctx)
    a.start()
    a.configure_curve(domain="*", location=certs["authorized"])
    yield a
    a.stop()


@pytest.mark.parametrize("minor", [1, 0], ids=["zmtp31", "zmtp30"])
@pytest.mark.parametrize("secure", [False, True], ids=["null", "curve"])
def test_transport_against_pyzmq(ctx, certs, minor, secure, request):
    keys: list[str] = []
    server_secret = None
    if secure:
        request.getfixturevalue("auth")
        server_pub, server_secret = certs["server"]
        client_pub, client_secret = certs["client"]
        keys = [server_pub.decode(), client_pub.decode(), client_secret.decode()]
    peer = Peer(ctx, server_secret)
    peer.start()
    try:
        tags, out = run_check("peer", peer.control, peer.media, TOPIC.decode(), str(minor), *keys)
    finally:
        peer.stop = True
        peer.join(10)
    sent = [b"echo"] + [pattern(n, i) for i, n in enumerate(SIZES)]
    assert tags["ECHO"]["queued"] is True
    assert tags["ECHO"]["frames"] == frames_json(sent) == tags["ECHO"]["sent"], out
    assert tags["MEDIA"]["messages"] == [frames_json(m) for m in PUBLISHED], out
    assert peer.subscriptions[0] == b"\x01" + TOPIC          # libzmq's XPUB saw our subscription
    assert tags["RESTARTING"]["ack"] == frames_json([b"ok"])
    assert tags["RECONNECTED"]["connections"] >= 2
    assert tags["RECONNECTED"]["frames"] == frames_json([b"echo", pattern(5, 9)]), out
    assert tags["DONE"]["errors"] == [], out
    assert tags["LIBZMQ_MAPPED"] == "false"


def _handshake(endpoint: str, *keys: str) -> dict:
    tags, _ = run_check("handshake", endpoint, *(keys or ("-", "-", "-")))
    return tags["HANDSHAKE"]


def test_curve_refusals(ctx, certs, auth):
    server_pub, server_secret = certs["server"]
    peer = Peer(ctx, server_secret)
    peer.start()
    try:
        client_pub, client_secret = certs["client"]
        ok = _handshake(peer.control, server_pub.decode(), "-", client_secret.decode())
        assert ok == {"connected": True, "errors": []}        # the public key is derived from the secret one
        stranger_pub, stranger_secret = certs["stranger"]
        refused = _handshake(peer.control, server_pub.decode(), stranger_pub.decode(), stranger_secret.decode())
        assert refused["connected"] is False
        assert refused["errors"] and all("CURVE refused by the daemon" in e for e in refused["errors"]), refused
        wrong_server = _handshake(peer.control, stranger_pub.decode(), client_pub.decode(), client_secret.decode())
        assert wrong_server["connected"] is False
        assert any("server key is wrong" in e for e in wrong_server["errors"]), wrong_server
        plain = _handshake(peer.control)
        assert plain["connected"] is False
        assert any("security mismatch" in e and "needs CURVE keys" in e for e in plain["errors"]), plain
    finally:
        peer.stop = True
        peer.join(10)


def test_keys_from_certificate_files(ctx, certs, auth, tmp_path):
    """CurveKeys.FromCertificates reads the files zmq.auth writes (checked through a real handshake)."""
    server_pub, server_secret = certs["server"]
    keys = tmp_path / "keys"
    peer = Peer(ctx, server_secret)
    peer.start()
    try:
        tags, _ = run_check("handshake", peer.control, "--files", str(keys / "server.key"),
                            str(keys / "client.key_secret"))
        assert tags["HANDSHAKE"] == {"connected": True, "errors": []}
    finally:
        peer.stop = True
        peer.join(10)
