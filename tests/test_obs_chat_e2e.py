"""#24 "what it must show": the co-host answers a line typed into a (local) Twitch chat, end to end.

A Twitch-like IRC server over TLS on loopback (tests/twitch_irc_fake.py, certificate made per run) -> the
bridge's chat reader (`xstreamer obs --twitch-channel ...`) -> the daemon the bridge started itself
(`--start-daemon`, `tiny` here; `XSTREAMER_E2E_MODEL=default` to run it on the trained preset) -> the bridge ->
the OBS page in headless Chromium, which must receive the audio and video packets of that reply (and paint it).
A line without the command prefix, and one inside the cooldown, must not become replies.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from plugins.obs_source.cdp import CHROMIUM, Browser
from plugins.obs_source.procs import BridgeProc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from twitch_irc_fake import OPENSSL, TlsIrcServer  # noqa: E402

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing (apt-get install chromium)"),
    pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command (a test certificate)"),
]

ROOT = Path(__file__).resolve().parents[1]
XSTREAMER = str(ROOT / ".venv" / "bin" / "xstreamer")
MODEL = os.environ.get("XSTREAMER_E2E_MODEL", "tiny")
WANT = 25            # packets of each kind (1 s of the reply) the page must receive


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


async def poll(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out ({timeout:g} s) waiting for {what}; last value: {value}")


async def scenario(bridge: BridgeProc, irc: TlsIrcServer) -> dict:
    health = lambda: asyncio.to_thread(get_json, bridge.api("health"))   # noqa: E731
    async with await Browser.launch() as browser:
        page = await browser.open(bridge.url)
        await poll(lambda: page.evaluate("window.xstreamerStats && window.xstreamerStats.daemonConnected"),
                   600, "the page to get the session of the daemon the bridge started")
        await poll(lambda: irc.joined, 30, "the chat reader to join #channel")

        started = time.monotonic()
        irc.say("lurker", "gg everyone")                                        # no prefix: not for the co-host
        irc.say("curious_viewer", "!ask What should we play next?", display="Curious Viewer")
        chat = await poll(lambda: _answered(health), 60, "the chat line to become a chat request")
        utt = chat["recent"][-1]["utt"]
        irc.say("curious_viewer", "!ask And after that?")                      # inside the cooldown
        packets = await poll(lambda: _received(page, utt), 300,
                             f"{WANT} audio and {WANT} video packets of utterance {utt} at the page")
        took = time.monotonic() - started
        painted = await poll(lambda: page.evaluate(
            f"window.xstreamerStats.utt === {utt} && window.xstreamerStats.framesPainted"), 30,
            "a frame of the reply painted")
        chat = (await health())["chat"]
        stats = await page.evaluate("window.xstreamerStats")
        return {"chat": chat, "utt": utt, "packets": packets, "painted": painted, "stats": stats,
                "seconds": took, "model": (await health())["daemon_process"]["model"]}


async def _answered(health):
    chat = (await health())["chat"]
    return chat if chat["recent"] and chat["recent"][-1]["utt"] else None


async def _received(page, utt: int):
    per = await page.evaluate(f"(window.xstreamerStats.uttPackets || {{}})[{utt}] || null")
    return per if per and per["audio"] >= WANT and per["video"] >= WANT else None


def test_a_line_typed_into_the_chat_is_answered_on_the_page(tmp_path):
    with TlsIrcServer(tmp_path) as irc:
        bridge = BridgeProc.start(XSTREAMER, None, timeout=60, extra=(
            "--start-daemon", "--model", MODEL,
            "--twitch-channel", "channel", "--twitch-server", f"127.0.0.1:{irc.port}",
            "--twitch-cafile", str(irc.cafile), "--chat-prefix", "!ask", "--chat-cooldown", "30"))
        try:
            result = asyncio.run(scenario(bridge, irc))
            irc.wait(lambda: get_json(bridge.api("health"))["chat"]["refused"].get("global_cooldown"), 10,
                     "the line inside the cooldown to be refused")
            chat = get_json(bridge.api("health"))["chat"]
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nbridge log:\n  " + "\n  ".join(bridge.proc.log[-20:])) from None
        finally:
            bridge.stop()
    assert chat["seen"] == 3 and chat["accepted"] == 1 and chat["sent"] == 1
    assert chat["refused"] == {"no_prefix": 1, "global_cooldown": 1}
    assert result["chat"]["recent"][-1]["question"] == "What should we play next?"
    assert result["packets"]["audio"] >= WANT and result["packets"]["video"] >= WANT
    assert result["painted"] > 0 and result["stats"]["errors"] == 0
    print(f"\n{result['model']}: chat line -> {result['packets']['audio']} audio / {result['packets']['video']} "
          f"video packets of utterance {result['utt']} at the page in {result['seconds']:.1f} s; "
          f"painted {result['painted']} frames ({result['stats']['videoFormat']})")
