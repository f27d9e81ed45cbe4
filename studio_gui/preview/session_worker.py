"""The socket threads: they own the SDK client (ZeroMQ DEALER + SUB sockets) and only emit Qt signals.

Widgets never touch the sockets: the GUI thread calls `chat()/speak()/hear()/interrupt()`, which put a
command on a queue. A media thread connects, opens the session and relays every media packet as
`media(packet, payload)`; a command thread sends the queued requests (a final `hear` may wait seconds for
the transcription without stalling the media). Signals emitted here reach slots of GUI-thread objects
through queued connections.
"""

from __future__ import annotations

import queue
import threading

from PySide6.QtCore import QObject, Signal

from sdk.protocol import Persona


class SessionWorker(QObject):
    """One session on one daemon, driven from a Python thread.

    Signals: `opened(session_id, info)`, `media(packet, payload)`, `acked(kind, utt)`,
    `command_failed(kind, message)`, `failed(message)` (connecting failed or the link broke),
    `finished()` (the thread ended)."""

    opened = Signal(str, object)
    media = Signal(object, object)
    acked = Signal(str, int)
    command_failed = Signal(str, str)
    failed = Signal(str)
    finished = Signal()

    def __init__(self, control: str, persona: Persona, portrait: bytes | None = None,
                 client_name: str = "xstreamer-studio", parent: QObject | None = None,
                 face_points: list | None = None) -> None:
        super().__init__(parent)
        self.control = control
        self.persona = persona
        self.portrait = portrait
        self.face_points = face_points          # five [x, y] placing the portrait's face where it is not found
        self.client_name = client_name
        self.session_id: str | None = None
        self._commands: queue.Queue[tuple] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- GUI-thread API (thread-safe: only queue puts) -------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="xstreamer-studio-socket", daemon=True)
        self._thread.start()

    def chat(self, text: str) -> None:
        self._commands.put(("chat", text))

    def speak(self, text: str) -> None:
        self._commands.put(("speak", text))

    def hear(self, pcm: bytes, sample_rate: int, final: bool) -> None:
        self._commands.put(("hear", pcm, sample_rate, final))

    def interrupt(self) -> None:
        self._commands.put(("interrupt",))

    def set_persona(self, persona: Persona) -> None:
        self._commands.put(("set_persona", persona))

    def stop(self, wait_s: float = 3.0) -> None:
        """Close the session and end the thread (waits up to `wait_s`)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(wait_s)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- socket threads -----------------------------------------------------------------------------
    def _run(self) -> None:
        """Media thread: connect, open the session, then relay packets until stopped."""
        from sdk.client import Client

        client = session = None
        commands: threading.Thread | None = None
        try:
            client = Client(control=self.control, client_name=self.client_name,
                            on_reconnect=lambda _c: self._reopened(session))
            client.connect()
            extra = {"face_points": self.face_points} if self.face_points else {}
            session = client.open_session(persona=self.persona, portrait=self.portrait, **extra)
            self._reopened(session)
            # Requests may block (a final `hear` waits for the transcription): they run on their own
            # thread so media keeps flowing. The SDK client serialises its control socket with a lock.
            commands = threading.Thread(target=self._command_loop, args=(session,), daemon=True,
                                        name="xstreamer-studio-commands")
            commands.start()
            while not self._stop.is_set():
                item = session.recv(timeout=0.05)
                budget = 64                     # bounded batches keep the stop flag responsive
                while item is not None and budget:
                    self.media.emit(item[0], item[1])
                    budget -= 1
                    item = session.recv(timeout=0) if budget else None
        except Exception as exc:  # noqa: BLE001 - reported to the GUI, never raised into Qt
            if not self._stop.is_set():
                self.failed.emit(f"{type(exc).__name__}: {exc}")
        finally:
            self._stop.set()
            if commands is not None:
                commands.join(5.0)
            if client is not None:
                try:
                    client.close()                     # closes the session too
                except Exception:  # noqa: BLE001 - best effort on shutdown
                    pass
            self.finished.emit()

    def _reopened(self, session) -> None:  # noqa: ANN001 - an sdk.client.SessionHandle
        """The session was opened (or re-opened after the daemon restarted: new id, pts restart)."""
        if session is None:
            return
        self.session_id = str(session.id)
        self.opened.emit(self.session_id, {"control": self.control, "opened": session.info})

    def _command_loop(self, session) -> None:  # noqa: ANN001 - an sdk.client.SessionHandle
        import numpy as np

        while not self._stop.is_set():
            try:
                cmd = self._commands.get(timeout=0.05)
            except queue.Empty:
                continue
            kind, args = cmd[0], cmd[1:]
            try:
                if kind == "hear":
                    pcm = np.frombuffer(args[0], dtype="<i2")
                    result = session.hear(pcm, sample_rate=args[1], final=args[2])
                else:
                    result = getattr(session, kind)(*args)
                self.acked.emit(kind, int(result) if isinstance(result, int) else 0)
            except Exception as exc:  # noqa: BLE001 - a refused command is shown, the session goes on
                self.command_failed.emit(kind, str(exc))
