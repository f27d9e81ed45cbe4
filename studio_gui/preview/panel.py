"""The live preview panel: start or connect to a daemon, watch and hear the persona, talk to it.

All widget updates happen here, on the GUI thread, in slots fed by `SessionWorker` signals.
"""

from __future__ import annotations

import time
from typing import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton, QTextEdit,
                               QVBoxLayout, QWidget)

from sdk.protocol import SAMPLE_RATE, Persona

from ..personas import MODEL_PRESETS
from .audio_out import AudioPlayer
from .av_sync import Frame, FrameScheduler
from .daemon_process import DaemonProcess
from .mic import PushToTalk
from .session_worker import SessionWorker
from .stats_plot import StatsPlot
from .video_widget import VideoWidget

# (persona, portrait bytes) or (persona, portrait bytes, five face points placing the portrait's face)
PersonaProvider = Callable[[], "tuple[Persona, bytes | None] | tuple[Persona, bytes | None, list | None]"]


class PreviewPanel(QWidget):
    """Signals: `status(text)` for the window's status bar, `session_changed(session_id)` ("" = none)."""

    status = Signal(str)
    session_changed = Signal(str)

    def __init__(self, persona_provider: PersonaProvider, use_audio_device: bool = True,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.persona_provider = persona_provider
        self.daemon = DaemonProcess(self)
        self.daemon.progress.connect(self._daemon_progress)
        self.daemon.ready.connect(self._daemon_ready)
        self.daemon.failed.connect(self._daemon_failed)
        self.daemon.stopped.connect(lambda _code: self._set_connected(self.session_id is not None))
        self.worker: SessionWorker | None = None
        self.session_id: str | None = None
        self.control: str | None = None
        self.state = "offline"
        self.audio = AudioPlayer(SAMPLE_RATE, use_device=use_audio_device, parent=self)
        self.frames = FrameScheduler()
        self.mic = PushToTalk(self)
        self.mic.chunk.connect(self._mic_chunk)
        self._build()
        self._sent_at: float | None = None
        self._last_utt = 0
        self._flushed_utt = -1
        self._last_audio_at = 0.0
        self._frames_in_second = 0
        self._latency: float | None = None
        self._offset: float | None = None
        self._transcript_open: tuple[str, int] | None = None
        self.texts: list[tuple[str, str]] = []   # (role, text) pieces received, for tests and export
        self.events: list[str] = []
        self._tick = QTimer(self)
        self._tick.setInterval(10)
        self._tick.timeout.connect(self._present)
        self._tick.start()
        self._stats_timer = QTimer(self)
        self._stats_timer.setInterval(1000)
        self._stats_timer.timeout.connect(self._stats)
        self._stats_timer.start()
        self._set_connected(False)

    def _build(self) -> None:
        self.preset = QComboBox()
        self.preset.addItems(MODEL_PRESETS)
        self.start_button = QPushButton("Start local daemon")
        self.start_button.clicked.connect(lambda: self.start_local(self.preset.currentText()))
        self.address = QLineEdit()
        self.address.setPlaceholderText("tcp://127.0.0.1:PORT (control)")
        self.connect_button = QPushButton("Connect")
        self.connect_button.clicked.connect(lambda: self.connect_to(self.address.text().strip()))
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(lambda: self.stop())
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setVisible(False)
        self.progress_label = QLabel("Start a local daemon or connect to a running one.")
        self.progress_label.setWordWrap(True)
        self.video = VideoWidget()
        self.plot = StatsPlot()
        self.plot.setFixedHeight(96)
        self.transcript = QTextEdit()
        self.transcript.setReadOnly(True)
        self.transcript.setObjectName("transcript")
        self.input = QLineEdit()
        self.input.setPlaceholderText("Type a message…")
        self.input.returnPressed.connect(lambda: self.send_chat())
        self.chat_button = QPushButton("Chat")
        self.chat_button.clicked.connect(lambda: self.send_chat())
        self.speak_button = QPushButton("Speak")
        self.speak_button.setToolTip("The avatar says the text verbatim")
        self.speak_button.clicked.connect(lambda: self.send_speak())
        self.ptt_button = QPushButton("Push to talk")
        self.ptt_button.pressed.connect(self.mic.start)
        self.ptt_button.released.connect(self.mic.stop)
        self.interrupt_button = QPushButton("Interrupt")
        self.interrupt_button.clicked.connect(lambda: self.interrupt())
        self.state_label = QLabel("offline")
        self.state_label.setObjectName("stateLabel")

        top = QHBoxLayout()
        for w in (QLabel("Model"), self.preset, self.start_button, self.address, self.connect_button,
                  self.stop_button):
            top.addWidget(w)
        prog = QHBoxLayout()
        prog.addWidget(self.progress, 1)
        prog.addWidget(self.progress_label, 3)
        media = QHBoxLayout()
        media.addWidget(self.video, 3)
        side = QVBoxLayout()
        side.addWidget(QLabel("Transcript"))
        side.addWidget(self.transcript, 1)
        side.addWidget(self.plot)
        media.addLayout(side, 2)
        talk = QHBoxLayout()
        for w in (self.input,):
            talk.addWidget(w, 1)
        for w in (self.chat_button, self.speak_button, self.ptt_button, self.interrupt_button, self.state_label):
            talk.addWidget(w)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(prog)
        lay.addLayout(media, 1)
        lay.addLayout(talk)
        if not self.mic.available:
            self.ptt_button.setToolTip(f"Push to talk is off: {self.mic.reason}")

    # -- daemon / connection ------------------------------------------------------------------------
    def set_preset(self, preset: str) -> None:
        """Select model `preset` for "Start local daemon" (the window calls it with the persona's model).

        A daemon this panel already runs keeps its model; the panel says so when they differ."""
        if not preset:
            return
        if self.preset.findText(preset) < 0:
            self.preset.addItem(preset)
        self.preset.setCurrentText(preset)
        running = self.daemon.endpoints[2] if self.daemon.is_running() and self.daemon.endpoints else None
        if running and running != preset:
            self._note(f"The local daemon runs model {running}; press “Start local daemon” to use {preset}.")

    def start_local(self, preset: str) -> None:
        """Start `xstreamer serve --model preset` and connect once it is ready (non-blocking)."""
        self.stop()
        self._busy(f"Starting a local daemon (model {preset})…")
        self.daemon.start(preset)

    def _daemon_progress(self, line: str) -> None:
        self.progress_label.setText(line[-160:])
        self.status.emit(line[-160:])

    def _daemon_ready(self, control: str, media: str, model: str) -> None:
        self.address.setText(control)
        self.status.emit(f"Daemon ready: {control} (model {model})")
        self.connect_to(control)

    def _daemon_failed(self, reason: str) -> None:
        self._idle(f"Daemon failed: {reason}", error=True)

    def connect_to(self, control: str) -> None:
        """Open a session with the current persona on the daemon at `control` (non-blocking)."""
        if not control:
            self._idle("Enter the daemon's control address (tcp://HOST:PORT).", error=True)
            return
        self._stop_worker()
        try:
            persona, portrait, *rest = self.persona_provider()
        except Exception as exc:  # noqa: BLE001 - an invalid persona is shown, not raised
            self._idle(f"Cannot open a session: {exc}", error=True)
            return
        self._busy(f"Opening a session on {control}…")
        self.control = control
        w = SessionWorker(control, persona, portrait, face_points=rest[0] if rest else None, parent=self)
        # Queued signals of a worker that was replaced or stopped are ignored (`self.worker is w`).
        w.opened.connect(lambda sid, info: self._opened(sid, info) if self.worker is w else None)
        w.media.connect(lambda pkt, data: self._media(pkt, data) if self.worker is w else None)
        w.acked.connect(lambda kind, utt: self._acked(kind, utt) if self.worker is w else None)
        w.command_failed.connect(lambda kind, msg: self._note(f"{kind} refused: {msg}", error=True)
                                 if self.worker is w else None)
        w.failed.connect(lambda msg: self._worker_failed(w, msg))
        w.finished.connect(lambda: self._worker_finished(w))
        self.worker = w
        w.start()

    def _worker_failed(self, w: SessionWorker, message: str) -> None:
        if self.worker is w:
            self._idle(f"Connection failed: {message}", error=True)

    def _worker_finished(self, w: SessionWorker) -> None:
        if self.worker is w:
            self.worker = None
            if self.session_id:
                self.session_id = None
                self.session_changed.emit("")
            self._set_connected(False)
        w.deleteLater()

    def _opened(self, session_id: str, info: object) -> None:
        self.session_id = session_id
        self._idle(f"Session {session_id} open on {self.control}")
        self._set_connected(True)
        self._set_state("idle")
        self.session_changed.emit(session_id)

    def stop(self) -> None:
        """Close the session and stop a daemon this panel started."""
        self._stop_worker()
        if self.daemon.is_running():
            self.daemon.stop()
        self._set_connected(False)

    def _stop_worker(self) -> None:
        if self.worker is not None:
            w, self.worker = self.worker, None
            w.stop()
            if not w.is_alive():
                w.deleteLater()
        if self.session_id:
            self.session_id = None
            self.session_changed.emit("")
        self.audio.flush()
        self.frames.clear()
        self._set_state("offline")

    # -- talking ------------------------------------------------------------------------------------
    def send_chat(self, text: str | None = None) -> None:
        self._send("chat", text)

    def send_speak(self, text: str | None = None) -> None:
        self._send("speak", text)

    def _send(self, kind: str, text: str | None) -> None:
        text = (text if text is not None else self.input.text()).strip()
        if not text or self.worker is None:
            return
        self.input.clear()
        self._append("You" if kind == "chat" else "Script", text)
        self._transcript_open = None
        self._sent_at = time.monotonic()
        getattr(self.worker, kind)(text)

    def _mic_chunk(self, pcm: bytes, rate: int, final: bool) -> None:
        if self.worker is not None:
            if final:
                self._sent_at = time.monotonic()
            self.worker.hear(pcm, rate, final)

    def interrupt(self) -> None:
        """Barge in: flush local media now; the daemon confirms with an `interrupted` event."""
        if self.worker is None:
            return
        self._flushed_utt = self._last_utt
        self.audio.flush()
        self.frames.clear()
        self.worker.interrupt()

    def _acked(self, kind: str, utt: int) -> None:
        if kind in ("chat", "speak") and utt:
            self._note(f"{kind} accepted (utterance {utt})")

    # -- media (GUI thread) -------------------------------------------------------------------------
    def _media(self, packet: object, payload: object) -> None:
        kind = getattr(packet, "type", "")
        utt = int(getattr(packet, "utt", 0))
        if kind in ("audio", "video") and utt and utt <= self._flushed_utt:
            return                                      # media of an interrupted reply still in flight
        if kind == "audio":
            if utt > self._last_utt:
                self._last_utt = utt
                if self._sent_at is not None:
                    self._latency = (time.monotonic() - self._sent_at) * 1000.0
                    self._sent_at = None
            self._last_audio_at = time.monotonic()
            self.audio.push(packet.pts, bytes(payload or b""))
        elif kind == "video":
            self.frames.push(Frame(packet.pts, bytes(payload or b""), packet.width, packet.height))
        elif kind == "text":
            self._text(packet.role, packet.text, packet.final, utt)
        elif kind == "event":
            self.events.append(packet.event)
            if packet.event == "interrupted":
                self._flushed_utt = max(self._flushed_utt, utt)
                self.audio.flush()
                self.frames.clear()
                self._note("Interrupted")
            elif packet.event == "session_closed":
                self._idle(f"Session closed by the daemon {packet.reason}".strip(), error=True)
                self._set_connected(False)
        elif kind == "state":
            self._set_state(packet.state)

    def _text(self, role: str, text: str, final: bool, utt: int) -> None:
        self.texts.append((role, text))
        who = "Persona" if role == "assistant" else "You (voice)"
        key = (role, utt)
        if self._transcript_open == key:
            cursor = self.transcript.textCursor()
            cursor.movePosition(cursor.MoveOperation.End)
            cursor.insertText(text)
        else:
            self._append(who, text)
            self._transcript_open = key
        if final:
            self._transcript_open = None

    def _append(self, who: str, text: str) -> None:
        self.transcript.append(f"<b>{who}:</b> ")
        cursor = self.transcript.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        cursor.insertText(text)
        self.transcript.ensureCursorVisible()

    def _present(self) -> None:
        now = time.monotonic()
        clock = self.audio.clock()
        active = self.audio.buffered_samples() > 0 or now - self._last_audio_at < 0.3
        frame = self.frames.due(clock, now, active)
        if frame is not None:
            self.video.set_frame(frame.data, frame.width, frame.height)
            self._frames_in_second += 1
            if active:
                self._offset = self.frames.offset_ms(frame, clock)

    def _stats(self) -> None:
        self.plot.add(fps=self._frames_in_second, latency=self._latency, av_offset=self._offset)
        self._frames_in_second = 0

    # -- state / status -----------------------------------------------------------------------------
    def _set_state(self, state: str) -> None:
        self.state = state
        self.state_label.setText(state)

    def _set_connected(self, on: bool) -> None:
        for w in (self.input, self.chat_button, self.speak_button, self.interrupt_button):
            w.setEnabled(on)
        self.ptt_button.setEnabled(on and self.mic.available)
        self.stop_button.setEnabled(on or self.daemon.is_running())
        if not on and self.state != "offline":
            self._set_state("offline")

    def _busy(self, text: str) -> None:
        self.progress.setVisible(True)
        self.progress_label.setText(text)
        self.status.emit(text)

    def _idle(self, text: str, error: bool = False) -> None:
        self.progress.setVisible(False)
        self._note(text, error)

    def _note(self, text: str, error: bool = False) -> None:
        self.progress_label.setText(text)
        self.progress_label.setStyleSheet("color: #b00020;" if error else "")
        self.status.emit(text)

    def shutdown(self) -> None:
        """Stop everything (window close)."""
        self.stop()
        self._tick.stop()
        self._stats_timer.stop()
        self.audio.close()
