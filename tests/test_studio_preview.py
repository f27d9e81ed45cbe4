"""Studio live preview against a real daemon (`xstreamer serve --model tiny`, started by the studio itself
through QProcess): frames are painted and change, the transcript fills in, interrupt reaches idle."""

from __future__ import annotations

import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytestmark = pytest.mark.process

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
pytest.importorskip("sdk.client", reason="the SDK client is not in this checkout")

START_TIMEOUT_MS = 90_000


def _pixels(widget) -> np.ndarray:
    img = widget.grab().toImage().convertToFormat(__import__("PySide6.QtGui").QtGui.QImage.Format.Format_RGB888)
    w, h, bpl = img.width(), img.height(), img.bytesPerLine()
    return np.frombuffer(bytes(img.constBits()), np.uint8).reshape(h, bpl)[:, :3 * w].copy()


@pytest.fixture
def window(studio_window):
    """A window editing persona "Preview" (model tiny, the built-in character Farid, shipped gallery); at
    teardown the preview is shut down and its daemon must be gone."""
    win = studio_window("Preview", model="tiny", prompt="You are a cheerful test persona.")
    assert win.portrait.choose_character("farid")
    assert win.save_current()
    return win


def test_preview_plays_chats_and_interrupts(qtbot, window, screenshot):
    panel = window.preview
    assert panel.preset.currentText() == "tiny"             # the persona's model preset
    busy_seen = []
    panel.status.connect(lambda text: busy_seen.append(panel.progress.isVisible()))
    panel.start_button.click()
    assert panel.progress.isVisible()                      # progress shows while the daemon loads
    qtbot.waitUntil(lambda: panel.session_id is not None, timeout=START_TIMEOUT_MS)
    assert panel.daemon.endpoints is not None and panel.address.text().startswith("tcp://")
    assert panel.daemon.endpoints[2] == "tiny"
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
    screenshot(window, "studio_preview_playing.png")
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


def test_model_selector_follows_the_persona(qtbot, window):
    """The preview's model selector shows the persona's preset: on selecting a persona and on editing it."""
    panel = window.preview
    assert panel.preset.currentText() == "tiny"
    window.new_persona("Studio quality")                     # a new persona has the "default" preset
    assert panel.preset.currentText() == "default"
    window.editor.model.setCurrentText("paper")
    assert panel.preset.currentText() == "paper"
    window.select("Preview")                                 # saves "Studio quality" first
    assert panel.preset.currentText() == "tiny" and window.store.load("Studio quality").model == "paper"
    window.select("Studio quality")
    assert panel.preset.currentText() == "paper"
    window.store.save(window.store.load("Preview").model_copy(update={"model": "my-finetune"}))
    window.select("Preview")                                 # a preset the list does not know is added
    assert panel.preset.currentText() == "my-finetune"


def test_greeting_on_open_and_spaced_transcript(qtbot, studio_window):
    """A persona with a greeting: the session's first words are the greeting, in the transcript with the
    spacing the text packets carry (the tiny Thinker sends one word per packet, " word" after the first)."""
    win = studio_window("Greeter", model="tiny", prompt="You greet people.",
                        greeting="Welcome to the show, friends!")
    assert win.portrait.choose_character("farid") and win.save_current()
    panel = win.preview
    panel.start_button.click()
    qtbot.waitUntil(lambda: "utterance_end" in panel.events, timeout=START_TIMEOUT_MS)
    said = "".join(t for r, t in panel.texts if r == "assistant")
    assert said == "Welcome to the show, friends!"
    assert "Persona: Welcome to the show, friends!" in panel.transcript.toPlainText()
    panel.send_chat("hello again")
    qtbot.waitUntil(lambda: panel.events.count("utterance_end") >= 2, timeout=30_000)
    assert "Persona: You said: hello again." in panel.transcript.toPlainText()
    panel.stop_button.click()
    qtbot.waitUntil(lambda: not panel.daemon.is_running(), timeout=15_000)


def test_transcript_joins_chunks_as_sent(qtbot, window):
    """Chunks are appended as they come: "What a game!" + " I've been..." reads "What a game! I've been..."."""
    panel = window.preview
    for text in ("What a game!", " I've been waiting", " for this all week,", " and now, here we are."):
        panel._text("assistant", text, False, 7)
    assert "Persona: What a game! I've been waiting for this all week, and now, here we are." \
        in panel.transcript.toPlainText()


def _tone(seconds: float, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 220 * t) * 6000).astype("<i2").tobytes()


def test_push_to_talk_against_a_live_daemon(qtbot, window):
    """The microphone path (PushToTalk.chunk -> PreviewPanel -> SessionWorker.hear) on a live tiny daemon:
    the user's voice line (the tiny Thinker's stand-in transcript) fills the transcript, a reply follows."""
    panel = window.preview
    if not panel.mic.available:                              # offscreen CI: the button says why it is off
        assert not panel.ptt_button.isEnabled() and "Push to talk is off" in panel.ptt_button.toolTip()
    window.new_persona("Heavy")
    window.editor.model.setCurrentText("paper")
    window.select("Preview")                                 # "Start local daemon" uses Preview's preset
    panel.start_button.click()
    qtbot.waitUntil(lambda: panel.session_id is not None, timeout=START_TIMEOUT_MS)
    assert panel.daemon.endpoints[2] == "tiny"
    window.editor.model.setCurrentText("default")           # the running daemon keeps its model: said so
    assert "runs model tiny" in panel.progress_label.text()
    window.editor.model.setCurrentText("tiny")

    # What the microphone emits while the button is held (100 ms chunks), then on release (final, empty).
    pcm = _tone(1.5)
    step = 2 * 1600
    for i in range(0, len(pcm), step):
        panel.mic.chunk.emit(pcm[i:i + step], 16000, False)
    panel.mic.chunk.emit(b"", 16000, True)
    heard = "I heard 1.5 seconds of audio."
    qtbot.waitUntil(lambda: any(r == "user" and heard in t for r, t in panel.texts), timeout=30_000)
    first_user = next(i for i, (r, t) in enumerate(panel.texts) if r == "user")
    qtbot.waitUntil(lambda: any(r == "assistant" and t.strip() for r, t in panel.texts[first_user:]),
                    timeout=30_000)
    qtbot.waitUntil(lambda: "utterance_end" in panel.events, timeout=30_000)
    transcript = panel.transcript.toPlainText()
    assert f"You (voice): {heard}" in transcript
    reply = transcript.split(f"You (voice): {heard}", 1)[1]
    assert "Persona:" in reply and reply.split("Persona:", 1)[1].strip()     # the reply comes after it
    assert "refused" not in panel.progress_label.text()          # no hear was refused
    panel.stop()


@pytest.mark.slow
def test_preview_of_the_embedded_default_model(qtbot, studio_window, screenshot):
    """The studio with the shipped default model: the chosen character answers on screen (the README's image)."""
    from studio_gui.gallery import find_character

    win = studio_window("Farid", model="default", prompt="You are Farid, a cheerful museum guide. Answer briefly.")
    assert win.portrait.choose_character("farid")
    assert win.save_current()
    panel = win.preview
    assert panel.preset.currentText() == "default"
    panel.start_button.click()
    qtbot.waitUntil(lambda: panel.session_id is not None, timeout=START_TIMEOUT_MS)
    assert panel.daemon.endpoints[2] == "default"
    panel.input.setText("Hi! Who are you?")
    panel.chat_button.click()
    qtbot.waitUntil(lambda: any(r == "assistant" and len(t.split()) >= 2 for r, t in panel.texts), timeout=60_000)
    qtbot.waitUntil(lambda: "utterance_start" in panel.events, timeout=30_000)
    qtbot.wait(600)
    # what is painted is the chosen character (the frame is close to its portrait, far from another one's)
    import cv2

    img = panel.video.image.convertToFormat(__import__("PySide6.QtGui").QtGui.QImage.Format.Format_RGB888)
    frame = np.frombuffer(bytes(img.constBits()), np.uint8).reshape(img.height(), img.bytesPerLine())
    frame = frame[:, :3 * img.width()].reshape(img.height(), img.width(), 3).astype(np.float32)
    own = cv2.imread(str(find_character("farid").image))[..., ::-1].astype(np.float32)
    other = cv2.imread(str(find_character("kemi").image))[..., ::-1].astype(np.float32)
    d_own, d_other = np.abs(frame - own).mean(), np.abs(frame - other).mean()
    assert d_own < 25 and d_other > 2 * d_own, (d_own, d_other)
    assert "Persona:" in panel.transcript.toPlainText()
    screenshot(win, "studio_preview_default.png")
    panel.stop_button.click()
    qtbot.waitUntil(lambda: not panel.daemon.is_running(), timeout=15_000)
