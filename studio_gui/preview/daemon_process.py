"""Start a local daemon as a subprocess (`xstreamer serve ...`) with QProcess and wait for its ready line.

QProcess is asynchronous: the window keeps painting while the model loads; every output line is
re-emitted as `progress`, and the line ``xstreamer daemon ready control=tcp://H:P media=tcp://H:P model=M``
becomes `ready(control, media, model)`.
"""

from __future__ import annotations

import re
import sys

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

READY_RE = re.compile(r"xstreamer daemon ready control=(\S+) media=(\S+) model=(\S+)")


def parse_ready_line(line: str) -> tuple[str, str, str] | None:
    """(control, media, model) from the daemon's ready line, or None for any other line."""
    m = READY_RE.search(line)
    return (m.group(1), m.group(2), m.group(3)) if m else None


def serve_command(preset: str, extra: list[str] | None = None) -> tuple[str, list[str]]:
    """Program and arguments that start a daemon on free loopback ports with model `preset`."""
    args = ["-m", "xstreamer", "serve", "--model", preset, "--control-port", "0", "--media-port", "0"]
    return sys.executable, args + list(extra or [])


class DaemonProcess(QObject):
    """One local daemon. Signals: `progress(line)`, `ready(control, media, model)`, `failed(reason)`,
    `stopped(exit_code)`."""

    progress = Signal(str)
    ready = Signal(str, str, str)
    failed = Signal(str)
    stopped = Signal(int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.process: QProcess | None = None
        self.endpoints: tuple[str, str, str] | None = None
        self._buffer = ""
        self._tail: list[str] = []

    def is_running(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    def start(self, preset: str, extra_args: list[str] | None = None) -> None:
        """Launch `xstreamer serve --model preset` (returns at once; watch the signals)."""
        if self.is_running():
            raise RuntimeError("a daemon is already running; stop it first")
        self.endpoints, self._buffer, self._tail = None, "", []
        proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        proc.setProcessEnvironment(env)
        proc.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        proc.readyReadStandardOutput.connect(self._read)
        proc.errorOccurred.connect(self._error)
        proc.finished.connect(self._finished)
        self.process = proc
        program, args = serve_command(preset, extra_args)
        self.progress.emit(f"Starting daemon (model {preset})…")
        proc.start(program, args)

    def _read(self) -> None:
        assert self.process is not None
        self._buffer += bytes(self.process.readAllStandardOutput().data()).decode("utf-8", "replace")
        *lines, self._buffer = self._buffer.split("\n")
        for line in (ln.strip() for ln in lines):
            if not line:
                continue
            self._tail = (self._tail + [line])[-8:]
            found = parse_ready_line(line)
            if found and self.endpoints is None:
                self.endpoints = found
                self.ready.emit(*found)
            else:
                self.progress.emit(line)

    def _error(self, err: QProcess.ProcessError) -> None:
        if err == QProcess.ProcessError.FailedToStart:
            self.failed.emit(f"could not start the daemon: {self.process.errorString() if self.process else err}")

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._read()
        if self.endpoints is None:
            tail = " | ".join(self._tail[-3:]) or "no output"
            self.failed.emit(f"the daemon exited (code {code}) before it was ready: {tail}")
        self.stopped.emit(int(code))

    def stop(self, wait_ms: int = 5000) -> None:
        """Terminate the daemon (SIGTERM, then SIGKILL after `wait_ms`)."""
        proc = self.process
        if proc is None or proc.state() == QProcess.ProcessState.NotRunning:
            return
        proc.terminate()
        if not proc.waitForFinished(wait_ms):
            proc.kill()
            proc.waitForFinished(2000)
