"""The OBS bridge and script with a daemon that requires CURVE keys (protocol v2, #23): the script's *CURVE keys
folder* setting reaches the bridge as `--keys`, with which it gets a session; without the keys, or with a client
the daemon does not list, the bridge gets none and says why in /health. Real sockets: `xstreamer keys`, a
`serve --keys` daemon, the bridge the fake-OBS script starts."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from plugins.obs_source.procs import BridgeProc
from sdk.launcher import DaemonProcess
from tests.waiting import wait_for

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[1]
SCRIPT_DIR = ROOT / "plugins" / "obs_source" / "obs_script"
XSTREAMER = str(ROOT / ".venv" / "bin" / "xstreamer")


def xs(*args: str) -> None:
    r = subprocess.run([sys.executable, "-m", "xstreamer", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("keys") / "daemon"
    xs("keys", "init", str(d))
    xs("keys", "client", str(d), "obs")
    xs("keys", "client", str(d), "revoked")
    (d / "authorized" / "revoked.key").unlink()
    return d


@pytest.fixture(scope="module")
def daemon(keys):
    with DaemonProcess(model="tiny", extra_args=["--keys", str(keys)]) as d:
        yield d


def health(url: str, token: str | None = None) -> dict | None:
    req = urllib.request.Request(url, headers={"X-XStreamer-Token": token} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())
    except OSError:
        return None


def test_the_bridge_needs_listed_keys(daemon, keys):
    ok = BridgeProc.start(XSTREAMER, daemon.control, extra=("--keys", str(keys / "clients" / "obs")))
    bare = BridgeProc.start(XSTREAMER, daemon.control)
    revoked = BridgeProc.start(XSTREAMER, daemon.control, extra=("--keys", str(keys / "clients" / "revoked")))
    try:
        live = wait_for(lambda: (h := health(ok.api("health"))) and h["daemon"] and h, 60, "a CURVE session")
        assert live["session"]
        time.sleep(3)                                   # the others had as long to get one
        for other in (bare, revoked):
            h = health(other.api("health"))
            assert h["daemon"] is False and h["session"] is None and h["error"], h
    finally:
        for b in (ok, bare, revoked):
            b.stop()


def test_the_script_passes_its_keys_setting(daemon, keys):
    sys.path.insert(0, str(ROOT / "tests" / "obs_fake"))
    sys.path.insert(0, str(SCRIPT_DIR))
    import obspython  # the fake

    obspython.reset()
    spec = importlib.util.spec_from_file_location("xstreamer_obs_curve_test", SCRIPT_DIR / "xstreamer_obs.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = obspython.obs_data_create()
    script.script_defaults(data)
    obspython.obs_data_set_int(data, "bridge_port", port)
    obspython.obs_data_set_bool(data, "start_daemon", False)
    obspython.obs_data_set_bool(data, "active", True)
    obspython.obs_data_set_string(data, "daemon", daemon.control)
    obspython.obs_data_set_string(data, "keys", str(keys / "clients" / "obs"))
    try:
        script.script_load(data)
        token = script.cohost.spec.token
        live = wait_for(lambda: (h := health(f"http://127.0.0.1:{port}/health", token)) and h["daemon"] and h
                        or obspython.run_timers(), 60, "the script's bridge to get a CURVE session")
        argv = script.cohost.bridge.argv
        assert argv[argv.index("--keys") + 1] == str(keys / "clients" / "obs") and live["session"]
    finally:
        script.script_unload()
