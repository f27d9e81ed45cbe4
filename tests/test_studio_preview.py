"""Studio live preview against a real daemon (`xstreamer serve --model tiny`, started by the studio itself
through QProcess): frames are painted and change, the transcript fills in, interrupt reaches idle."""

from __future__ import annotations

import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("sdk.client", reason="the SDK client is not in this checkout")

from studio_gui.personas import CONFIG_ENV, PersonaStore  # noqa: E402

IMAGES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "images")
START_TIMEOUT_MS = 90_000


def _pixels(widget) -> np.ndarray:
    img = widget.grab().toImage().convertToFormat(__import__("PySide6.QtGui").QtGui.QImage.Format.Format_RGB888)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    return np.frombuffer(bytes(img.constBits()), np.uint8).reshape(h, bpl)[:, :3 * w].copy()


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "cfg"))
    monkeypatch.setenv("XSTREAMER_GALLERY_DIR", str(tmp_path / "no-gallery"))
    from studio_gui.app import MainWindow

    win = MainWindow(PersonaStore(), use_audio_device=False)
    qtbot.addWidget(win)
    win.show()
    win.new_persona("Preview")
    win.editor.model.setCurrentText("tiny")
    win.editor.system_prompt.setPlainText("You are a cheerful test persona.")
    assert win.save_current()
    yield win
    win.preview.shutdown()
    assert not win.preview.daemon.is_running()


def test_preview_plays_chats_and_interrupts(qtbot, window):
    panel = window.preview
    panel.preset.setCurrentText("tiny")
    busy_seen = []
    panel.status.connect(lambda text: busy_seen.append(panel.progress.isVisible()))
    panel.start_button.click()
    assert panel.progress.isVisible()                      # progress shows while the daemon loads
    qtbot.waitUntil(lambda: panel.session_id is not None, timeout=START_TIMEOUT_MS)
    assert panel.daemon.endpoints is not None and panel.address.text().startswith("tcp://")
    assert not panel.progress.isVisible() and panel.chat_button.isEnabled()
    assert any(busy_seen)

    # Frames arrive and are painted by the GUI thread.
    qtbot.waitUntil(lambda: panel.video.frames_shown >= 10, timeout=30_000)
    first = _pixels(panel.video)

    # Chat: the transcript fills in with the persona's reply, and the picture moves while it speaks.
    panel.input.setText("hello studio")
    panel.chat_button.click()
    assert panel.input.text() == ""
    qtbot.waitUntil(lambda: any(r == "assistant" and t.strip() for r, t in panel.texts), timeout=30_000)
    changed = []

    def moved() -> bool:      # more than 1% of the widget's pixel values differ from the first frame
        changed.append(np.count_nonzero(_pixels(panel.video) != first) / first.size)
        return changed[-1] > 0.01

    qtbot.waitUntil(moved, timeout=20_000)
    transcript = panel.transcript.toPlainText()
    assert "You: hello studio" in transcript and "Persona:" in transcript
    reply = "".join(t for r, t in panel.texts if r == "assistant")
    assert reply.strip() and reply.strip()[:10] in transcript
    qtbot.waitUntil(lambda: "utterance_end" in panel.events, timeout=30_000)
    assert window.preview.plot.data["fps"] and max(window.preview.plot.data["fps"]) > 0
    assert panel.state in ("idle", "thinking", "speaking")

    # Interrupt a long scripted line while it is being spoken.
    qtbot.waitUntil(lambda: panel.state == "idle", timeout=30_000)
    n_start = panel.events.count("utterance_start")
    panel.send_speak("This is a long announcement that should never be finished because it gets cut off "
                     "by the interrupt button in the middle of the sentence, long before the end. " * 3)
    qtbot.waitUntil(lambda: panel.events.count("utterance_start") > n_start, timeout=30_000)
    qtbot.wait(300)
    window.grab().save(os.path.join(IMAGES, "studio_preview_playing.png"))
    panel.interrupt_button.click()
    qtbot.waitUntil(lambda: "interrupted" in panel.events, timeout=15_000)
    qtbot.waitUntil(lambda: panel.state == "idle", timeout=15_000)
    assert panel.audio.buffered_samples() < panel.audio.sample_rate      # queued speech was flushed
    assert "Interrupted" in panel.progress_label.text() or "Interrupted" in window.statusBar().currentMessage()

    # Stop: the daemon process ends, the controls go offline.
    panel.stop_button.click()
    qtbot.waitUntil(lambda: not panel.daemon.is_running(), timeout=15_000)
    assert panel.session_id is None and not panel.chat_button.isEnabled() and panel.state == "offline"


def test_connect_failure_is_shown(qtbot, window):
    """A bad address or a dead daemon is reported in the panel; the window stays usable."""
    panel = window.preview
    panel.connect_to("")
    assert "control address" in panel.progress_label.text()
    import socket

    with socket.socket() as s:           # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    panel.connect_to(f"tcp://127.0.0.1:{port}")
    assert time.monotonic() - start < 1.0                  # connecting never blocks the GUI thread
    qtbot.waitUntil(lambda: "failed" in panel.progress_label.text().lower(), timeout=30_000)
    assert panel.session_id is None and not panel.chat_button.isEnabled()
