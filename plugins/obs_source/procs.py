"""Start and stop a daemon and a bridge as subprocesses (tests, `measure.py`, documentation screenshots).

    daemon = Daemon.start(xstreamer="/path/.venv/bin/xstreamer")         # waits for its ready line
    bridge = BridgeProc.start(xstreamer, connect=daemon.control)         # waits for the URL line
    ...
    daemon.restart()   # same ports
    bridge.stop(); daemon.stop()
"""

from __future__ import annotations

import queue
import re
import subprocess
import threading
from dataclasses import dataclass, field

from sdk.protocol.ready import READY_RE as READY


class ProcError(RuntimeError):
    """A subprocess exited or stayed silent before it was ready."""


@dataclass
class Proc:
    """A subprocess whose stdout lines are read by a thread (and kept in `lines`)."""

    argv: list[str]
    popen: subprocess.Popen
    lines: "queue.Queue[str | None]" = field(default_factory=queue.Queue)
    log: list[str] = field(default_factory=list)

    @classmethod
    def spawn(cls, argv: list[str]) -> "Proc":
        popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                 stdin=subprocess.DEVNULL)
        proc = cls(argv, popen)
        threading.Thread(target=proc._read, daemon=True).start()
        return proc

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.log.append(line.rstrip("\n"))
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_line(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        """The first output line matching `pattern` (ProcError when the process ends or `timeout` passes)."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise ProcError(f"{self.argv[:3]} printed no line matching {pattern.pattern!r} in {timeout:g} s; "
                                f"output: {self.log[-20:]}") from None
            if line is None:
                raise ProcError(f"{self.argv[:3]} exited with {self.popen.wait()}; output: {self.log[-20:]}")
            match = pattern.search(line)
            if match:
                return match

    def stop(self, timeout: float = 10.0) -> int:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        return self.popen.wait()


@dataclass
class Daemon:
    """`xstreamer serve` on loopback; `control` / `media` are its endpoints once ready."""

    xstreamer: str
    model: str
    proc: Proc
    control: str
    media: str

    @classmethod
    def start(cls, xstreamer: str, model: str = "tiny", control_port: int = 0, media_port: int = 0,
              timeout: float = 180.0) -> "Daemon":
        proc = Proc.spawn([xstreamer, "serve", "--model", model, "--control-port", str(control_port),
                           "--media-port", str(media_port)])
        try:
            match = proc.wait_line(READY, timeout)
        except ProcError:
            proc.stop()
            raise
        return cls(xstreamer, model, proc, match.group(1), match.group(2))

    def port(self, endpoint: str) -> int:
        return int(endpoint.rsplit(":", 1)[1])

    def restart(self, timeout: float = 180.0) -> "Daemon":
        """Stop, then start again on the same ports (what a user restarting the daemon does)."""
        self.stop()
        new = Daemon.start(self.xstreamer, self.model, self.port(self.control), self.port(self.media), timeout)
        self.proc, self.control, self.media = new.proc, new.control, new.media
        return self

    def stop(self) -> int:
        return self.proc.stop()


@dataclass
class BridgeProc:
    """`xstreamer obs` on loopback; `url` is the first line it printed."""

    proc: Proc
    url: str

    @classmethod
    def start(cls, xstreamer: str, connect: str, port: int = 0, extra: tuple[str, ...] = (),
              timeout: float = 60.0) -> "BridgeProc":
        proc = Proc.spawn([xstreamer, "obs", "--connect", connect, "--port", str(port), *extra])
        try:
            first = proc.lines.get(timeout=timeout)
        except queue.Empty:
            proc.stop()
            raise ProcError(f"the bridge printed nothing in {timeout:g} s") from None
        if first is None or not re.fullmatch(r"http://[\d.]+:\d+/", first):
            proc.stop()
            raise ProcError(f"the bridge's first line is not its URL: {first!r}; output: {proc.log[-20:]}")
        return cls(proc, first)

    def stop(self) -> int:
        return self.proc.stop()
