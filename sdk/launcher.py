"""Start `xstreamer serve` as a subprocess and wait for its ready line (for tests, plugins and the studio).

    with DaemonProcess(model="tiny") as d:        # free ports on 127.0.0.1
        client = Client(d.control)
        ...

The daemon prints exactly one line to stdout when its sockets are bound:
`xstreamer daemon ready control=tcp://HOST:PORT media=tcp://HOST:PORT model=NAME` (see `parse_ready_line`).

The daemon is tied to the process that launched it: it gets `--exit-with-stdin` and a pipe on its standard
input whose other end only this process holds. When this process exits or dies (a crash, `kill -9`, Windows'
TerminateProcess) the OS closes that end and the daemon stops by itself, on every OS. `stop()` uses the same
door first (closing the pipe is a clean stop on Windows too), then terminate, then kill.

Non-blocking use (a GUI): `launch()` returns at once; `on_line(line)` sees every output line (from reader
threads); `wait_ready(timeout)` blocks until the ready line, or raises DaemonStartError with the daemon's
last lines when it exits or the time runs out.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import deque
from typing import Callable

from sdk.protocol.constants import DEFAULT_HOST
from sdk.protocol.ready import READY_RE, parse_ready_line  # noqa: F401  (re-exported: the launcher's API)

EXIT_WITH_STDIN = "--exit-with-stdin"      # `xstreamer serve` flag: stop when standard input closes


class DaemonStartError(RuntimeError):
    """The daemon could not be started, exited before its ready line, or did not get ready in time."""




def serve_command(model: str = "tiny", host: str = DEFAULT_HOST, control_port: int = 0, media_port: int = 0,
                  extra_args: list[str] | None = None, python: str | None = None,
                  tie_to_parent: bool = True) -> list[str]:
    """The argv of `xstreamer serve` (with `--exit-with-stdin` when `tie_to_parent`)."""
    cmd = [python or sys.executable, "-m", "xstreamer", "serve", "--model", model, "--host", host,
           "--control-port", str(control_port), "--media-port", str(media_port)]
    return cmd + ([EXIT_WITH_STDIN] if tie_to_parent else []) + list(extra_args or [])


class DaemonProcess:
    """A daemon subprocess. `start()` returns once it is ready (or raises DaemonStartError with its stderr).

    on_line:       called with every stdout/stderr line but the ready line (from reader threads)
    tie_to_parent: give the daemon a stdin pipe and `--exit-with-stdin` (default), so it ends with this process
    """

    def __init__(self, model: str = "tiny", host: str = DEFAULT_HOST, control_port: int = 0,
                 media_port: int = 0,
                 extra_args: list[str] | None = None, python: str | None = None, ready_timeout: float = 120.0,
                 env: dict[str, str] | None = None, on_line: Callable[[str], None] | None = None,
                 tie_to_parent: bool = True):
        self.cmd = serve_command(model, host, control_port, media_port, extra_args, python, tie_to_parent)
        self.tie_to_parent = tie_to_parent
        self.ready_timeout = ready_timeout
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.on_line = on_line
        self.proc: subprocess.Popen | None = None
        self.control = ""
        self.media = ""
        self.model = ""
        self.stderr_tail: deque[str] = deque(maxlen=200)
        self._ready = threading.Event()
        self._stdout_done = threading.Event()

    @property
    def endpoints(self) -> tuple[str, str, str] | None:
        """(control, media, model) once ready, else None."""
        return (self.control, self.media, self.model) if self._ready.is_set() else None

    def launch(self) -> "DaemonProcess":
        """Start the process and its output readers; returns at once (DaemonStartError if it cannot start)."""
        if self.proc is not None:
            raise DaemonStartError("this DaemonProcess was already launched")
        try:
            stdin = subprocess.PIPE if self.tie_to_parent else subprocess.DEVNULL
            self.proc = subprocess.Popen(self.cmd, stdin=stdin,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env,
                                         text=True, encoding="utf-8", errors="replace", bufsize=1)
        except OSError as exc:
            raise DaemonStartError(f"cannot start the daemon ({' '.join(self.cmd)}): {exc}") from exc
        threading.Thread(target=self._read_stderr, name="xstreamer-daemon-stderr", daemon=True).start()
        threading.Thread(target=self._read_stdout, name="xstreamer-daemon-stdout", daemon=True).start()
        return self

    def wait_ready(self, timeout: float | None = None) -> "DaemonProcess":
        """Block until the ready line (DaemonStartError, after stopping the daemon, if it exits first or
        `timeout` (default `ready_timeout`) passes)."""
        deadline = time.monotonic() + (self.ready_timeout if timeout is None else timeout)
        while not self._ready.wait(0.05):
            if self._stdout_done.is_set() or time.monotonic() > deadline:
                exited = self.proc is not None and self.proc.poll() is not None
                self.stop()
                time.sleep(0.1)          # let the stderr reader take the last lines
                why = (f"exited (code {self.proc.returncode if self.proc else None}) before it was ready"
                       if exited or self._stdout_done.is_set() else "did not get ready in time")
                raise DaemonStartError(f"the daemon {why}: {' '.join(self.cmd)}\n" + "".join(self.stderr_tail))
        return self

    def start(self) -> "DaemonProcess":
        """launch() + wait_ready()."""
        return self.launch().wait_ready()

    def _emit(self, line: str) -> None:
        if self.on_line is not None:
            try:
                self.on_line(line.rstrip("\r\n"))
            except Exception:  # noqa: BLE001 - a caller's callback must not stop the reader
                pass

    def _read_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        try:
            for line in self.proc.stdout:       # keeps draining so the daemon never blocks on a full pipe
                parsed = parse_ready_line(line) if not self._ready.is_set() else None
                if parsed is not None:
                    self.control, self.media, self.model = parsed
                    self._ready.set()
                else:
                    self._emit(line)
        except (OSError, ValueError):
            pass
        finally:
            self._stdout_done.set()

    def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        try:
            for line in self.proc.stderr:
                self.stderr_tail.append(line)
                self._emit(line)
        except (OSError, ValueError):
            pass

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the process to end; its exit code (None if not launched or still running at `timeout`)."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 10.0) -> int | None:
        """Close the stdin pipe (the daemon stops by itself), then terminate, then kill; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None and self.tie_to_parent and self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            self.wait(timeout / 2)
        if self.proc.poll() is None:
            self.proc.terminate()
            if self.wait(timeout / 2) is None:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def __enter__(self) -> "DaemonProcess":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
