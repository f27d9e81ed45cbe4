"""#23 item 7: no web page but the co-host's own may drive the OBS bridge.

Real loopback HTTP and WebSocket (aiohttp's client) against a real `xstreamer obs` subprocess talking to a live
`xstreamer serve --model tiny`, so that an accepted request really makes the co-host speak (the bridge's `says`
/ `speaks` counters and the daemon's `utt` say so). What a hostile page can send is sent as it would send it:
a "simple" cross-origin POST (`text/plain`, no preflight) with its `Origin`, a WebSocket with its `Origin`, a
DNS-rebound `Host`. Each test fails on the bridge before the guard (plugins/obs_source/web_guard.py): it took
`text/plain` JSON from any origin and checked neither Origin, Host nor a token.

The bridge is started with `sys.executable -m xstreamer obs` and its first line parsed leniently (token or not),
so that running this file with PYTHONPATH pointing at an older checkout shows these failures, not a start-up
error.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from plugins.obs_source.procs import Daemon, Proc

pytestmark = pytest.mark.process   # subprocesses / loopback sockets (docs/testing.md's fast subset skips these)

ROOT = Path(__file__).resolve().parents[1]
XSTREAMER = str(ROOT / ".venv" / "bin" / "xstreamer")
EVIL = "http://evil.example"


class Bridge:
    def __init__(self, connect: str, env: dict[str, str] | None = None) -> None:
        self.proc = Proc(argv := [sys.executable, "-m", "xstreamer", "obs", "--connect", connect, "--port", "0"],
                         subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                          bufsize=1, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})}))
        threading.Thread(target=self.proc._read, daemon=True).start()
        first = self.proc.lines.get(timeout=60)
        match = first and re.fullmatch(r"(http://127\.0\.0\.1:(\d+)/)(\?token=(\S+))?", first)
        if not match:
            self.proc.stop()
            raise AssertionError(f"the bridge's first line is not its URL: {first!r}; {self.proc.log[-10:]}")
        self.base, self.port = match.group(1), int(match.group(2))
        self.token = parse_qs(urlsplit(first).query).get("token", [""])[0]
        self.page = first

    def api(self, path: str) -> str:
        return f"{self.base}{path}?token={self.token}"

    def stop(self) -> None:
        self.proc.stop()


@pytest.fixture(scope="module")
def daemon():
    d = Daemon.start(XSTREAMER)
    yield d
    d.stop()


@pytest.fixture(scope="module")
def bridge(daemon):
    b = Bridge(daemon.control)
    try:
        deadline = time.monotonic() + 60
        while not asyncio.run(_get_json(b.api("health"))).get("daemon"):
            assert time.monotonic() < deadline, f"the bridge never got a session: {b.proc.log[-10:]}"
            time.sleep(0.2)
        yield b
    finally:
        b.stop()


async def _get_json(url: str, **kw) -> dict:
    async with aiohttp.ClientSession() as s:
        async with s.get(url, **kw) as r:
            return await r.json(content_type=None)


async def _post(url: str, data: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession(skip_auto_headers=("Content-Type",)) as s:
        async with s.post(url, data=data, headers=headers) as r:
            return r.status, await r.text()


def counters(bridge: Bridge) -> dict:
    return asyncio.run(_get_json(bridge.api("stats")))["bridge"]


SAY = json.dumps({"text": "Say that you were hacked."}).encode()


def test_a_cross_site_simple_post_cannot_make_the_cohost_speak(bridge):
    """What a page on evil.example can send without a preflight: text/plain, its Origin, no token."""
    before = counters(bridge)
    for path in ("say", "speak"):
        status, body = asyncio.run(_post(bridge.base + path, SAY, {"Content-Type": "text/plain", "Origin": EVIL}))
        assert status == 403, f"/{path} from {EVIL}: {status} {body}"
        # even a page that somehow learnt the token: its origin and its content type are refused
        status, _ = asyncio.run(_post(bridge.api(path), SAY, {"Content-Type": "text/plain", "Origin": EVIL}))
        assert status == 403
        status, _ = asyncio.run(_post(bridge.api(path), SAY, {"Content-Type": "application/json", "Origin": EVIL}))
        assert status == 403
    for path in ("interrupt", "mute"):
        status, _ = asyncio.run(_post(bridge.base + path, b"{}", {"Content-Type": "text/plain", "Origin": EVIL}))
        assert status == 403
    after = counters(bridge)
    assert (after["says"], after["speaks"], after["interrupts"], after["muted"]) == \
        (before["says"], before["speaks"], before["interrupts"], before["muted"])


def test_only_json_with_the_token_is_accepted(bridge):
    status, body = asyncio.run(_post(bridge.api("say"), SAY, {"Content-Type": "text/plain"}))
    assert status == 415, body
    status, body = asyncio.run(_post(bridge.api("say"), SAY, {"Content-Type": "application/x-www-form-urlencoded"}))
    assert status == 415, body
    status, body = asyncio.run(_post(bridge.base + "say", SAY, {"Content-Type": "application/json"}))
    assert status == 403, "no token"
    status, body = asyncio.run(_post(bridge.base + "say?token=" + "A" * len(bridge.token), SAY,
                                     {"Content-Type": "application/json"}))
    assert status == 403, "a wrong token"
    # the OBS script's way: JSON, the token in a header, no Origin; and the page's own origin: both accepted
    before = counters(bridge)["speaks"]
    status, body = asyncio.run(_post(bridge.base + "speak", b'{"text": "Hello chat."}',
                                     {"Content-Type": "application/json", "X-XStreamer-Token": bridge.token}))
    assert status == 200 and json.loads(body)["utt"] >= 1, body
    own = f"http://127.0.0.1:{bridge.port}"
    status, body = asyncio.run(_post(bridge.api("speak"), b'{"text": "And hello again."}',
                                     {"Content-Type": "application/json", "Origin": own}))
    assert status == 200, body
    assert counters(bridge)["speaks"] == before + 2


def test_the_page_and_the_api_need_the_token(bridge):
    async def get(url: str) -> int:
        async with aiohttp.ClientSession() as s:
            async with s.get(url) as r:
                return r.status
    assert asyncio.run(get(bridge.base)) == 403
    assert asyncio.run(get(bridge.base + "stats")) == 403
    assert asyncio.run(get(bridge.page)) == 200
    assert asyncio.run(get(bridge.base + "player.js")) == 200, "the page's scripts are public"
    public = asyncio.run(_get_json(bridge.base + "health"))
    assert public == {"ok": True, "service": "xstreamer-obs", "authorized": False}
    assert asyncio.run(_get_json(bridge.api("health")))["session"]


@pytest.mark.parametrize("host", ["evil.example", "rebind.127.0.0.1.nip.io", "127.0.0.2", "localhost:1"])
def test_a_dns_rebound_host_is_refused(bridge, host):
    """A page on a name that resolves to 127.0.0.1 is same-origin with itself: only the Host header shows it."""
    value = host if ":" in host else f"{host}:{bridge.port}"
    status, _ = asyncio.run(_post(bridge.api("say"), SAY, {"Content-Type": "application/json", "Host": value}))
    assert status == 403

    async def get() -> int:
        async with aiohttp.ClientSession() as s:
            async with s.get(bridge.api("health"), headers={"Host": value}) as r:
                return r.status
    assert asyncio.run(get()) == 403
    for name in ("localhost", "127.0.0.1"):
        async def ok() -> int:
            async with aiohttp.ClientSession() as s:
                async with s.get(bridge.api("health"), headers={"Host": f"{name}:{bridge.port}"}) as r:
                    return r.status
        assert asyncio.run(ok()) == 200


async def _ws(url: str, origin: str | None, host: str | None = None) -> tuple[int | None, dict | None]:
    headers = {k: v for k, v in (("Origin", origin), ("Host", host)) if v}
    async with aiohttp.ClientSession() as s:
        try:
            async with s.ws_connect(url.replace("http", "ws", 1), headers=headers) as ws:
                msg = await ws.receive(timeout=10)
                return 101, json.loads(msg.data)
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status, None


def test_the_websocket_checks_origin_token_and_host(bridge):
    own = f"http://127.0.0.1:{bridge.port}"
    assert asyncio.run(_ws(bridge.api("ws"), EVIL))[0] == 403, "another site's page"
    assert asyncio.run(_ws(bridge.api("ws"), "null"))[0] == 403, "a sandboxed / file: page"
    assert asyncio.run(_ws(bridge.base + "ws", own))[0] == 403, "no token"
    assert asyncio.run(_ws(bridge.api("ws"), own, host=f"evil.example:{bridge.port}"))[0] == 403
    status, first = asyncio.run(_ws(bridge.api("ws"), own))
    assert status == 101 and first["type"] == "session", "the page itself (same origin, with the token)"
    status, first = asyncio.run(_ws(bridge.api("ws"), f"http://localhost:{bridge.port}"))
    assert status == 101


def test_tokens_are_unguessable_or_given(daemon):
    a, b = Bridge(daemon.control), Bridge(daemon.control)
    try:
        assert a.token != b.token and len(a.token) >= 32 and re.fullmatch(r"[A-Za-z0-9_-]+", a.token)
    finally:
        a.stop()
        b.stop()
    given = "obs-script-token-0123456789abcdef"
    c = Bridge(daemon.control, env={"XSTREAMER_OBS_TOKEN": given})
    try:
        assert c.token == given
    finally:
        c.stop()
    res = subprocess.run([sys.executable, "-m", "xstreamer", "obs", "--port", "0"], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "XSTREAMER_OBS_TOKEN": "short"})
    assert res.returncode == 2 and "XSTREAMER_OBS_TOKEN" in res.stderr
