"""A throwaway Ray cluster of this machine for tests and benchmarks: `ray start --head --block` in a process group
of its own (`RayHead(cpus).address` = 127.0.0.1:PORT; `stop()` takes the whole group down). Ray does not run a node
on the loopback address itself: it resolves 127.0.0.1 to the machine's own address (`resolve_ip_for_localhost` in
ray._private.services), so its processes talk over that address; all of them run on this machine. Ray's token
authentication is on, with a token made for this cluster (`RAY_AUTH_MODE=token`, `RAY_AUTH_TOKEN`): `head.env()` is
the environment a process that connects to it needs (a daemon started with `serve --ray head.address`, a driver
calling `ray.init`)."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class RayHead:
    """`ray start --head --block` on this machine in a process group of its own (stopped with `stop`)."""

    def __init__(self, cpus: int) -> None:
        self.token = secrets.token_hex(32)
        self.port = _free_port()
        self.log = Path(tempfile.mkdtemp(prefix="xs-ray-")) / "ray-start.log"
        ray = Path(sys.executable).with_name("ray")
        self.proc = subprocess.Popen([str(ray), "start", "--head", "--block",
                                      f"--port={self.port}", f"--num-cpus={cpus}", "--include-dashboard=false",
                                      "--disable-usage-stats"], stdout=self.log.open("w"), stderr=subprocess.STDOUT,
                                     start_new_session=True, env=self.env())
        deadline = time.monotonic() + 180
        while "Ray runtime started" not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ray start failed: {self.log.read_text()[-2000:]}")
            time.sleep(0.2)
        self.address = f"127.0.0.1:{self.port}"

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """`base` (default: this process's environment) with this cluster's token."""
        return dict(os.environ if base is None else base, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.token)

    def __enter__(self) -> RayHead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        try:
            pg = os.getpgid(self.proc.pid)
        except ProcessLookupError:
            return
        for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pg, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue


__all__ = ["RayHead"]
