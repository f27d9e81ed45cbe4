"""`xstreamer obs` (the OBS Browser Source bridge) as a real subprocess: its HTTP API, and its WebSocket framing
against a live `xstreamer serve --model tiny` daemon."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from plugins.obs_source.procs import BridgeProc, Daemon
from sdk.protocol.codec import decode_media, unpack_header
from tests.waiting import wait_for

pytestmark = pytest.mark.process

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[1]
XSTREAMER = str(ROOT / ".venv" / "bin" / "xstreamer")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: bytes | None = None) -> tuple[int, dict | str]:
    """A request as the OBS script makes it (JSON bodies; the URL carries the token where needed)."""
    headers = {"Content-Type": "application/json"} if method == "POST" else {}
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, raw, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        status, raw, ctype = exc.code, exc.read(), exc.headers.get("Content-Type", "")
    return status, json.loads(raw) if "json" in ctype else raw.decode()


@pytest.fixture(scope="module")
def daemon():
    d = Daemon.start(XSTREAMER)
    yield d
    d.stop()


def test_bridge_without_daemon_answers_and_refuses_clearly():
    bridge = BridgeProc.start(XSTREAMER, f"tcp://127.0.0.1:{free_port()}")
    try:
        assert bridge.url.startswith("http://127.0.0.1:") and len(bridge.token) >= 32
        api = bridge.api
        status, page = http("GET", bridge.url)
        assert status == 200 and '<canvas id="stage"' in page and "player.js" in page
        for name in ("player.js", "audio-worklet.js", "msgpack.js", "framing.js", "avclock.js", "motion.js",
                     "meter.js"):
            assert http("GET", bridge.base + name)[0] == 200
        assert http("GET", api("bridge.py"))[0] == 404
        status, health = http("GET", api("health"))
        assert status == 200 and health["ok"] is True and health["daemon"] is False and health["session"] is None
        wait_for(lambda: http("GET", api("health"))[1]["error"], what="the daemon error in /health")
        status, body = http("POST", api("say"), json.dumps({"text": "hello"}).encode())
        assert status == 503 and body["ok"] is False and "not connected" in body["error"]
        assert http("POST", api("say"), b'{"text": "   "}')[0] == 400
        assert http("POST", api("say"), b'{"words": "hi"}')[0] == 400
        assert http("POST", api("say"), b"{not json")[0] == 400
        assert http("POST", api("say"), b'["hi"]')[0] == 400
        assert http("POST", api("interrupt"))[0] == 503
        assert http("POST", api("mute"))[1]["muted"] is True
        assert http("POST", api("mute"), b"{}")[1]["muted"] is False
        assert http("POST", api("mute"), b'{"muted": true}')[1]["muted"] is True
        assert http("POST", api("mute"), b'{"muted": "yes"}')[0] == 400
        stats = http("GET", api("stats"))[1]
        assert stats["bridge"]["daemon"] is False and stats["bridge"]["muted"] is True and stats["pages"] == []
    finally:
        assert bridge.stop() == 0, "SIGTERM ends the bridge cleanly"


def test_bad_persona_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "persona.json"
    bad.write_text(json.dumps({"name": "", "colour": "blue"}))
    res = subprocess.run([XSTREAMER, "obs", "--persona", str(bad), "--port", "0"], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 2 and "not a valid persona" in res.stderr and res.stdout == ""
    res = subprocess.run([XSTREAMER, "obs", "--portrait", str(tmp_path / "none.png"), "--port", "0"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "cannot read portrait" in res.stderr


def test_studio_library_persona_file_is_accepted(tmp_path, daemon):
    """A persona file written by the studio's PersonaStore (Persona fields + "portrait") opens a session with that
    persona, and its portrait is the default --portrait; an explicit --portrait wins; a portrait the file names
    but that is missing is a clear error."""
    import shutil

    from studio_gui.personas import PersonaStore, StoredPersona

    portrait = tmp_path / "ada.png"
    shutil.copy(ROOT / "sdk" / "portrait" / "gallery" / "ada.png", portrait)
    store = PersonaStore(tmp_path / "personas")
    path = store.save(StoredPersona(name="Ada Streams", greeting="Hi chat!", model="tiny", portrait=str(portrait)))
    assert "portrait" in json.loads(path.read_text()), "the library format carries the portrait path"

    bridge = BridgeProc.start(XSTREAMER, daemon.control, extra=("--persona", str(path)))
    try:
        health = wait_for(lambda: (h := http("GET", bridge.api("health"))[1])["daemon"] and h, what="a session")
        assert health["persona"] == "Ada Streams" and health["portrait"] == str(portrait.resolve())
        assert health["options"] == {"connect": daemon.control, "persona": str(path.resolve()), "portrait": None,
                                     "session": None, "start_daemon": None, "twitch_channel": None}
    finally:
        assert bridge.stop() == 0
    other = tmp_path / "bruno.png"
    shutil.copy(ROOT / "sdk" / "portrait" / "gallery" / "bruno.png", other)
    bridge = BridgeProc.start(XSTREAMER, f"tcp://127.0.0.1:{free_port()}",
                              extra=("--persona", str(path), "--portrait", str(other)))
    try:
        health = http("GET", bridge.api("health"))[1]
        assert health["persona"] == "Ada Streams" and health["portrait"] == str(other.resolve())
    finally:
        bridge.stop()

    portrait.unlink()
    res = subprocess.run([XSTREAMER, "obs", "--persona", str(path), "--port", "0"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2 and res.stdout == ""
    assert "cannot read portrait" in res.stderr and f"named by persona file {path}" in res.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "Ada", "portrait": 7}))
    res = subprocess.run([XSTREAMER, "obs", "--persona", str(bad), "--port", "0"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2 and '"portrait" must be a path or null' in res.stderr


async def _collect(bridge: BridgeProc, session_id: str, want: int) -> tuple[list, list]:
    """Chat through the bridge and read its WebSocket until `want` packets of the reply arrived:
    (control messages, [(packet, payload length, publish ms, reply utt)])."""
    control, media = [], []
    async with aiohttp.ClientSession() as http_session:
        async with http_session.ws_connect(bridge.api("ws").replace("http", "ws", 1), max_msg_size=0) as ws:
            async with http_session.post(bridge.api("say"), json={"text": "Hello! How are you today?"}) as resp:
                ack = await resp.json()
            assert resp.status == 200 and ack["ok"] and ack["session"] == session_id
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and sum(p.utt == ack["utt"] for p, _, _ in media) < want:
                msg = await ws.receive(timeout=60)
                if msg.type == aiohttp.WSMsgType.TEXT:
                    control.append(json.loads(msg.data))
                    continue
                raw = msg.data
                assert raw[:4] == b"XSB1"
                published_ms, hlen = struct.unpack(">dI", raw[4:16])
                header, payload = raw[16:16 + hlen], raw[16 + hlen:]
                kind = unpack_header(header)["type"]
                frames = [b"xs2/any", header] + ([payload] if kind in ("audio", "video") else [])
                pkt, _ = decode_media(frames)   # the bridge forwards protocol headers verbatim
                media.append((pkt, len(payload), published_ms))
            async with http_session.post(bridge.api("interrupt"), json={}) as resp:
                assert resp.status == 200
            while True:
                msg = await ws.receive(timeout=10)
                if msg.type == aiohttp.WSMsgType.TEXT and json.loads(msg.data)["type"] == "flush":
                    break
    return control, [(p, n, t, ack["utt"]) for p, n, t in media]


def test_bridge_forwards_a_reply_to_the_page_socket(daemon):
    bridge = BridgeProc.start(XSTREAMER, daemon.control)
    try:
        health = wait_for(lambda: (h := http("GET", bridge.api("health"))[1])["daemon"] and h, what="a session")
        control, media = asyncio.run(_collect(bridge, health["session"], want=20))
        assert control[0]["type"] == "session" and control[0]["session"] == health["session"]
        assert control[0]["sample_rate"] == 22050 and control[0]["fps"] == 25
        assert control[0]["video_format"] == "rgb24" and control[0]["motion_channels"] == []   # tiny: no motion
        utt = media[0][3]
        reply = [(p, n) for p, n, _, _ in media if p.utt == utt]
        assert any(p.type == "audio" and n == p.samples * 2 for p, n in reply)
        assert any(p.type == "video" and n == 256 * 256 * 3 for p, n in reply)
        seqs = [p.seq for p, _, _, _ in media]
        assert seqs == sorted(seqs), "the bridge keeps the daemon's packet order"
        sent = [t for _, _, t, _ in media]
        assert all(0 < t <= time.time() * 1000 for t in sent) and sent == sorted(sent)
        stats = http("GET", bridge.api("stats"))[1]["bridge"]
        assert stats["says"] == 1 and stats["interrupts"] == 1 and stats["packets"] >= len(media)
    finally:
        bridge.stop()


async def _first_frames(bridge: BridgeProc, count: int) -> list[dict]:
    headers = []
    async with aiohttp.ClientSession() as http_session:
        async with http_session.ws_connect(bridge.api("ws").replace("http", "ws", 1), max_msg_size=0) as ws:
            while len(headers) < count:
                msg = await ws.receive(timeout=30)
                if msg.type == aiohttp.WSMsgType.BINARY:
                    hlen = struct.unpack(">I", msg.data[12:16])[0]
                    headers.append(unpack_header(msg.data[16:16 + hlen]))
    return headers


def test_bridge_attaches_to_an_existing_session(daemon):
    """--session: the bridge only listens to a session another client (e.g. the studio) opened."""
    from sdk.client import Client

    client = Client(control=daemon.control, client_name="test-owner")
    client.connect()
    try:
        owned = client.open_session()
        bridge = BridgeProc.start(XSTREAMER, daemon.control,
                                  extra=("--session", owned.id, "--secret", owned.info.secret))
        try:
            wait_for(lambda: http("GET", bridge.api("health"))[1]["session"] == owned.id, what="the attach")
            headers = asyncio.run(_first_frames(bridge, 10))
            assert {h["session"] for h in headers} == {owned.id}
            status, body = http("POST", bridge.api("speak"), b'{"text": "Announcement from the bridge."}')
            assert status == 200 and body["session"] == owned.id and body["utt"] >= 1
        finally:
            bridge.stop()
    finally:
        client.close()


# Five points placing a face in the 300x300 no-face picture below (eye centres, nose tip, mouth corners).
NOFACE_POINTS = [[118.0, 130.0], [182.0, 130.0], [150.0, 170.0], [128.0, 205.0], [172.0, 205.0]]


def _noface_png(path: Path) -> Path:
    """A picture in which no face can be found (noise): a daemon opens it only with its five points."""
    import numpy as np
    from PIL import Image

    Image.fromarray(np.random.default_rng(1).integers(60, 200, (300, 300, 3), dtype=np.uint8)).save(path)
    return path


def test_persona_face_points_open_a_portrait_without_a_findable_face(tmp_path, daemon):
    """A persona exported by the studio for OBS carries the five face points of a portrait whose face cannot be
    found; the bridge sends them with `open`, so the session opens. Without them the daemon refuses the portrait
    (invalid_portrait, /health says why); with another --portrait the file's points are not sent."""
    from studio_gui.export import export_obs
    from studio_gui.personas import StoredPersona

    picture = _noface_png(tmp_path / "drawn.png")
    bare = export_obs(StoredPersona(name="Fox", model="tiny", portrait=str(picture)), tmp_path / "bare")
    pointed = export_obs(StoredPersona(name="Fox", model="tiny", portrait=str(picture), face_points=NOFACE_POINTS),
                         tmp_path / "pointed")
    assert json.loads(pointed.read_text())["face_points"] == NOFACE_POINTS, "the studio's OBS export keeps them"

    bridge = BridgeProc.start(XSTREAMER, daemon.control, extra=("--persona", str(bare)))
    try:
        health = wait_for(lambda: (h := http("GET", bridge.api("health"))[1])["error"] and h, 60,
                          "the daemon's refusal in /health")
        assert health["daemon"] is False and health["session"] is None and health["face_points"] is None
        assert "five points" in health["error"], health["error"]
    finally:
        bridge.stop()

    bridge = BridgeProc.start(XSTREAMER, daemon.control, extra=("--persona", str(pointed)))
    try:
        health = wait_for(lambda: (h := http("GET", bridge.api("health"))[1])["daemon"] and h, 60, "a session")
        assert health["session"] and health["face_points"] == NOFACE_POINTS and health["error"] is None
        assert health["portrait"] == str((pointed.parent / json.loads(pointed.read_text())["portrait"]).resolve())
        status, body = http("POST", bridge.api("speak"), b'{"text": "I have a face now."}')
        assert status == 200 and body["utt"] >= 1
    finally:
        bridge.stop()

    other = tmp_path / "ada.png"
    other.write_bytes((ROOT / "sdk" / "portrait" / "gallery" / "ada.png").read_bytes())
    bridge = BridgeProc.start(XSTREAMER, daemon.control, extra=("--persona", str(pointed), "--portrait", str(other)))
    try:
        health = wait_for(lambda: (h := http("GET", bridge.api("health"))[1])["daemon"] and h, 60, "a session")
        assert health["face_points"] is None and health["portrait"] == str(other.resolve())
        assert any("not in --portrait" in line for line in bridge.proc.log), bridge.proc.log[-5:]
    finally:
        bridge.stop()
