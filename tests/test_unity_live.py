"""The Unity bridge's C# core against a live daemon (real ZeroMQ on loopback, real mono, tiny model).

Motion: the session's `opened.motion_channels` reach the core and, for a model that publishes motion, every
video frame of a reply has its motion packet with the same pts (the tiny model publishes none today: the check
then asserts there is none). The core's transport is managed ZMTP: the mono process maps no libzmq (checked at the end), so this runs
the way a Windows or macOS user's first Play does, with no native library installed.

A mono program (plugins/unity_bridge/Tests~/Programs/LiveTest.cs) first opens with a broken portrait (the
daemon refuses it: `invalid_portrait`), then connects and opens a session with a real portrait (the studio
gallery's ada.png), replaces the persona with `set_persona` (acked, no error event), says a sentence (audio
and video pts advance in step, frames are shown by the audio clock), interrupts a long reply (an
`interrupted` event, then at most one chunk more of that utterance), and survives a daemon restart on the
same ports (it reconnects, re-opens and a second sentence plays). Disposing takes < 1 s and closes the
session on the daemon; then, in the same process (a second Play in the editor), a new core reaches Ready,
speaks and receives its audio and video, and is disposed within the same bound.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from unity_build import mb

ROOT = Path(__file__).resolve().parent.parent

_SKIP = mb.missing_tools()
pytestmark = [pytest.mark.mono, pytest.mark.skipif(_SKIP is not None, reason=str(_SKIP))]

READY = re.compile(r"xstreamer daemon ready control=(tcp://\S+):(\d+) media=(tcp://\S+):(\d+) model=(\S+)")
SPF = 882
PORTRAIT = ROOT / "sdk" / "portrait" / "gallery" / "ada.png"
DISPOSE_MS = 1000


def _chunk_frames() -> int:
    try:
        from engine_core.config import PRESETS
        return int(PRESETS["tiny"]().chunk_frames)
    except Exception:   # config layout changed: fall back to the tiny preset's documented value
        return 8


class Daemon:
    """`xstreamer serve --model tiny` as a subprocess; waits for its ready line."""

    def __init__(self, control_port: int = 0, media_port: int = 0):
        cmd = [sys.executable, "-m", "xstreamer", "serve", "--model", "tiny",
               "--control-port", str(control_port),
               "--media-port", str(media_port), "--log-level", "WARNING"]
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env=env)
        deadline = time.monotonic() + 240
        seen = self.output = []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            m = READY.search(line)
            if m:
                self.control = f"{m.group(1)}:{m.group(2)}"
                self.control_port, self.media_port = int(m.group(2)), int(m.group(4))
                # keep draining its output so a chatty daemon never blocks on a full pipe
                threading.Thread(target=self._drain, daemon=True).start()
                return
        self.kill()
        raise RuntimeError("daemon did not get ready:\n" + "".join(seen[-30:]))

    def _drain(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


def _check_in_step(summary: dict) -> None:
    audio = sorted(summary["audio"], key=lambda a: a[2])           # [pts, samples, seq]
    video = sorted(summary["video"], key=lambda v: v[1])           # [pts, seq]
    assert len(audio) >= 10, f"only {len(audio)} audio packets for utt {summary['utt']}"
    assert all(a[1] == SPF for a in audio)
    for prev, nxt in zip(audio, audio[1:]):
        assert nxt[0] == prev[0] + prev[1], f"audio pts jump {prev} -> {nxt}"
    for prev, nxt in zip(video, video[1:]):
        assert nxt[0] == prev[0] + SPF, f"video pts jump {prev} -> {nxt}"
    assert [v[0] for v in video] == [a[0] for a in audio], "one video frame per 40 ms audio packet, same pts"
    assert "UtteranceStart" in summary["events"] and "UtteranceEnd" in summary["events"]
    shown = summary["shown"]                                       # [pts, clock when shown]
    assert len(shown) >= len(video) // 2, f"only {len(shown)} of {len(video)} frames shown by the clock"
    assert all(pts <= clock for pts, clock in shown)
    assert [s[0] for s in shown] == sorted({s[0] for s in shown}), "frames shown in pts order, no repeats"
    assert {s[0] for s in shown} <= {v[0] for v in video}
    if summary["motion"]:    # a model that animates in motion space: one motion packet per video frame, same pts
        assert sorted(summary["motion"]) == [v[0] for v in video], "motion packets do not match the frames"


def run_live(command: list[str], cwd: str | None = None, portrait: str | None = None) -> tuple[dict, str]:
    """Run the LiveTest program (`command` + its two arguments) against a live daemon, restarting the daemon
    when it asks; returns its "TAG {json}" lines and the tail of its output."""
    daemon = Daemon()
    proc = None
    tags: dict[str, dict] = {}
    log: list[str] = []
    try:
        proc = subprocess.Popen([*command, daemon.control, portrait or str(PORTRAIT)], cwd=cwd,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            for text in proc.stdout:
                lines.put(text)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + 500
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1.0)
            except queue.Empty:
                continue
            if line is None:
                break
            log.append(line)
            tag, _, rest = line.strip().partition(" ")
            if rest.startswith("{"):
                tags[tag] = json.loads(rest)
            if tag == "RESTART_ME":
                ports = (daemon.control_port, daemon.media_port)
                daemon.kill()
                daemon = Daemon(*ports)
        rc = proc.wait(timeout=30)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        daemon.kill()
    out = "".join(log[-40:])
    assert rc == 0 and "FAIL" not in tags, out
    return tags, out


def check_live(tags: dict, out: str) -> None:
    assert tags["BAD_PORTRAIT"] == {"kind": "Error", "code": "invalid_portrait"}, out
    assert tags["PORTRAIT"]["bytes"] == PORTRAIT.stat().st_size > 1000
    persona = tags["PERSONA"]
    assert persona["acked"] is True and persona["errors"] == [], out
    assert persona["session"] == tags["READY"]["session"]
    # the tiny model publishes no motion (empty motion_channels); one that does lists all the protocol's channels
    from sdk.protocol import MOTION_CHANNELS
    assert tags["READY"]["motion_channels"] in (0, len(MOTION_CHANNELS))
    assert bool(tags["SAY"]["motion"]) == (tags["READY"]["motion_channels"] > 0)

    _check_in_step(tags["SAY"])

    intr = tags["INTERRUPT"]
    assert "Interrupted" in intr["summary"]["events"], out
    assert intr["audio_after_interrupted"] <= _chunk_frames(), out
    assert intr["playing_utt"] != intr["utt"], "the interrupted reply is still playing"
    assert intr["errors"] == [], "error events before the daemon restart"

    again = tags["RESTARTED"]
    assert again["reconnects"] >= 1
    _check_in_step(again["summary"])
    disposed = tags["DISPOSED"]
    assert disposed["state"] == "Closed" and disposed["ms"] < DISPOSE_MS, disposed
    assert disposed["closed_cleanly"] is True, "Dispose did not close the session on the daemon"

    second = tags["SECOND"]                      # a second Play in the same process: no hang, media flows
    assert second["first_session"] == again["session"]
    assert second["session"] not in (second["first_session"], tags["READY"]["session"])
    assert second["errors"] == [], out
    assert second["summary"]["session"] == second["session"]
    _check_in_step(second["summary"])
    assert tags["NATIVE"]["libzmq_mapped"] is False, "the C# core must not load a native libzmq"
    again_disposed = tags["SECOND_DISPOSED"]
    assert again_disposed["state"] == "Closed" and again_disposed["ms"] < DISPOSE_MS, again_disposed
    assert again_disposed["closed_cleanly"] is True


def test_live_say_interrupt_restart():
    tags, out = run_live(["mono", "--debug", str(mb.program("LiveTest"))])
    assert tags["NATIVE"]["runtime"] == "mono"
    check_live(tags, out)
