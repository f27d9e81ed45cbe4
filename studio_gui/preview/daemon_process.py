"""The preview's local daemon: `sdk.launcher` starts it and reads its ready line; this wraps it in Qt signals.

The launcher ties the daemon to the studio (a pipe on the daemon's stdin that only the studio holds): when the
studio exits or dies, the daemon stops by itself, on every OS. Starting is asynchronous: the window keeps
painting while the model loads. Every output line is re-emitted as `progress` and the ready line becomes
`ready(control, media, model)`; signals are emitted from the launcher's threads and reach GUI-thread slots
queued.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Signal

from sdk.launcher import DaemonProcess as Launcher
from sdk.launcher import DaemonStartError

READY_TIMEOUT_S = 600.0       # the `default`/`paper` presets load for minutes on a small CPU machine


class DaemonProcess(QObject):
    """One local daemon. Signals: `progress(line)`, `ready(control, media, model)`, `failed(reason)`,
    `stopped(exit_code)`. `endpoints` is (control, media, model) once ready."""

    progress = Signal(str)
    ready = Signal(str, str, str)
    failed = Signal(str)
    stopped = Signal(int)
    _became_ready = Signal(object, str, str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.launcher: Launcher | None = None
        self.endpoints: tuple[str, str, str] | None = None
        self._stopping: Launcher | None = None
        self._became_ready.connect(self._on_ready)

    def is_running(self) -> bool:
        return self.launcher is not None and self.launcher.alive()

    @property
    def pid(self) -> int | None:
        return self.launcher.pid if self.launcher is not None else None

    def start(self, preset: str, extra_args: list[str] | None = None) -> None:
        """Launch `xstreamer serve --model preset` on free loopback ports (returns at once: watch the
        signals)."""
        if self.is_running():
            raise RuntimeError("a daemon is already running; stop it first")
        self.endpoints = None
        launcher = Launcher(model=preset, extra_args=extra_args, ready_timeout=READY_TIMEOUT_S,
                            on_line=lambda line: self.progress.emit(line) if line.strip() else None)
        self.launcher = launcher
        self.progress.emit(f"Starting daemon (model {preset})…")
        try:
            launcher.launch()
        except DaemonStartError as exc:
            self.failed.emit(str(exc))
            return
        threading.Thread(target=self._watch, args=(launcher,), name="xstreamer-studio-daemon",
                         daemon=True).start()

    def _watch(self, launcher: Launcher) -> None:
        """Launcher thread: wait for the ready line, then for the process to end."""
        try:
            launcher.wait_ready()
        except DaemonStartError:
            if self._stopping is not launcher:
                lines = [ln.strip() for ln in list(launcher.stderr_tail)[-3:] if ln.strip()]
                tail = " | ".join(lines) or "no output"
                self.failed.emit(f"the daemon exited (code {launcher.proc.poll() if launcher.proc else None}) "
                                 f"before it was ready: {tail}")
        else:
            self._became_ready.emit(launcher, launcher.control, launcher.media, launcher.model)
        code = launcher.wait()
        self.stopped.emit(int(code if code is not None else -1))

    def _on_ready(self, launcher: Launcher, control: str, media: str, model: str) -> None:
        if launcher is self.launcher and launcher.alive():
            self.endpoints = (control, media, model)
            self.ready.emit(control, media, model)

    def stop(self, wait_ms: int = 5000) -> None:
        """Stop the daemon: close its stdin pipe (it stops itself), then terminate, then kill."""
        launcher = self.launcher
        if launcher is None or not launcher.alive():
            return
        self._stopping = launcher
        launcher.stop(timeout=max(wait_ms, 1000) / 1000.0)
