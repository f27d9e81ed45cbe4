"""The bridge's start and stop on every OS, run for real on this machine (plugins/obs_source/lifecycle.py).

The Windows code paths are taken by injecting `Platform("win32")` into the real bridge (`bridge.serve`, in this
process, on its real HTTP port): a `SelectorEventLoop` whose `add_signal_handler` raises NotImplementedError as
Windows' loops do, the `signal.signal` fallback for Ctrl+C, and the stdin lifeline (`--exit-with-stdin`) the OBS
script relies on. The Unix path (add_signal_handler) is checked the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import threading
import time
import urllib.request

import pytest

from plugins.obs_source import bridge, lifecycle

pytestmark = pytest.mark.process   # subprocesses / loopback sockets (docs/testing.md's fast subset skips these)

TOKEN = "lifecycle-test-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def args_for(port: int, exit_with_stdin: bool) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bridge.configure(parser)
    argv = ["--connect", f"tcp://127.0.0.1:{free_port()}", "--port", str(port)]
    return parser.parse_args(argv + (["--exit-with-stdin"] if exit_with_stdin else []))


def health(port: int) -> dict | None:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/health", headers={"X-XStreamer-Token": TOKEN})
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            return json.loads(resp.read())
    except OSError:
        return None


def run_bridge(platform: lifecycle.Platform, stop_it, exit_with_stdin: bool = True) -> tuple[int, dict, float]:
    """Serve the bridge on this (main) thread until `stop_it(read_end_writer)` (run on a helper thread once
    /health answers) stops it. Returns (exit code, /health, seconds from the stop to the return)."""
    port = free_port()
    read_fd, write_fd = os.pipe()
    stdin, writer = os.fdopen(read_fd, "rb"), os.fdopen(write_fd, "wb")
    seen: dict = {}
    stopped_at: list[float] = []

    def driver() -> None:
        deadline = time.monotonic() + 30
        while (h := health(port)) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        seen.update(h or {})
        stopped_at.append(time.monotonic())
        stop_it(writer)

    helper = threading.Thread(target=driver, daemon=True)
    helper.start()
    try:
        code = lifecycle.run(lambda: bridge.serve(args_for(port, exit_with_stdin), platform, stdin=stdin,
                                                  environ={"XSTREAMER_OBS_TOKEN": TOKEN}), platform)
    finally:
        helper.join(5)
        for f in (stdin, writer):
            try:
                f.close()
            except OSError:
                pass
    assert health(port) is None, "the bridge's port is closed once serve() returned"
    return code, seen, time.monotonic() - stopped_at[0]


@pytest.fixture
def windows_loop(monkeypatch):
    """Windows' event loops have no add_signal_handler: make this machine's selector loop behave the same, and
    record every call that would have been made."""
    calls = []

    def refuse(self, sig, callback, *args):
        calls.append(sig)
        raise NotImplementedError
    monkeypatch.setattr(asyncio.SelectorEventLoop, "add_signal_handler", refuse)
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield calls
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_windows_path_stops_when_its_lifeline_closes(windows_loop, capsys):
    code, seen, took = run_bridge(lifecycle.Platform("win32"), lambda writer: writer.close())
    assert code == 0 and seen["ok"] and seen["authorized"], seen
    assert windows_loop == [], "the Windows path never asks the loop for signal handlers"
    assert signal.getsignal(signal.SIGINT) not in (signal.default_int_handler, signal.SIG_DFL), \
        "Ctrl+C gets a signal.signal handler instead"
    err = capsys.readouterr().err
    assert "serving on port" in err and "(win32; stop signals: signal; exits when stdin closes)" in err
    assert took < 10


def test_windows_path_stops_on_ctrl_c(windows_loop, capsys):
    code, seen, _ = run_bridge(lifecycle.Platform("win32"), lambda writer: os.kill(os.getpid(), signal.SIGINT),
                               exit_with_stdin=False)
    assert code == 0 and seen["ok"]
    assert "stop signals: signal)" in capsys.readouterr().err


def test_windows_path_runs_on_a_selector_loop():
    loops = []

    async def main() -> int:
        loops.append(type(asyncio.get_running_loop()))
        return 7
    assert lifecycle.run(main, lifecycle.Platform("win32")) == 7
    assert issubclass(loops[0], asyncio.SelectorEventLoop), "pyzmq's asyncio sockets need add_reader"


def test_unix_path_uses_loop_signal_handlers(capsys):
    code, seen, _ = run_bridge(lifecycle.Platform("linux"), lambda writer: os.kill(os.getpid(), signal.SIGTERM),
                               exit_with_stdin=False)
    assert code == 0 and seen["ok"]
    assert "(linux; stop signals: loop)" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None), "the loop took its handler back"


def test_stop_signals_per_platform():
    assert signal.SIGTERM in lifecycle.Platform("linux").stop_signals()
    win = lifecycle.Platform("win32").stop_signals()
    assert signal.SIGINT in win and signal.SIGTERM not in win   # SIGBREAK where the signal module has it
