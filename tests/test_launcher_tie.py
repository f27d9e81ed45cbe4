"""A daemon started through sdk/launcher.py ends with the process that started it.

A studio-like parent (a Qt application running the studio's own `studio_gui.preview.daemon_process`, which uses
`sdk.launcher`) starts `xstreamer serve --model tiny`; the test kills the parent with SIGKILL (no clean-up can
run) and the daemon must be gone shortly after: once while the model is still loading and once while it serves.
The mechanism is a pipe on the daemon's stdin (`--exit-with-stdin`), nothing OS-specific; the test's own process
bookkeeping reads /proc, so it runs on Linux.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.waiting import alive

pytest.importorskip("PySide6")
if not Path("/proc/self/stat").exists():
    pytest.skip("the test reads /proc to see whether the daemon is gone", allow_module_level=True)

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parent.parent

PARENT = r"""
import sys
from PySide6.QtCore import QCoreApplication, QTimer
from studio_gui.preview.daemon_process import DaemonProcess

app = QCoreApplication([])
d = DaemonProcess()
d.ready.connect(lambda c, m, model: print("READY", d.pid, c, flush=True))
d.failed.connect(lambda why: (print("FAILED", why, flush=True), app.exit(1)))
d.start("tiny")
print("LAUNCHED", d.pid, flush=True)
app.exec()
"""


def _wait_gone(pid: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return not alive(pid)


def _parent() -> subprocess.Popen:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-c", PARENT], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)


def _line(proc: subprocess.Popen, prefix: str) -> list[str]:
    for line in proc.stdout:
        if line.startswith(prefix):
            return line.split()
        assert not line.startswith("FAILED"), line
    raise AssertionError(f"the parent ended without a {prefix} line (exit {proc.wait()})")


def _kill_all(parent: subprocess.Popen, daemon_pid: int | None) -> None:
    parent.kill()
    parent.wait(10)
    if daemon_pid and alive(daemon_pid):
        os.kill(daemon_pid, 9)


@pytest.mark.parametrize("when", ["loading", "serving"])
def test_daemon_dies_with_a_killed_studio(when):
    parent = _parent()
    daemon_pid = None
    try:
        daemon_pid = int(_line(parent, "LAUNCHED")[1])
        assert alive(daemon_pid)
        if when == "serving":
            ready = _line(parent, "READY")
            assert int(ready[1]) == daemon_pid and ready[2].startswith("tcp://127.0.0.1:")
        time.sleep(0.5)
        assert alive(daemon_pid), "the daemon must run while its parent does"
        parent.kill()                                    # SIGKILL: the parent cleans nothing up
        parent.wait(10)
        assert _wait_gone(daemon_pid, 30.0), f"the daemon (pid {daemon_pid}) outlived its parent ({when})"
    finally:
        _kill_all(parent, daemon_pid)


def test_launcher_stop_closes_the_pipe_and_the_daemon_exits_cleanly():
    """stop() first closes the stdin pipe: the daemon stops by itself (exit code 0, no signal needed)."""
    from sdk.launcher import EXIT_WITH_STDIN, DaemonProcess

    lines: list[str] = []
    d = DaemonProcess(model="tiny", on_line=lines.append)
    assert EXIT_WITH_STDIN in d.cmd
    with d:
        assert d.endpoints == (d.control, d.media, "tiny") and d.alive()
        d.proc.stdin.close()                                 # what a dead parent's OS does
        assert d.wait(30) == 0
    assert any("standard input closed" in ln for ln in lines), lines[-5:]
