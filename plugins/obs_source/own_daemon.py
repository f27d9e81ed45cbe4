"""The daemon the bridge starts and watches itself (`xstreamer obs --start-daemon`): no terminal for the streamer.

It is started through `sdk.launcher.DaemonProcess` (the one place that starts a daemon and reads its ready line)
with this Python (`sys.executable -m xstreamer serve`) on free loopback ports; once it is ready its control
endpoint goes to the `DaemonLink`. If it exits, it is started again on the same ports (the SDK's heartbeat then
re-opens the session by itself; after FRESH_PORTS_AFTER failed starts on free ones, and the link follows), with a
growing pause between attempts; a start that fails (e.g. an unknown
model) is retried the same way and its last error line is shown in `/health`. `stop()` ends it (and the
launcher's own lifeline ends it if the bridge is killed).
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from sdk.launcher import DaemonProcess

RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
WATCH_S = 0.5
FRESH_PORTS_AFTER = 3          # failed starts on the same ports before trying free ones


class OwnDaemon:
    """state: "starting" -> "running" -> ("exited" -> "starting" ...) | "failed" (retrying) | "stopped"."""

    def __init__(self, model: str, on_endpoint: Callable[[str], None], log: Callable[[str], None] = print,
                 extra_args: list[str] | None = None, ready_timeout: float = 600.0) -> None:
        self.model = model
        self.on_endpoint = on_endpoint
        self.log = log
        self.extra_args = list(extra_args or [])
        self.ready_timeout = ready_timeout
        self.proc: DaemonProcess | None = None
        self.state = "starting"
        self.error: str | None = None
        self.starts = 0
        self.ports = (0, 0)
        self.started_at: float | None = None

    def info(self) -> dict:
        proc = self.proc
        return {"model": self.model, "state": self.state, "error": self.error, "starts": self.starts,
                "pid": proc.proc.pid if proc is not None and proc.proc is not None else None,
                "control": proc.control if proc is not None and proc.control else None}

    async def run(self) -> None:
        """Start the daemon, restart it when it exits: forever (cancel to stop it)."""
        failures = 0
        try:
            while True:
                started = await self._start()
                if started:
                    failures = 0
                    while self.proc is not None and self.proc.alive():
                        await asyncio.sleep(WATCH_S)
                    code = self.proc.proc.returncode if self.proc is not None and self.proc.proc else None
                    tail = _last_line(self.proc)
                    self.state, self.error = "exited", f"the daemon exited with code {code}" + (
                        f": {tail}" if tail else "")
                    self.log(f"{self.error}; starting it again")
                else:
                    failures += 1
                    if failures >= FRESH_PORTS_AFTER:
                        self.ports = (0, 0)     # its ports may be taken by now: free ones (the link follows)
                await asyncio.sleep(RESTART_BACKOFF_S[min(failures, len(RESTART_BACKOFF_S) - 1)])
        finally:
            await asyncio.shield(asyncio.to_thread(self.stop))

    async def _start(self) -> bool:
        self.state, self.starts = "starting", self.starts + 1
        proc = DaemonProcess(model=self.model, control_port=self.ports[0], media_port=self.ports[1],
                             extra_args=self.extra_args, ready_timeout=self.ready_timeout)
        self.proc = proc
        self.log(f"starting the daemon (model {self.model}){' again' if self.starts > 1 else ''}")
        began = time.monotonic()
        try:
            await asyncio.to_thread(proc.start)
        except RuntimeError as exc:
            lines = [ln for ln in str(exc).splitlines() if ln.strip()]
            self.state, self.error = "failed", lines[-1] if len(lines) > 1 else (lines[0] if lines else "failed")
            self.log(f"the daemon did not start: {self.error}; retrying")
            return False
        except asyncio.CancelledError:
            await asyncio.to_thread(proc.stop)
            raise
        self.ports = (_port(proc.control), _port(proc.media))
        self.state, self.error, self.started_at = "running", None, time.time()
        self.log(f"daemon ready in {time.monotonic() - began:.1f} s: {proc.control} (model {proc.model})")
        self.on_endpoint(proc.control)
        return True

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.stop()
        self.state = "stopped"


def _port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def _last_line(proc: DaemonProcess | None) -> str:
    if proc is None:
        return ""
    lines = [ln.strip() for ln in list(proc.stderr_tail) if ln.strip()]
    return lines[-1] if lines else ""
