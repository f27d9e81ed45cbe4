"""Measure the latency the OBS path adds (bridge + page: packet published -> frame painted) and take the
documentation screenshots, with headless Chromium against a live daemon.

    .venv/bin/python -m plugins.obs_source.measure [--replies 3] [--model tiny] [--shots docs/images]

"Published" is the wall-clock time at which the bridge's DaemonLink got the packet from the SDK, i.e. after the
SDK read it from its SUB socket and decoded it; protocol v2 packets carry no publish time of their own (only
`seq` and `pts`), so the daemon's PUB -> bridge hop is not included. The bridge stamps that time into the XSB1
frame; "painted" is when the page put the frame on its canvas. The figure includes the page's audio prebuffer
(?buffer=, default 100 ms) and the output latency of the audio path, because a frame is shown when the
*audible* audio clock reaches its pts. Prints a small table; the numbers go into docs/obs.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import urllib.request
from pathlib import Path

from .cdp import Browser
from .procs import BridgeProc, Daemon

ROOT = Path(__file__).resolve().parents[2]
SENTENCES = ["Hello everyone, welcome to the stream!", "Let us talk about today's game plan.",
             "Thanks for the follow, that is very kind of you.", "I think we should try the other route."]


def post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def summary(values: list[float]) -> str:
    if not values:
        return "n/a"
    q = statistics.quantiles(values, n=20) if len(values) >= 20 else [min(values)] * 18 + [max(values)]
    return (f"median {statistics.median(values):6.1f}  p5 {q[0]:6.1f}  p95 {q[18]:6.1f}  "
            f"max {max(values):6.1f}  (n={len(values)})")


async def wait_reply(page, utt: int, timeout: float = 120.0) -> None:
    """Until the page painted utterance `utt` and then moved on (idle frames, utt 0)."""
    deadline = time.monotonic() + timeout
    seen = False
    while time.monotonic() < deadline:
        painted = await page.evaluate("window.xstreamerStats.utt")
        if painted == utt:
            seen = True
        elif seen:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"utterance {utt} was not painted within {timeout:g} s")


async def measure(bridge: BridgeProc, replies: int, shots: Path | None, buffer_ms: int | None) -> dict:
    url = bridge.url                     # the page, with the bridge's token
    query = "&overlay=1" + (f"&buffer={buffer_ms}" if buffer_ms else "")
    async with await Browser.launch(width=384, height=384) as browser:
        page = await browser.open(url + query, width=384, height=384)
        clean = await browser.open(url, width=256, height=256) if shots else None
        deadline = time.monotonic() + 60
        while not await page.evaluate("window.xstreamerStats && window.xstreamerStats.daemonConnected"):
            if time.monotonic() > deadline:
                raise RuntimeError("the page never got a session from the bridge")
            await asyncio.sleep(0.1)
        if shots:
            shots.mkdir(parents=True, exist_ok=True)
            await asyncio.sleep(1.0)
            until = time.monotonic() + 20     # a warming-up daemon (default model) is slow at first
            while (await page.evaluate("window.xstreamerStats.fps")) < 20 and time.monotonic() < until:
                await asyncio.sleep(0.2)
            (shots / "obs_page_idle.png").write_bytes(await page.screenshot())
        for i in range(replies):
            utt = post(bridge.api("say"), {"text": SENTENCES[i % len(SENTENCES)]})["utt"]
            if shots and i == 0:
                until = time.monotonic() + 120
                while (await page.evaluate("window.xstreamerStats.utt")) != utt:
                    if time.monotonic() > until:
                        raise RuntimeError("the page painted no reply within 120 s")
                    await asyncio.sleep(0.05)
                await asyncio.sleep(1.0)
                (shots / "obs_page_overlay.png").write_bytes(await page.screenshot())
                (shots / "obs_page_frame.png").write_bytes(await clean.screenshot())
            await wait_reply(page, utt)
        trace = await page.evaluate("window.xstreamerTrace")
        stats = await page.evaluate("window.xstreamerStats")
    return {"trace": trace, "stats": stats}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connect", help="use this running daemon instead of starting one")
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--replies", type=int, default=3)
    parser.add_argument("--buffer", type=int, help="page audio prebuffer in ms (the page's ?buffer=)")
    parser.add_argument("--shots", type=Path, help="write obs_page_*.png screenshots into this directory")
    parser.add_argument("--xstreamer", default=str(ROOT / ".venv" / "bin" / "xstreamer"))
    args = parser.parse_args(argv)
    daemon = None if args.connect else Daemon.start(args.xstreamer, args.model)
    try:
        bridge = BridgeProc.start(args.xstreamer, args.connect or daemon.control)
        try:
            result = asyncio.run(measure(bridge, args.replies, args.shots, args.buffer))
        finally:
            bridge.stop()
    finally:
        if daemon is not None:
            daemon.stop()
    trace, stats = result["trace"], result["stats"]
    print(f"frames painted: {stats['framesPainted']}, dropped as late: {stats['framesLate']}, "
          f"skipped: {stats['framesSkipped']}, audio underruns: {stats['underruns']}, "
          f"audio: {stats['audioState']}, "
          f"clock: {stats['clockSource']} (audible {stats['outputLagMs']} ms behind the rendered samples)")
    print(f"published -> painted (ms):   {summary(trace['latencyMs'])}")
    print(f"published -> received (ms):  {summary(trace['transportMs'])}")
    print(f"A/V offset, frame - audible audio (ms): {summary(trace['avOffsetMs'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
