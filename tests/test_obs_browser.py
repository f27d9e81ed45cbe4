"""The OBS page in headless Chromium (driven over the DevTools protocol) against a live daemon and bridge.

The scenario test: transparent before the daemon starts; during a reply the canvas changes, the audio clock
advances and the sync checks hold (A/V offset against the *audible* clock within +-40 ms, at most 10 % of the
reply's frames dropped as late, >= 20 painted fps); the overlay shows only when asked for; mute reaches the
page; after a daemon restart frames are painted again within 3 s; after a bridge restart on the same port the
page reconnects by itself and plays again. The fault test proves the same sync checks fail when the page is
told to hold video back or to paint it against a skewed clock (test-only URL parameters)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from plugins.obs_source.cdp import CHROMIUM, Browser
from plugins.obs_source.procs import BridgeProc, Daemon
from tests.waiting import poll_page, wait_for

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing (apt-get install chromium)"),
]

ROOT = Path(__file__).resolve().parents[1]
XSTREAMER = str(ROOT / ".venv" / "bin" / "xstreamer")
RESUME_S = 3.0          # frames painted again this soon after the restarted daemon's ready line
MAX_AV_MS = 40.0        # |painted frame pts - audible clock|
MAX_LATE_SHARE = 0.10   # frames of a reply dropped because the audible clock passed their slot
MIN_FPS = 20.0          # painted frames per second during a reply (the daemon sends 25)
# The fault test's video hold-back: longer than all the audio the page can have queued ahead of the audible clock
# (prebuffer 100 ms, bursts up to ~200 ms, plus the output lag), so held-back frames land after their slot. 200 ms
# was inside that margin on a loaded 2-core CI machine (14 % late instead of ~50 %).
HOLD_BACK_MS = 600

CANVAS = """(() => {
  const c = document.getElementById('stage');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let hash = 0, alpha = 0;
  for (let i = 0; i < d.length; i += 4) { hash = (hash * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2]) >>> 0; alpha += d[i + 3]; }
  return {hash: hash, alpha: alpha};
})()"""
OVERLAY = """(() => { const o = document.getElementById('overlay');
  return {display: getComputedStyle(o).display, text: o.textContent}; })()"""
OVERLAY_LIVE = re.compile(r"^live  fps \d+  latency \d+ ms  A/V -?\d+(\.\d+)? ms  late \d+/s( {2}muted)?$")
# the page's state and the A/V offsets of the frames it painted since `since` (an index into its trace)
SAMPLE = """((since) => ({stats: window.xstreamerStats, total: window.xstreamerTrace.avOffsetMs.length,
  offsets: window.xstreamerTrace.avOffsetMs.slice(since)}))"""


def post(url: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body or {}).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


async def play_reply(pages: list, bridge: BridgeProc, text: str) -> list[dict]:
    """Chat, then sample every page while the reply's frames arrive at the first one (its `uttReceived`):
    per page {frames_painted, frames_late, late_share, fps, offsets, hashes, clocks, first, last}."""
    start = [await page.evaluate("window.xstreamerTrace.avOffsetMs.length") for page in pages]
    ack = post(bridge.api("say"), {"text": text})
    assert ack["ok"], ack
    await poll_page(pages[0], "window.xstreamerStats.uttReceived", lambda u: u == ack["utt"], 120,
               f"the first frame of utterance {ack['utt']}")
    rows: list[list[tuple[float, dict]]] = [[] for _ in pages]
    hashes: list[set] = [set() for _ in pages]
    samples: list[dict] = [{} for _ in pages]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for i, page in enumerate(pages):
            samples[i] = await page.evaluate(f"{SAMPLE}({start[i]})")
            rows[i].append((time.monotonic(), samples[i]["stats"]))
            canvas = await page.evaluate(CANVAS)
            if canvas["alpha"] > 0:
                hashes[i].add(canvas["hash"])
        if rows[0][-1][1]["uttReceived"] != ack["utt"]:
            break   # the reply ended (idle frames, utt 0) or the daemon went away
        await asyncio.sleep(0.1)
    out = []
    for i in range(len(pages)):
        (t0, first), (t1, last) = rows[i][0], rows[i][-1]
        painted = last["framesPainted"] - first["framesPainted"]
        late = last["framesLate"] - first["framesLate"]
        offsets = samples[i]["offsets"][-painted:] if painted else []
        out.append({"frames_painted": painted, "frames_late": late, "late_share": late / max(1, painted + late),
                    "fps": painted / max(1e-3, t1 - t0), "offsets": offsets, "hashes": hashes[i],
                    "clocks": [s["audioClockSamples"] for _, s in rows[i]], "first": first, "last": last,
                    "utt": ack["utt"]})
    return out


def sync_failures(run: dict) -> list[str]:
    """The page's sync checks for one reply: empty when A/V, late drops and frame rate are all fine."""
    failures = []
    if run["frames_painted"] + run["frames_late"] < 25:
        failures.append(f"too short a reply to judge: {run['frames_painted']} painted, {run['frames_late']} late")
    worst = max((abs(o) for o in run["offsets"]), default=None)
    if worst is None or worst > MAX_AV_MS:
        failures.append(f"A/V offset: max |offset| {worst} ms > {MAX_AV_MS:g} ms")
    if run["late_share"] > MAX_LATE_SHARE:
        failures.append(f"late frames: {run['frames_late']} of {run['frames_painted'] + run['frames_late']} "
                        f"({run['late_share']:.0%}) > {MAX_LATE_SHARE:.0%}")
    if run["fps"] < MIN_FPS:
        failures.append(f"frame rate: {run['fps']:.1f} painted fps < {MIN_FPS:g}")
    return failures


def describe(run: dict) -> str:
    offsets = run["offsets"] or [float("nan")]
    return (f"{run['frames_painted']} painted, {run['frames_late']} late ({run['late_share']:.0%}), "
            f"{run['fps']:.1f} fps, A/V {min(offsets):.1f} .. {max(offsets):.1f} ms, "
            f"output lag {run['last']['outputLagMs']} ms ({run['last']['clockSource']})")


async def assert_plays(page, bridge: BridgeProc, text: str) -> dict:
    run = (await play_reply([page], bridge, text))[0]
    assert sync_failures(run) == [], describe(run)
    assert run["last"]["audioState"] == "running", "the AudioWorklet clock, not the wall-clock fallback"
    assert run["last"]["clockSource"] == "output-timestamp", "the audible clock (AudioContext output timestamps)"
    assert 0 < run["last"]["outputLagMs"] < 500, "the audible clock lags what the worklet rendered"
    assert len(run["clocks"]) >= 10 and run["clocks"][-1] > run["clocks"][0], "the audio clock advances"
    assert len(run["hashes"]) >= 3, "the canvas pixels change while the reply plays"
    assert run["last"]["latencyMs"] is not None and run["last"]["latencyMs"] > 0
    print(f"\nreply {run['utt']}: {describe(run)}, latency {run['last']['latencyMs']} ms")
    return run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def scenario(daemon_args: dict, procs: dict) -> None:
    """`procs["bridge"]` is the running bridge (replaced when the scenario restarts it)."""
    bridge = procs["bridge"]
    connect = f"tcp://127.0.0.1:{daemon_args['control_port']}"
    async with await Browser.launch() as browser:
        page = await browser.open(bridge.url + "&overlay=1")
        plain = await browser.open(bridge.url)
        first = await poll_page(page, "window.xstreamerStats", lambda s: s and s["connected"], 30,
                           "the page to connect to the bridge")
        assert not first["daemonConnected"] and first["framesPainted"] == 0
        assert (await page.evaluate(CANVAS))["alpha"] == 0, "the canvas is transparent while nothing plays"
        overlay = await poll_page(page, OVERLAY, lambda o: o["text"], 5, "the overlay text")
        assert overlay["display"] == "block" and overlay["text"].startswith("no daemon  fps 0  latency -  A/V -")
        await poll_page(plain, "window.xstreamerStats", lambda s: s and s["connected"], 30, "the plain page")
        hidden = await plain.evaluate(OVERLAY)
        assert hidden == {"display": "none", "text": ""}, "no overlay without ?overlay=1"
        await plain.close()   # one page from here on (2 CPU cores)

        daemon = Daemon.start(XSTREAMER, **daemon_args)   # the daemon starts after the bridge and the page
        try:
            await poll_page(page, "window.xstreamerStats", lambda s: s["daemonConnected"], 30,
                       "the page to get a session once the daemon is up")
            run = await assert_plays(page, bridge, "Hello! Please tell me about the weather today.")
            overlay = await page.evaluate(OVERLAY)
            assert overlay["display"] == "block" and OVERLAY_LIVE.match(overlay["text"]), overlay

            # mute: the page's volume goes to 0, its clock keeps running; the bridge sees the page's stats
            assert post(bridge.api("mute"), {"muted": True})["muted"] is True
            muted = await poll_page(page, "window.xstreamerStats", lambda s: s["muted"], 3, "stats.muted")
            await poll_page(page, OVERLAY, lambda o: o["text"].endswith("  muted"), 3, "'muted' in the overlay")
            await poll_page(page, "window.xstreamerStats.audioClockSamples",
                       lambda n: n > muted["audioClockSamples"], 3, "the audio clock to run while muted")
            reported = await asyncio.to_thread(wait_for, lambda: page_stats(bridge).get("muted"), 5,
                                               "the page to report muted")
            assert reported is True, "the page reports its mute state to the bridge (GET /stats)"
            assert post(bridge.api("mute"), {"muted": False})["muted"] is False
            await poll_page(page, "window.xstreamerStats.muted", lambda m: m is False, 3, "unmuted")

            # daemon restart: transparent, then painting again within RESUME_S of its ready line
            sessions = (await page.evaluate("window.xstreamerStats"))["sessions"]
            daemon.stop()
            await poll_page(page, CANVAS, lambda c: c["alpha"] == 0, 10, "a transparent canvas once the daemon stopped")
            painted = (await page.evaluate("window.xstreamerStats"))["framesPainted"]
            daemon = Daemon.start(XSTREAMER, **daemon_args)   # restarted on the same ports
            ready = time.monotonic()
            resumed = await poll_page(page, "window.xstreamerStats",
                                 lambda s: s["daemonConnected"] and s["sessions"] > sessions
                                 and s["framesPainted"] > painted, RESUME_S,
                                 "frames of the restarted daemon painted")
            print(f"daemon restart: painting again {time.monotonic() - ready:.2f} s after its ready line "
                  f"(session {run['last']['session']} -> {resumed['session']})")
            assert resumed["reconnects"] == 0, "the page's own socket to the bridge never dropped"

            # bridge restart on the same port: transparent while it is gone, the page reconnects by itself
            port, token = bridge.port, bridge.token
            bridge.stop()
            gone = await poll_page(page, "window.xstreamerStats", lambda s: not s["connected"] and s["cleared"], 5,
                              "the page to notice the bridge is gone")
            assert not gone["daemonConnected"]
            assert (await page.evaluate(CANVAS))["alpha"] == 0, "transparent while the bridge is gone"
            await asyncio.sleep(1.0)   # the page retries meanwhile (backoff up to 1 s)
            assert (await page.evaluate(CANVAS))["alpha"] == 0
            painted = (await page.evaluate("window.xstreamerStats"))["framesPainted"]
            # the same token (the OBS script keeps one and hands it over in XSTREAMER_OBS_TOKEN): the page's URL
            # stays valid across bridge restarts
            bridge = procs["bridge"] = BridgeProc.start(XSTREAMER, connect, port=port,
                                                        env={"XSTREAMER_OBS_TOKEN": token})
            up = time.monotonic()
            back = await poll_page(page, "window.xstreamerStats",
                              lambda s: s["connected"] and s["daemonConnected"] and s["framesPainted"] > painted,
                              10, "frames painted again through the restarted bridge")
            assert back["reconnects"] >= 1 and back["session"] != resumed["session"]
            print(f"bridge restart: painting again {time.monotonic() - up:.2f} s after its URL line "
                  f"({back['reconnects']} reconnect(s))")
            run2 = await assert_plays(page, bridge, "Welcome back!")
            assert run2["last"]["reconnects"] == back["reconnects"]
        finally:
            daemon.stop()


def page_stats(bridge: BridgeProc) -> dict:
    pages = get(bridge.api("stats"))["pages"]
    return pages[0] if pages else {}


def diagnosis(bridge: BridgeProc) -> str:
    """The bridge's last log lines and counters, for a failure message."""
    try:
        stats = json.dumps(get(bridge.api("stats")))
    except OSError as exc:
        stats = f"(no /stats: {exc})"
    return "\nbridge log: " + "\n  ".join(bridge.proc.log[-15:]) + f"\nbridge /stats: {stats}"


def test_page_plays_in_sync_and_survives_daemon_and_bridge_restarts():
    ports = {"control_port": free_port(), "media_port": free_port()}
    procs = {"bridge": BridgeProc.start(XSTREAMER, f"tcp://127.0.0.1:{ports['control_port']}")}
    try:
        asyncio.run(scenario(ports, procs))
    except AssertionError as exc:
        raise AssertionError(f"{exc}{diagnosis(procs['bridge'])}") from None
    finally:
        procs["bridge"].stop()


async def faults(bridge: BridgeProc) -> list[dict]:
    async with await Browser.launch() as browser:
        pages = [await browser.open(bridge.url + f"&test_video_delay_ms={HOLD_BACK_MS}"),
                 await browser.open(bridge.url + "&test_av_skew_ms=-80")]
        for page in pages:
            await poll_page(page, "window.xstreamerStats", lambda s: s and s["daemonConnected"] and s["framesReceived"],
                       30, "a session and its idle frames")
        await asyncio.sleep(0.5)
        return await play_reply(pages, bridge, "Hello! Please tell me about the weather today.")


def test_sync_checks_fail_on_injected_faults():
    """The checks of the scenario test are not true by construction: held-back video is dropped as late (and
    the frame rate collapses), and frames painted against a skewed clock show as an A/V offset, because the
    offset is measured against the audible clock, not the clock the frames were chosen by."""
    daemon = Daemon.start(XSTREAMER)
    try:
        bridge = BridgeProc.start(XSTREAMER, daemon.control)
        try:
            delayed, skewed = asyncio.run(faults(bridge))
        except AssertionError as exc:
            raise AssertionError(f"{exc}{diagnosis(bridge)}") from None
        finally:
            bridge.stop()
    finally:
        daemon.stop()
    print(f"\nvideo held back {HOLD_BACK_MS} ms: {describe(delayed)}\npainted against a -80 ms clock: {describe(skewed)}")
    assert delayed["last"]["testVideoDelayMs"] == HOLD_BACK_MS and skewed["last"]["testAvSkewMs"] == -80
    failed = sync_failures(delayed)
    assert any(f.startswith("late frames") for f in failed), failed
    assert delayed["late_share"] > 0.3                  # far past the 10 % the sync checks allow
    failed = sync_failures(skewed)
    assert any(f.startswith("A/V offset") for f in failed), failed
    assert skewed["offsets"] and max(skewed["offsets"]) <= -80 + 1 and min(skewed["offsets"]) > -80 - 45
