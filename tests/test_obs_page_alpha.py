"""The OBS page draws the renderer's alpha: rgba32 frames (a portrait with alpha, PLAN.md's video decision) are
painted with their transparency and the page around them stays transparent, so the co-host can stand over
gameplay; rgb24 frames are opaque. The format comes from each packet's `format` field.

Headless Chromium loads the page from a real bridge (with its token) and is pointed (`ws=`) at a WebSocket
feeder in this test that sends protocol media packets in the bridge's XSB1 framing: a 256x256 frame whose left
half is fully transparent, its top-right quarter half transparent blue and its bottom-right quarter opaque green,
then plain rgb24 frames. The test reads the canvas pixels and a screenshot taken with a transparent default
background, as OBS's Browser Source composites the page.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web

from plugins.obs_source.bridge import pack_frame
from plugins.obs_source.cdp import CHROMIUM, Browser
from plugins.obs_source.procs import BridgeProc
from sdk.protocol import SAMPLE_RATE, SAMPLES_PER_FRAME, pack_header
from sdk.protocol.messages import AudioPacket, VideoPacket

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing (apt-get install chromium)"),
]

ROOT = Path(__file__).resolve().parents[1]
XSTREAMER = str(ROOT / ".venv" / "bin" / "xstreamer")
SIZE = 256


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rgba_frame() -> bytes:
    img = np.zeros((SIZE, SIZE, 4), np.uint8)
    img[:, :SIZE // 2] = (255, 0, 0, 0)                   # left half: fully transparent
    img[:SIZE // 2, SIZE // 2:] = (0, 0, 255, 128)        # top right: half transparent blue
    img[SIZE // 2:, SIZE // 2:] = (0, 255, 0, 255)        # bottom right: opaque green
    return img.tobytes()


def rgb_frame() -> bytes:
    img = np.zeros((SIZE, SIZE, 3), np.uint8)
    img[:] = (200, 100, 50)
    return img.tobytes()


async def feeder(request: web.Request) -> web.WebSocketResponse:
    """What the bridge sends a page: a session message, then audio + video packets every 40 ms."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_str(json.dumps({"type": "session", "session": "sfeed", "sample_rate": SAMPLE_RATE, "fps": 25,
                                  "width": SIZE, "height": SIZE, "model": "feeder", "epoch": 1}))
    silence = bytes(2 * SAMPLES_PER_FRAME)
    rgba, rgb = rgba_frame(), rgb_frame()
    seq = 0
    for i in range(250):                                  # 10 s: utterance 1 rgba32, then utterance 2 rgb24
        utt, fmt, pixels = (1, "rgba32", rgba) if i < 125 else (2, "rgb24", rgb)
        pts = i * SAMPLES_PER_FRAME
        for pkt, payload in ((AudioPacket(session="sfeed", utt=utt, seq=seq, pts=pts, samples=SAMPLES_PER_FRAME),
                              silence),
                             (VideoPacket(session="sfeed", utt=utt, seq=seq + 1, pts=pts, width=SIZE, height=SIZE,
                                          format=fmt), pixels)):
            await ws.send_bytes(pack_frame(pack_header(pkt), payload, time.time() * 1000))
        seq += 2
        await asyncio.sleep(0.04)
    await ws.close()
    return ws


PIXELS = """(() => {
  if (!window.xstreamerStats) return {utt: null};
  const c = document.getElementById('stage'), g = c.getContext('2d');
  const at = (x, y) => Array.from(g.getImageData(x, y, 1, 1).data);
  return {fmt: window.xstreamerStats.videoFormat, utt: window.xstreamerStats.utt, w: c.width,
          left: at(20, 128), topRight: at(200, 50), bottomRight: at(200, 200)};
})()"""


async def watch(page, utt: int, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        px = await page.evaluate(PIXELS)
        if px["utt"] == utt:
            return px
        await asyncio.sleep(0.05)
    raise AssertionError(f"no frame of utterance {utt} painted; stats: {await page.evaluate('window.xstreamerStats')}")


async def scenario(bridge: BridgeProc) -> tuple[dict, bytes, dict]:
    app = web.Application()
    app.router.add_get("/ws", feeder)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with await Browser.launch() as browser:
            page = await browser.open(bridge.url + f"&ws=ws://127.0.0.1:{port}/ws")
            alpha = await watch(page, 1)
            shot = await page.screenshot(transparent=True)
            opaque = await watch(page, 2)
            return alpha, shot, opaque
    finally:
        await runner.cleanup()


def test_rgba32_frames_keep_their_alpha_and_the_page_is_transparent():
    from PIL import Image

    bridge = BridgeProc.start(XSTREAMER, f"tcp://127.0.0.1:{free_port()}")   # serves the page; no daemon needed
    try:
        alpha, shot, opaque = asyncio.run(scenario(bridge))
    finally:
        bridge.stop()
    assert alpha["fmt"] == "rgba32" and alpha["w"] == SIZE
    assert alpha["left"][3] == 0, "the transparent half stays transparent on the canvas"
    assert alpha["bottomRight"] == [0, 255, 0, 255]
    assert abs(alpha["topRight"][3] - 128) <= 1 and alpha["topRight"][2] >= 250, alpha["topRight"]
    image = np.asarray(Image.open(io.BytesIO(shot)).convert("RGBA"))
    h, w = image.shape[:2]
    assert image[h // 2, w // 8, 3] == 0, "the page itself is transparent where the co-host is"
    assert tuple(image[h * 3 // 4, w * 3 // 4]) == (0, 255, 0, 255)
    assert abs(int(image[h // 4, w * 3 // 4, 3]) - 128) <= 2
    assert opaque["fmt"] == "rgb24" and opaque["left"] == [200, 100, 50, 255], "rgb24 frames are opaque"


CORNER_AND_FACE = """(() => {
  if (!window.xstreamerStats || window.xstreamerStats.framesPainted === 0) return {};
  const g = document.getElementById('stage').getContext('2d');
  const at = (x, y) => Array.from(g.getImageData(x, y, 1, 1).data);
  return {fmt: window.xstreamerStats.videoFormat, corner: at(3, 3), face: at(128, 128)};
})()"""


def alpha_portrait(path: Path) -> Path:
    """A gallery portrait with a transparent background (an ellipse around the face is kept)."""
    from PIL import Image

    rgba = np.array(Image.open(ROOT / "sdk" / "portrait" / "gallery" / "ada.png").convert("RGBA"))
    h, w = rgba.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    rgba[..., 3] = np.where((xx - w / 2) ** 2 / (w * 0.42) ** 2 + (yy - h / 2) ** 2 / (h * 0.48) ** 2 <= 1, 255, 0)
    Image.fromarray(rgba).save(path)
    return path


@pytest.mark.slow
@pytest.mark.engine
def test_the_default_renderers_alpha_reaches_the_page(tmp_path):
    """The real thing: the `default` preset renders a portrait with alpha as rgba32 frames; through the bridge
    (which starts that daemon itself) the page paints them with the background transparent."""
    portrait = alpha_portrait(tmp_path / "ada-alpha.png")
    bridge = BridgeProc.start(XSTREAMER, None, extra=("--start-daemon", "--model", "default",
                                                      "--portrait", str(portrait)))

    async def look() -> tuple[dict, dict]:
        async with await Browser.launch() as browser:
            page = await browser.open(bridge.url)
            deadline = time.monotonic() + 300
            while True:
                px = await page.evaluate(CORNER_AND_FACE)
                if px.get("fmt"):
                    return px, await page.evaluate("window.xstreamerStats")
                assert time.monotonic() < deadline, "no frame painted"
                await asyncio.sleep(0.1)
    try:
        px, stats = asyncio.run(look())
    finally:
        bridge.stop()
    assert stats["videoFormat"] == "rgba32", stats
    assert px["corner"][3] == 0, f"the portrait's transparent corner stays transparent: {px}"
    assert px["face"][3] == 255, f"the face is opaque: {px}"
