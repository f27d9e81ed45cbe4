"""Start and stop a daemon and a bridge as subprocesses (tests, `measure.py`, documentation screenshots).

    daemon = Daemon.start(xstreamer="/path/.venv/bin/xstreamer")         # waits for its ready line
    bridge = BridgeProc.start(xstreamer, connect=daemon.control)         # waits for the URL line
    bridge.url          # the page: http://127.0.0.1:PORT/?token=...
    bridge.api("say")   # an API URL with the token: http://127.0.0.1:PORT/say?token=...
    ...
    daemon.restart()   # same ports
    bridge.stop(); daemon.stop()
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from sdk.protocol.ready import READY_RE as READY

URL_LINE = re.compile(r"http://[\d.]+:\d+/\?token=[A-Za-z0-9_-]+")


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
    def spawn(cls, argv: list[str], env: dict[str, str] | None = None) -> "Proc":
        popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                 stdin=subprocess.DEVNULL, env=None if env is None else {**os.environ, **env})
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
    """`xstreamer obs` on loopback; `url` is the first line it printed (the page, with its token); `base` the
    same without the query, `token` the token."""

    proc: Proc
    url: str

    @property
    def base(self) -> str:
        return self.url.split("?", 1)[0]

    @property
    def token(self) -> str:
        return parse_qs(urlsplit(self.url).query)["token"][0]

    @property
    def port(self) -> int:
        return int(urlsplit(self.url).port or 0)

    def api(self, path: str, query: str = "") -> str:
        """URL of `path` (e.g. "say", "health") with the token (and `query`, e.g. "overlay=1")."""
        return f"{self.base}{path}?token={self.token}" + (f"&{query}" if query else "")

    @classmethod
    def start(cls, xstreamer: str, connect: str | None, port: int = 0, extra: tuple[str, ...] = (),
              timeout: float = 60.0, env: dict[str, str] | None = None) -> "BridgeProc":
        """`connect=None` with `--start-daemon` in `extra`: the bridge starts its own daemon."""
        target = ["--connect", connect] if connect else []
        proc = Proc.spawn([xstreamer, "obs", *target, "--port", str(port), *extra], env=env)
        try:
            first = proc.lines.get(timeout=timeout)
        except queue.Empty:
            proc.stop()
            raise ProcError(f"the bridge printed nothing in {timeout:g} s") from None
        if first is None or not URL_LINE.fullmatch(first):
            proc.stop()
            raise ProcError(f"the bridge's first line is not its URL: {first!r}; output: {proc.log[-20:]}")
        return cls(proc, first)

    def stop(self) -> int:
        return self.proc.stop()
