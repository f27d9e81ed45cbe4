"""Start `xstreamer serve` as a subprocess and wait for its ready line (for tests, plugins and the studio).

    with DaemonProcess(model="tiny") as d:        # free ports on 127.0.0.1
        client = Client(d.control)
        ...

The daemon prints exactly one line to stdout when its sockets are bound:
`xstreamer daemon ready control=tcp://HOST:PORT media=tcp://HOST:PORT model=NAME` (see `parse_ready_line`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections import deque

READY_RE = re.compile(r"^xstreamer daemon ready control=(\S+) media=(\S+) model=(\S+)$")


def parse_ready_line(line: str) -> tuple[str, str, str] | None:
    """(control endpoint, media endpoint, model) of a ready line, else None."""
    m = READY_RE.match(line.strip())
    return (m.group(1), m.group(2), m.group(3)) if m else None


class DaemonProcess:
    """A daemon subprocess. `start()` returns once it is ready (or raises RuntimeError with its stderr)."""

    def __init__(self, model: str = "tiny", host: str = "127.0.0.1", control_port: int = 0, media_port: int = 0,
                 extra_args: list[str] | None = None, python: str | None = None, ready_timeout: float = 120.0,
                 env: dict[str, str] | None = None):
        self.cmd = [python or sys.executable, "-m", "xstreamer", "serve", "--model", model, "--host", host,
                    "--control-port", str(control_port), "--media-port", str(media_port), *(extra_args or [])]
        self.ready_timeout = ready_timeout
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.control = ""
        self.media = ""
        self.model = ""
        self.stderr_tail: deque[str] = deque(maxlen=200)

    def start(self) -> "DaemonProcess":
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=self.env, bufsize=1)
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        ready: list[str] = []
        reader = threading.Thread(target=self._read_ready, args=(ready,), daemon=True)
        reader.start()
        reader.join(self.ready_timeout)
        parsed = parse_ready_line(ready[0]) if ready else None
        if parsed is None:
            self.stop()
            raise RuntimeError(f"daemon did not get ready: {' '.join(self.cmd)}\n" + "".join(self.stderr_tail))
        self.control, self.media, self.model = parsed
        return self

    def _read_ready(self, out: list[str]) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            if parse_ready_line(line):
                out.append(line)
                break
        # keep draining stdout so the daemon never blocks on a full pipe
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()  # type: ignore

    def _drain_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_tail.append(line)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            t = time.monotonic()
            while self.proc.poll() is None and time.monotonic() - t < timeout:
                time.sleep(0.05)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def __enter__(self) -> "DaemonProcess":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
