"""OBS Studio itself loads the script: Debian's obs-studio 29 under Xvfb, with a throw-away config directory
whose scene collection lists plugins/obs_source/obs_script/xstreamer_obs.py (as Tools -> Scripts would).

OBS's own Python 3.11 (not the venv) runs the script; the script starts the real bridge, which finds no daemon.
The test reads OBS's log for the script's loaded line and its missing-daemon line, asks the bridge the script
started for /health, starts the daemon (`xstreamer serve --model tiny`) on the configured port and waits for
the script's "co-host live" line, then ends OBS with SIGINT (its graceful shutdown): OBS unloads the script
without waiting on it, and the bridge goes away with it. Skipped without /usr/bin/obs or Xvfb
(`apt-get install obs-studio xvfb`, in `scripts/setup.sh --test`). Takes ~6 s.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from plugins.obs_source.procs import Daemon

OBS = "/usr/bin/obs"
XVFB = shutil.which("Xvfb")
ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "plugins" / "obs_source" / "obs_script" / "xstreamer_obs.py"
XSTREAMER = str(ROOT / ".venv" / "bin" / "xstreamer")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(OBS).exists() or XVFB is None,
                       reason="needs Debian's OBS Studio and Xvfb (apt-get install obs-studio xvfb)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def obs_config(home: Path, settings: dict) -> Path:
    """A first-run-free OBS config under `home`: one profile, one scene collection listing the script."""
    cfg = home / ".config" / "obs-studio"
    (cfg / "basic" / "profiles" / "Untitled").mkdir(parents=True)
    (cfg / "basic" / "scenes").mkdir(parents=True)
    (cfg / "global.ini").write_text(
        "[General]\nFirstRun=true\nLastVersion=486539264\nEnableAutoUpdates=false\n"   # 29.0.0: no what's-new
        "[Basic]\nProfile=Untitled\nProfileDir=Untitled\nSceneCollection=Untitled\nSceneCollectionFile=Untitled\n")
    (cfg / "basic" / "profiles" / "Untitled" / "basic.ini").write_text(
        "[General]\nName=Untitled\n[Video]\nBaseCX=640\nBaseCY=360\nOutputCX=640\nOutputCY=360\nFPSCommon=30\n")
    scene = {"current_scene": "Scene", "current_program_scene": "Scene", "name": "Untitled",
             "scene_order": [{"name": "Scene"}],
             "sources": [{"id": "scene", "versioned_id": "scene", "name": "Scene",
                          "settings": {"items": [], "id_counter": 0}}],
             "modules": {"scripts-tool": [{"path": str(SCRIPT), "settings": settings}]}}
    (cfg / "basic" / "scenes" / "Untitled.json").write_text(json.dumps(scene))
    return cfg


def start_xvfb() -> tuple[subprocess.Popen, str]:
    read, write = os.pipe()
    proc = subprocess.Popen([XVFB, "-displayfd", str(write), "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as f:
        display = f.readline().strip()
    if not display:
        proc.kill()
        raise RuntimeError("Xvfb printed no display number")
    return proc, f":{display}"


def wait_log(path: Path, pattern: str, timeout: float, proc: subprocess.Popen) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, path.read_text(errors="replace")) if path.exists() else None
        if match:
            return match
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    text = path.read_text(errors="replace") if path.exists() else "(no log)"
    raise AssertionError(f"OBS never logged {pattern!r} (rc {proc.poll()}); its output ends:\n{text[-3000:]}")


def health(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return json.loads(resp.read())
    except OSError:
        return None


def stamp(log: str, line: str) -> datetime:
    """The time stamp OBS's log file puts before the first line containing `line`."""
    match = re.search(r"^(\d\d:\d\d:\d\d\.\d{3}): .*" + re.escape(line), log, re.M)
    assert match, f"no {line!r} in OBS's log file"
    return datetime.strptime(match.group(1), "%H:%M:%S.%f")


def test_obs_studio_loads_the_script_reports_the_missing_daemon_then_goes_live(tmp_path):
    port, control, media = free_port(), free_port(), free_port()
    daemon = f"tcp://127.0.0.1:{control}"
    cfg = obs_config(tmp_path, {"daemon": daemon, "bridge_port": port, "xstreamer": XSTREAMER})
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / ".config"),
           "LIBGL_ALWAYS_SOFTWARE": "1"}
    out = tmp_path / "obs-stdout.txt"
    xvfb, display = start_xvfb()
    obs = bridge_pid = live = None
    try:
        with out.open("wb") as sink:
            obs = subprocess.Popen([OBS, "--minimize-to-tray", "--disable-shutdown-check", "--multi"],
                                   env={**env, "DISPLAY": display}, stdout=sink, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, cwd=tmp_path)
        loaded = wait_log(out, r"\[Python: xstreamer_obs\.py\] \[xstreamer\] loaded \(Python (3\.\d+)\.\d+\); "
                               rf"bridge http://127\.0\.0\.1:{port}/, daemon {re.escape(daemon)}", 40, obs)
        assert loaded.group(1) == "3.11", "Debian's OBS 29 runs scripts with the system Python 3.11"
        wait_log(out, r"\[obs-scripting\]: Loaded python script: xstreamer_obs\.py", 10, obs)
        wait_log(out, rf"\[xstreamer\] started the bridge: {re.escape(XSTREAMER)} obs "
                      rf"--connect {re.escape(daemon)} --port {port}", 20, obs)
        wait_log(out, rf"\[xstreamer\] the daemon at {re.escape(daemon)} does not answer \(.*\); "
                      r"the bridge keeps retrying", 30, obs)
        state = health(port)
        assert state and state["daemon"] is False and state["endpoint"] == daemon, state
        bridge_pid = state["pid"]
        live = Daemon.start(XSTREAMER, control_port=control, media_port=media)   # the daemon comes up late
        wait_log(out, r"\[xstreamer\] co-host live: session s\w+ at " + re.escape(f"http://127.0.0.1:{port}/"),
                 30, obs)

        obs.send_signal(signal.SIGINT)   # OBS 29 shuts down gracefully on SIGINT (SIGTERM kills it outright)
        assert obs.wait(timeout=20) == 0
        text = out.read_text(errors="replace")
        assert "Traceback" not in text and "[xstreamer] Error" not in text
        log_files = sorted((cfg / "logs").glob("*.txt"))
        assert log_files, "OBS wrote no log file"
        log = log_files[-1].read_text(errors="replace")
        unload = stamp(log, "Unloaded python script: xstreamer_obs.py") - stamp(log, "==== Shutting down")
        assert unload.total_seconds() < 0.5, f"OBS spent {unload.total_seconds():.2f} s unloading the script"
        deadline = time.monotonic() + 5
        while health(port) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert health(port) is None, "the bridge the script started ends with OBS"
        print(f"\nOBS loaded the script (Python {loaded.group(1)}); "
              f"unload took {unload.total_seconds() * 1000:.0f} ms")
    finally:
        if live is not None:
            live.stop()
        if obs is not None and obs.poll() is None:
            obs.kill()
            obs.wait()
        left = health(port)
        if bridge_pid is not None and left and left.get("pid") == bridge_pid:   # it outlived OBS: the test failed
            os.kill(bridge_pid, signal.SIGTERM)
        xvfb.terminate()
        xvfb.wait(timeout=10)
