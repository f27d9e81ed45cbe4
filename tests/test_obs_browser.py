"""The OBS page in headless Chromium (driven over the DevTools protocol) against a live daemon and bridge:
frames are painted while a reply plays, the audio clock advances, A/V stays within +-40 ms, the canvas is
transparent while no media flows (before the daemon starts, after it stops), and the page resumes by itself
after the daemon restarts on the same ports."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from plugins.obs_source.cdp import CHROMIUM, Browser
from plugins.obs_source.procs import BridgeProc, Daemon

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing (apt-get install chromium)"),
]

ROOT = Path(__file__).resolve().parents[1]
XSTREAMER = str(ROOT / ".venv" / "bin" / "xstreamer")
RESUME_S = 3.0   # the page must have the restarted daemon's session this soon after its ready line

CANVAS = """(() => {
  const c = document.getElementById('stage');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let hash = 0, alpha = 0;
  for (let i = 0; i < d.length; i += 4) { hash = (hash * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) >>> 0; alpha += d[i + 3]; }
  return {hash: hash, alpha: alpha};
})()"""


def post(url: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body or {}).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


async def poll(page, expression: str, predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = await page.evaluate(expression)
        if predicate(value):
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out ({timeout:g} s) waiting for {what}; last value: {value}")


async def play_reply(page, url: str, text: str) -> dict:
    """Chat, then sample the page while the reply's frames (its utterance id) are painted."""
    before = await page.evaluate("window.xstreamerStats")
    ack = post(url + "say", {"text": text})
    assert ack["ok"], ack
    await poll(page, "window.xstreamerStats.utt", lambda u: u == ack["utt"], 120,
               f"the first painted frame of utterance {ack['utt']}")
    hashes, offsets, clocks = set(), [], []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        stats = await page.evaluate("window.xstreamerStats")
        if stats["utt"] != ack["utt"]:
            break   # the reply ended (idle frames, utt 0) or the daemon went away
        canvas = await page.evaluate(CANVAS)
        if canvas["alpha"] > 0:
            hashes.add(canvas["hash"])
        if stats["avOffsetMaxAbsMs"] is not None:
            offsets.append(stats["avOffsetMaxAbsMs"])
        clocks.append(stats["audioClockSamples"])
        await asyncio.sleep(0.1)
    after = await page.evaluate("window.xstreamerStats")
    return {"before": before, "after": after, "hashes": hashes, "offsets": offsets, "clocks": clocks}


async def scenario(daemon_args: dict, bridge: BridgeProc) -> None:
    async with await Browser.launch() as browser:
        page = await browser.open(bridge.url + "?overlay=1")
        first = await poll(page, "window.xstreamerStats", lambda s: s and s["connected"], 30,
                           "the page to connect to the bridge")
        assert not first["daemonConnected"] and first["framesPainted"] == 0
        assert (await page.evaluate(CANVAS))["alpha"] == 0, "the canvas is transparent while nothing plays"

        daemon = Daemon.start(XSTREAMER, **daemon_args)   # the daemon starts after the bridge and the page
        try:
            await poll(page, "window.xstreamerStats", lambda s: s["daemonConnected"], 30,
                       "the page to get a session once the daemon is up")
            run = await play_reply(page, bridge.url, "Hello! Please tell me about the weather today.")
            after = run["after"]
            assert after["audioState"] == "running", "the AudioWorklet clock, not the wall-clock fallback"
            assert len(run["clocks"]) >= 10 and run["clocks"][-1] > run["clocks"][0], "the audio clock advances"
            assert len(run["hashes"]) >= 3, "the canvas pixels change while the reply plays"
            assert run["offsets"] and max(run["offsets"]) <= 40.0, f"A/V offsets {run['offsets']}"
            assert after["latencyMs"] is not None and after["latencyMs"] > 0
            print(f"\nreply: {len(run['clocks'])} samples, {len(run['hashes'])} distinct canvases, "
                  f"A/V max |offset| {max(run['offsets'])} ms, latency {after['latencyMs']} ms")

            sessions = after["sessions"]
            daemon.stop()
            await poll(page, CANVAS, lambda c: c["alpha"] == 0, 10, "a transparent canvas once the daemon stopped")
            daemon = Daemon.start(XSTREAMER, **daemon_args)   # restarted on the same ports
            ready = time.monotonic()
            resumed = await poll(page, "window.xstreamerStats",
                                 lambda s: s["daemonConnected"] and s["sessions"] > sessions,
                                 RESUME_S, "the page to resume with the restarted daemon")
            print(f"resumed {time.monotonic() - ready:.2f} s after the daemon's ready line "
                  f"(session {after['session']} -> {resumed['session']})")
            run2 = await play_reply(page, bridge.url, "Welcome back!")
            assert run2["after"]["framesPainted"] > run2["before"]["framesPainted"] + 5
            assert len(run2["hashes"]) >= 2 and max(run2["offsets"]) <= 40.0
            assert run2["after"]["reconnects"] == 0, "the page's own socket to the bridge never dropped"
        finally:
            daemon.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_page_plays_in_sync_and_survives_a_daemon_restart():
    ports = {"control_port": free_port(), "media_port": free_port()}
    bridge = BridgeProc.start(XSTREAMER, f"tcp://127.0.0.1:{ports['control_port']}")
    try:
        asyncio.run(scenario(ports, bridge))
    finally:
        bridge.stop()
