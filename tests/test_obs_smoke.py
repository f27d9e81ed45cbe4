"""OBS Studio itself runs the script: Debian's obs-studio 29 under Xvfb, with a throw-away config directory whose
scene collection lists plugins/obs_source/obs_script/xstreamer_obs.py (as Tools -> Scripts would).

OBS's own Python 3.11 (not the venv) runs the script. No terminal and no path set: the script finds the clone's
`.venv` from its own location, starts the bridge with it, and the bridge starts the daemon (`--model tiny`).

1. `test_obs_runs_the_cohost_quietly_and_ends_it_with_obs`: the co-host comes up by itself (the scene
   collection saved it as active), the script logs nothing above "info" (OBS pops its Script Log window open on
   warnings and errors; the test also asks X whether such a window is mapped), OBS's SIGINT (its graceful
   shutdown) unloads the script within 0.5 s by OBS's own log stamps, and the bridge and the daemon end with it.
2. `test_obs_without_obs_browser_says_so_and_a_crash_takes_the_cohost_down`: a test-only driver script
   (tests/obs_driver) presses *Add / update the co-host* on OBS's UI thread: Debian's OBS has no obs-browser, so
   the script must log an error that says so (and no success line), show it in its properties' status line and
   pop the Script Log open; the placement code is checked against real libobs with a source type Debian's OBS
   has. The co-host still starts; then OBS is killed with SIGKILL (no unload at all) and the bridge (its stdin
   lifeline closed) and its daemon must still go away.
Skipped without /usr/bin/obs or Xvfb (`apt-get install obs-studio xvfb`, in `scripts/setup.sh --test`).
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

from tests.waiting import alive

OBS = "/usr/bin/obs"
XVFB = shutil.which("Xvfb")
XWININFO = shutil.which("xwininfo")
ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "plugins" / "obs_source" / "obs_script" / "xstreamer_obs.py"
DRIVER = ROOT / "tests" / "obs_driver" / "xstreamer_obs_driver.py"
TOKEN = "smoke-test-token-0123456789abcdef"

pytestmark = [
    pytest.mark.process,
    pytest.mark.slow,
    pytest.mark.process,
    pytest.mark.skipif(not Path(OBS).exists() or XVFB is None,
                       reason="needs Debian's OBS Studio and Xvfb (apt-get install obs-studio xvfb)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def obs_config(home: Path, scripts: list[tuple[Path, dict]], canvas: tuple[int, int] = (1280, 720)) -> Path:
    """A first-run-free OBS config under `home`: one profile, one scene collection listing `scripts`."""
    cfg = home / ".config" / "obs-studio"
    (cfg / "basic" / "profiles" / "Untitled").mkdir(parents=True)
    (cfg / "basic" / "scenes").mkdir(parents=True)
    (cfg / "global.ini").write_text(
        "[General]\nFirstRun=true\nLastVersion=486539264\nEnableAutoUpdates=false\n"   # 29.0.0: no what's-new
        "[Basic]\nProfile=Untitled\nProfileDir=Untitled\nSceneCollection=Untitled\nSceneCollectionFile=Untitled\n")
    (cfg / "basic" / "profiles" / "Untitled" / "basic.ini").write_text(
        f"[General]\nName=Untitled\n[Video]\nBaseCX={canvas[0]}\nBaseCY={canvas[1]}\nOutputCX={canvas[0]}\n"
        f"OutputCY={canvas[1]}\nFPSCommon=30\n")
    scene = {"current_scene": "Scene", "current_program_scene": "Scene", "name": "Untitled",
             "scene_order": [{"name": "Scene"}],
             "sources": [{"id": "scene", "versioned_id": "scene", "name": "Scene",
                          "settings": {"items": [], "id_counter": 0}}],
             "modules": {"scripts-tool": [{"path": str(path), "settings": settings} for path, settings in scripts]}}
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
    req = urllib.request.Request(f"http://127.0.0.1:{port}/health", headers={"X-XStreamer-Token": TOKEN})
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return json.loads(resp.read())
    except OSError:
        return None


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not alive(pid)


def stamp(log: str, line: str) -> datetime:
    """The time stamp OBS's log file puts before the first line containing `line`."""
    match = re.search(r"^(\d\d:\d\d:\d\d\.\d{3}): .*" + re.escape(line), log, re.M)
    assert match, f"no {line!r} in OBS's log file"
    return datetime.strptime(match.group(1), "%H:%M:%S.%f")


def mapped_windows(display: str) -> list[str]:
    """Names of the viewable top-level windows on `display` (xwininfo), [] without xwininfo."""
    if XWININFO is None:
        return []
    tree = subprocess.run([XWININFO, "-display", display, "-root", "-tree"], capture_output=True, text=True,
                          timeout=10).stdout
    names = []
    for wid, name in re.findall(r"^\s+(0x[0-9a-f]+) \"([^\"]*)\"", tree, re.M):
        info = subprocess.run([XWININFO, "-display", display, "-id", wid], capture_output=True, text=True,
                              timeout=10).stdout
        if "IsViewable" in info:
            names.append(name)
    return names


class ObsRun:
    """OBS under its own Xvfb with a throw-away HOME; the log of its stdout in `out`."""

    def __init__(self, home: Path, scripts: list[tuple[Path, dict]]) -> None:
        self.cfg = obs_config(home, scripts)
        # QT_QPA_PLATFORM: the test suite sets "offscreen" for the studio; OBS must draw real X windows here (the
        # Script Log check asks the X server which windows are mapped)
        self.env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                    "LIBGL_ALWAYS_SOFTWARE": "1", "XSTREAMER_OBS_TOKEN": "", "QT_QPA_PLATFORM": "xcb"}
        self.out = home / "obs-stdout.txt"
        self.xvfb, self.display = start_xvfb()
        with self.out.open("wb") as sink:
            self.obs = subprocess.Popen([OBS, "--minimize-to-tray", "--disable-shutdown-check", "--multi"],
                                        env={**self.env, "DISPLAY": self.display}, stdout=sink,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=home)

    def wait(self, pattern: str, timeout: float) -> re.Match:
        return wait_log(self.out, pattern, timeout, self.obs)

    def text(self) -> str:
        return self.out.read_text(errors="replace")

    def close(self) -> None:
        if self.obs.poll() is None:
            self.obs.kill()
            self.obs.wait()
        self.xvfb.terminate()
        self.xvfb.wait(timeout=10)


def cohost_settings(port: int, **extra) -> dict:
    # the token is fixed here so that the test can ask the script's bridge for /health
    return {"bridge_port": port, "model": "tiny", "bridge_token": TOKEN, **extra}


def xstreamer_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "[xstreamer]" in line]


def test_obs_runs_the_cohost_quietly_and_ends_it_with_obs(tmp_path):
    port = free_port()
    run = ObsRun(tmp_path, [(SCRIPT, cohost_settings(port, active=True))])
    bridge_pid = daemon_pid = None
    try:
        loaded = run.wait(r"\[Python: xstreamer_obs\.py\] \[xstreamer\] loaded \(Python (3\.\d+)\.\d+\); "
                          rf"bridge http://127\.0\.0\.1:{port}/, daemon started here \(model tiny\)", 40)
        assert loaded.group(1) == "3.11", "Debian's OBS 29 runs scripts with the system Python 3.11"
        started = run.wait(r"\[xstreamer\] started the bridge \(the environment at (\S+)\): (\S+) -m xstreamer obs "
                           rf"--port {port} --exit-with-stdin --start-daemon --model tiny", 30)
        assert started.group(1) == str(ROOT / ".venv"), "found from the script's own location, nothing set"
        run.wait(rf"\[xstreamer\] co-host live: session s\w+ at http://127\.0\.0\.1:{port}/", 180)
        state = health(port)
        assert state and state["daemon"] and state["daemon_process"]["state"] == "running", state
        bridge_pid, daemon_pid = state["pid"], state["daemon_process"]["pid"]
        lines = xstreamer_lines(run.text())
        assert not [ln for ln in lines if re.match(r"(warning|error):", ln)], \
            f"a normal start logs quietly: {lines}"
        shown = mapped_windows(run.display)
        assert any(name.startswith("OBS ") for name in shown) or XWININFO is None, shown
        assert "Script Log" not in shown, "the Script Log window stayed closed"

        run.obs.send_signal(signal.SIGINT)   # OBS 29 shuts down gracefully on SIGINT (SIGTERM kills it outright)
        assert run.obs.wait(timeout=30) == 0
        text = run.text()
        assert "Traceback" not in text
        log_files = sorted((run.cfg / "logs").glob("*.txt"))
        assert log_files, "OBS wrote no log file"
        log = log_files[-1].read_text(errors="replace")
        unload = stamp(log, "Unloaded python script: xstreamer_obs.py") - stamp(log, "==== Shutting down")
        assert unload.total_seconds() < 0.5, f"OBS spent {unload.total_seconds():.2f} s unloading the script"
        assert wait_gone(bridge_pid, 15), "the bridge the script started ends with OBS"
        assert wait_gone(daemon_pid, 15), "…and the daemon the bridge started"
        print(f"\nOBS ran the co-host (Python {loaded.group(1)}); unload took {unload.total_seconds() * 1000:.0f} ms")
    finally:
        run.close()
        for pid in (bridge_pid, daemon_pid):
            if pid is not None and alive(pid):     # it outlived OBS: the test failed; clean up
                os.kill(pid, signal.SIGKILL)


def test_obs_without_obs_browser_says_so_and_a_crash_takes_the_cohost_down(tmp_path):
    port = free_port()
    run = ObsRun(tmp_path, [(SCRIPT, cohost_settings(port, size_pct=50, corner="bottom-right")), (DRIVER, {})])
    bridge_pid = daemon_pid = None
    try:
        # (OBS labels a script_log line with the script whose callback is running: the driver's here)
        error = run.wait(r"error: \[Python: [\w.]+\] \[xstreamer\] (This OBS has no Browser Source[^\n]*)", 40)
        assert "obs-browser" in error.group(1)
        status = run.wait(r"xstreamer_obs_driver\.py\] DRIVER status level=(-?\d+) text=([^\n]*)", 20)
        assert "no Browser Source" in status.group(2) and f"?token={TOKEN}" in status.group(2)
        assert status.group(1) in ("2", "-1"), "shown as an error (OBS_TEXT_INFO_ERROR) where OBS exposes it"
        placed = run.wait(r"DRIVER placed ok=True canvas=1280x720 pos=(\S+) bounds=(\S+) align=(\d+) "
                          r"bounds_type=(\d+)", 20)
        assert placed.group(1) == "1266,706" and placed.group(2) == "360,360", placed.group(0)
        assert placed.group(3) == "10" and placed.group(4) == "2", "bottom right, scaled inside its bounds"
        lines = xstreamer_lines(run.text())
        # no success line for the Browser Source: the only "added at" is the driver's color-source check
        assert len([ln for ln in lines if "added at" in ln]) == 1
        deadline = time.monotonic() + 10
        while "Script Log" not in (shown := mapped_windows(run.display)) and time.monotonic() < deadline:
            time.sleep(0.2)
        if XWININFO:
            assert "Script Log" in shown, f"an error pops OBS's Script Log open; mapped windows: {shown}"

        # the co-host still runs (its page can be used elsewhere); then OBS dies without unloading anything
        run.wait(rf"\[xstreamer\] co-host live: session s\w+ at http://127\.0\.0\.1:{port}/", 180)
        state = health(port)
        bridge_pid, daemon_pid = state["pid"], state["daemon_process"]["pid"]
        run.obs.kill()
        run.obs.wait()
        assert wait_gone(bridge_pid, 15), "the bridge ends when OBS dies (its stdin lifeline closes)"
        assert wait_gone(daemon_pid, 15), "…and stops the daemon it started"
    finally:
        run.close()
        for pid in (bridge_pid, daemon_pid):
            if pid is not None and alive(pid):
                os.kill(pid, signal.SIGKILL)
