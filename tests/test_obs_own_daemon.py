"""`xstreamer obs --start-daemon`: the bridge starts the daemon itself (sdk/launcher.py), watches it, starts it
again on the same ports when it dies, reports a daemon that cannot start, and takes it down when it stops (by
SIGTERM, or when its stdin lifeline closes as when OBS dies)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from plugins.obs_source.procs import BridgeProc
from tests.waiting import alive, wait_for

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[1]
XSTREAMER = str(ROOT / ".venv" / "bin" / "xstreamer")


def health(bridge: BridgeProc) -> dict:
    with urllib.request.urlopen(bridge.api("health"), timeout=10) as resp:
        return json.loads(resp.read())


def test_the_bridge_restarts_its_daemon_and_takes_it_down():
    bridge = BridgeProc.start(XSTREAMER, None, extra=("--start-daemon", "--model", "tiny"))
    try:
        first = wait_for(lambda: (h := health(bridge))["daemon"] and h, 120, "a session on the bridge's daemon")
        own = first["daemon_process"]
        assert own["state"] == "running" and own["starts"] == 1 and own["model"] == "tiny"
        assert first["endpoint"] == own["control"] and first["options"]["start_daemon"] == "tiny"
        os.kill(own["pid"], signal.SIGKILL)                      # the daemon dies
        # the link notices the loss by its heartbeat, so for a moment /health may show the new process beside
        # the old session: wait for the session the new daemon gave
        again = wait_for(lambda: (h := health(bridge))["daemon"] and h["daemon_process"]["starts"] == 2
                         and h["daemon_process"]["state"] == "running" and h["session"] != first["session"] and h,
                         120, "the daemon started again and a new session on it")
        assert again["daemon_process"]["pid"] != own["pid"] and again["daemon_process"]["control"] == own["control"]
        assert any("the daemon exited with code -9" in line for line in bridge.proc.log)
        pid = again["daemon_process"]["pid"]
    finally:
        code = bridge.stop()
    assert code == 0
    wait_for(lambda: not alive(pid), 15, "the daemon to end with the bridge")


def test_a_daemon_that_cannot_start_is_reported():
    bridge = BridgeProc.start(XSTREAMER, None, extra=("--start-daemon", "--model", "no-such-preset"))
    try:
        state = wait_for(lambda: (h := health(bridge))["daemon_process"]["state"] == "failed" and h, 120,
                         "the failed start in /health")
        assert "no-such-preset" in state["daemon_process"]["error"] and state["daemon"] is False
        assert "no-such-preset" in state["error"]
    finally:
        bridge.stop()


def test_the_lifeline_takes_bridge_and_daemon_down():
    """As when OBS is killed: the bridge's stdin pipe closes, the bridge stops, and so does its daemon."""
    proc = subprocess.Popen([sys.executable, "-m", "xstreamer", "obs", "--port", "0", "--start-daemon", "--model",
                             "tiny", "--exit-with-stdin"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        url = proc.stdout.readline().strip()
        bridge = BridgeProc(proc=None, url=url)       # only for its URL helpers
        state = wait_for(lambda: (h := health(bridge))["daemon"] and h, 120, "a session")
        pid = state["daemon_process"]["pid"]
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
        wait_for(lambda: not alive(pid), 15, "the daemon to end with the bridge")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
