"""Motion on the OBS page: headless Chromium (DevTools protocol) against a live `xstreamer serve --model
tiny-motion` daemon through the bridge.

The bridge hands the page the session's `opened.motion_channels`; the page decodes every `motion` packet with
them and, when the audible clock reaches its pts, dispatches `xstreamer-motion` on window. A listener installed
in the page records every event; an independent WebSocket client of the same bridge records what was sent (the
reply's video frames and its motion packets, decoded by the Python SDK's `motion_values`). Checked: each event
has the 26 named values of the packet with its pts, the pts of a video frame of that reply (the frame on the
canvas when it fires), in pts order, dispatched once the audible clock reached its pts and before it passed that
frame's slot, one event per painted frame; an overlay page on another origin that embeds the co-host page in an
iframe gets the same events by postMessage (the docs' example); `&meter=1` draws the meter from those events, and
the page has no meter without it."""

from __future__ import annotations

import asyncio
import json
import struct
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from plugins.obs_source.cdp import CHROMIUM, Browser
from plugins.obs_source.procs import BridgeProc, Daemon
from sdk.protocol import motion_values, unpack_header
from sdk.protocol.codec import decode_media
from sdk.protocol.constants import MOTION_CHANNELS, SAMPLES_PER_FRAME
from tests.waiting import poll_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing (apt-get install chromium)"),
]

ROOT = Path(__file__).resolve().parents[1]
XSTREAMER = str(ROOT / ".venv" / "bin" / "xstreamer")
MIN_SHARE = 0.9     # of the reply's events dispatched while the frame of their pts is the one on the canvas

# a listener as an overlay would install it: what each event carried, and the page's clocks at that moment
RECORD = """(() => {
  if (window.__motion) return true;
  window.__motion = [];
  window.addEventListener('xstreamer-motion', (e) => {
    const s = window.xstreamerStats, d = e.detail;
    window.__motion.push({pts: d.pts, utt: d.utt, session: d.session, names: Object.keys(d.values),
      values: Object.values(d.values), clock: s.clockPts, painted: s.paintedPts});
  });
  return true;
})()"""
METER = """(() => { const m = document.getElementById('meter'); if (!m) return null;
  const d = m.getContext('2d').getImageData(0, 0, m.width, m.height).data;
  let pink = 0, blue = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] > 200 && d[i + 1] < 120 && d[i + 2] > 90 && d[i + 2] < 160) pink++;
    if (d[i] < 120 && d[i + 1] > 170 && d[i + 2] > 200) blue++;
  }
  return {pink: pink, blue: blue, width: m.width, state: window.xstreamerMeter}; })()"""


# a streamer's overlay page on another origin (docs/obs.md, "Motion"): the co-host page in an iframe, a mouth bar
# moved by the events the iframe forwards; window.__got records them for the test
OVERLAY = """<!doctype html>
<html><body style="margin:0; background: transparent">
<iframe src="COHOST_URL" allow="autoplay" style="border:0; width:256px; height:256px"></iframe>
<div id="mouth" style="position:fixed; left:8px; bottom:8px; width:12px; height:2px; background:#ff5a7a"></div>
<script>
  const COHOST = new URL("COHOST_URL").origin;
  window.__got = [];
  window.addEventListener('message', (e) => {
    if (e.origin !== COHOST || !e.data || e.data.type !== 'xstreamer-motion') return;
    const v = e.data.detail.values;
    document.getElementById('mouth').style.height = (2 + 40 * v.jawOpen).toFixed(1) + 'px';
    window.__got.push({origin: e.origin, pts: e.data.detail.pts, session: e.data.detail.session,
                       names: Object.keys(v), values: Object.values(v),
                       height: document.getElementById('mouth').style.height});
  });
</script>
</body></html>"""


async def serve_overlay(cohost_url: str) -> tuple[web.AppRunner, str]:
    """The overlay page on a loopback port of its own (another origin than the bridge's); (runner, its URL)."""
    html = OVERLAY.replace("COHOST_URL", cohost_url)
    app = web.Application()
    app.router.add_get("/", lambda _: web.Response(text=html, content_type="text/html"))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/"


async def observe(bridge: BridgeProc, sent: dict, ready: asyncio.Event) -> None:
    """What the bridge sends (a second client of its page socket): the session message, then every packet:
    sent["names"], sent["video"][utt] = [pts], sent["motion"][pts] = {name: value}, sent["ends"] = {utt}."""
    async with aiohttp.ClientSession() as http, http.ws_connect(bridge.api("ws").replace("http", "ws", 1),
                                                                 max_msg_size=0) as ws:
        while True:
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.TEXT:
                control = json.loads(msg.data)
                if control["type"] == "session":
                    sent["names"] = control["motion_channels"]
                    ready.set()
                continue
            if msg.type != aiohttp.WSMsgType.BINARY:
                return
            hlen = struct.unpack(">I", msg.data[12:16])[0]
            header, payload = msg.data[16:16 + hlen], msg.data[16 + hlen:]
            kind = unpack_header(header)["type"]
            pkt, payload = decode_media([b"xs2/page", header] + ([payload] if payload else []))
            if kind == "video":
                sent["video"].setdefault(pkt.utt, []).append(pkt.pts)
            elif kind == "motion":
                sent["motion"][pkt.pts] = motion_values(pkt, payload, sent["names"])
            elif kind == "event" and pkt.event == "utterance_end":
                sent["ends"].add(pkt.utt)


async def scenario(bridge: BridgeProc) -> tuple[list, dict, dict, dict]:
    sent: dict = {"names": None, "video": {}, "motion": {}, "ends": set()}
    ready = asyncio.Event()
    watcher = asyncio.create_task(observe(bridge, sent, ready))
    try:
        async with await Browser.launch() as browser:
            plain = await browser.open(bridge.url)
            await poll_page(plain, "!!window.xstreamerStats && window.xstreamerStats.motionChannels", bool, 60,
                       "the session's channel names on the plain page")
            assert await plain.evaluate("document.getElementById('meter')") is None, "no meter without meter=1"
            await plain.close()   # one page at a time (2 CPU cores)

            await asyncio.wait_for(ready.wait(), 30)
            runner, overlay_url = await serve_overlay(bridge.url)
            try:
                overlay = await browser.open(overlay_url)
                forwarded = await poll_page(overlay, "window.__got || []", lambda got: len(got) >= 10, 60,
                                       "10 motion events forwarded by the co-host iframe")
                await overlay.close()
            finally:
                await runner.cleanup()

            page = await browser.open(bridge.url + "&meter=1")
            stats = await poll_page(page, "window.xstreamerStats", lambda s: s and s["motionChannels"], 60,
                               "the session's channel names")
            assert await page.evaluate(RECORD)
            await poll_page(page, "window.xstreamerStats.motionDispatched", lambda n: n > 0, 30,
                       "motion events of the idle frames")
            async with aiohttp.ClientSession() as http:
                async with http.post(bridge.api("say"), json={"text": "Hello! Please tell me about the weather."}) as r:
                    ack = await r.json()
            assert ack["ok"], ack
            utt = ack["utt"]
            deadline = time.monotonic() + 120
            while utt not in sent["ends"] and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert utt in sent["ends"], "the reply ended within 120 s"
            last = max(sent["video"][utt])
            # the page plays the reply out at its audio clock, behind what was sent
            await poll_page(page, "window.xstreamerStats.clockPts", lambda c: c > last + 2 * SAMPLES_PER_FRAME, 30,
                       "the audible clock past the reply's last frame")
            # in one evaluation: events keep coming (idle frames have motion too)
            final = await page.evaluate(f"({{records: window.__motion, stats: window.xstreamerStats, meter: {METER}}})")
        return final["records"], sent, {**final["stats"], "reply_utt": utt, "forwarded": forwarded}, final["meter"]
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


def test_page_dispatches_motion_at_the_audio_clock():
    daemon = Daemon.start(XSTREAMER, model="tiny-motion")
    try:
        bridge = BridgeProc.start(XSTREAMER, daemon.control)
        try:
            records, sent, stats, meter = asyncio.run(scenario(bridge))
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nbridge log: " + "\n  ".join(bridge.proc.log[-15:])) from None
        finally:
            bridge.stop()
    finally:
        daemon.stop()

    names = list(MOTION_CHANNELS)
    assert sent["names"] == names and len(names) == 26, "the bridge hands the page opened.motion_channels"
    assert stats["motionChannels"] == 26 and stats["errors"] == 0
    utt = stats["reply_utt"]
    frames = sorted(sent["video"][utt])
    reply = [r for r in records if r["utt"] == utt]
    print(f"\nreply {utt}: {len(frames)} frames sent, {len(reply)} motion events dispatched; page in all: "
          f"{stats['motionReceived']} motion received, {stats['motionDispatched']} dispatched, "
          f"{stats['motionLate']} late/overtaken; {stats['framesPainted']} frames painted, {stats['framesLate']} late")
    assert len(frames) >= 25 and len(reply) >= 25, (len(reply), len(frames))
    # motion goes with the painted frames: an event for every painted frame (a frame dropped as late drops its
    # motion too), so the counts match whatever the machine's load (the window between the two counters: 1 frame)
    assert abs(stats["motionDispatched"] - stats["framesPainted"]) <= 1, (stats["motionDispatched"],
                                                                           stats["framesPainted"])
    assert stats["motionReceived"] >= stats["motionDispatched"] + stats["motionLate"]

    session = [r for r in records if r["session"] == records[-1]["session"]]
    pts = [r["pts"] for r in session]
    assert pts == sorted(set(pts)), "events come in pts order, each packet once"
    lags = []
    for r in reply:
        assert r["pts"] in frames, f"event pts {r['pts']} is no video frame of the reply"
        assert r["names"] == names, "the 26 values carry the session's channel names, in order"
        assert dict(zip(r["names"], r["values"])) == sent["motion"][r["pts"]], "the values of the packet of its pts"
        # dispatched once the audible clock reached its pts, and before the clock passed that frame's slot
        assert r["pts"] <= r["clock"] <= r["pts"] + SAMPLES_PER_FRAME, (r["pts"], r["clock"])
        lags.append(r["clock"] - r["pts"])
    same = sum(r["painted"] == r["pts"] for r in reply)
    assert same >= MIN_SHARE * len(reply), f"only {same} of {len(reply)} events came with their frame painted"
    jaw = [dict(zip(r["names"], r["values"]))["jawOpen"] for r in reply]
    assert max(jaw) > min(jaw), "the mouth moves during the reply"
    lags.sort()
    print(f"audible clock - event pts: median {lags[len(lags) // 2] / 22.05:.1f} ms, max {lags[-1] / 22.05:.1f} ms; "
          f"{same}/{len(reply)} with their frame on the canvas; jawOpen {min(jaw):.3f}..{max(jaw):.3f}; "
          f"{len(stats['forwarded'])} events forwarded to the overlay page")

    # an overlay page on another origin got the events of the co-host page it embeds, with the packets' values
    forwarded = stats["forwarded"]
    bridge_origin = bridge.base.rstrip("/")
    assert all(f["origin"] == bridge_origin and f["names"] == names for f in forwarded)
    assert [f["pts"] for f in forwarded] == sorted({f["pts"] for f in forwarded}), "in pts order, each once"
    for f in forwarded:
        values = dict(zip(f["names"], f["values"]))
        assert values == sent["motion"][f["pts"]]
        assert abs(float(f["height"].removesuffix("px")) - (2 + 40 * values["jawOpen"])) <= 0.05 + 1e-6, \
            "the overlay's bar follows jawOpen"

    # the meter is a listener of the same events: it saw them all and shows the last one
    last = dict(zip(records[-1]["names"], records[-1]["values"]))
    assert meter is not None and meter["state"]["events"] >= len(records)
    assert meter["state"]["pts"] == records[-1]["pts"]
    assert abs(meter["state"]["mouth"] - min(1.0, max(0.0, last["jawOpen"]))) < 1e-6
    assert meter["state"]["yaw"] == last["headYaw"]
    if meter["state"]["shown"]:     # (hidden once no event came for 250 ms: a stalled page)
        assert meter["blue"] > 0, "the yaw marker is drawn"
        assert (meter["pink"] > 0) == (round(85 * meter["state"]["mouth"]) > 0), "the mouth bar is jawOpen's"
    else:
        assert meter["blue"] == 0 and meter["pink"] == 0
