"""Test-wide settings (the markers `process`, `engine`, `slow` pick the fast subset: docs/testing.md): one
torch intra-op thread for every test (small ops run fastest on one thread, and on the 2-core CI machine the
daemon subprocesses need the other), a writable model cache, the `gpu` skip, and the `studio_window` factory
the studio GUI tests open their main window with, and `screenshot`."""

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("XSTREAMER_CACHE", os.path.join(tempfile.gettempdir(), "xstreamer-test-cache"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "1")

try:
    import torch

    torch.set_num_threads(1)
except ImportError:   # the SDK tests run without torch
    torch = None


def pytest_collection_modifyitems(config, items):
    has_cuda = torch is not None and torch.cuda.is_available()
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip)
        if ("mono" in item.keywords or "browser" in item.keywords) and "process" not in item.keywords:
            item.add_marker(pytest.mark.process)      # mono and chromium always run as subprocesses


DOCS_IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"


@pytest.fixture
def screenshot(tmp_path):
    """save(widget, name) -> the path of the widget's grab as a PNG: in docs/images when XSTREAMER_SCREENSHOTS=1
    (refreshing the docs' pictures), else in the test's tmp dir, so a test run leaves the work tree untouched."""
    target = DOCS_IMAGES if os.environ.get("XSTREAMER_SCREENSHOTS") == "1" else tmp_path / "screenshots"

    def save(widget, name: str) -> Path:
        target.mkdir(parents=True, exist_ok=True)
        path = target / name
        assert widget.grab().save(str(path)), f"could not write {path}"
        return path

    return save


@pytest.fixture
def studio_window(qtbot, tmp_path, monkeypatch):
    """Factory for the studio's main window: `studio_window(persona, model=, prompt=, greeting=)` returns a
    shown MainWindow (no audio device) on an empty persona folder under tmp_path and the gallery the studio
    ships; with `persona` it first adds that persona and fills in the editor fields given. Every window it
    made is shut down at teardown, and none may leave its preview daemon running."""
    from studio_gui.gallery import GALLERY_ENV
    from studio_gui.personas import CONFIG_ENV, PersonaStore

    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "cfg"))
    monkeypatch.delenv(GALLERY_ENV, raising=False)
    from studio_gui.app import MainWindow

    windows = []

    def make(persona: str | None = None, *, model: str | None = None, prompt: str | None = None,
             greeting: str | None = None):
        win = MainWindow(PersonaStore(), use_audio_device=False)
        qtbot.addWidget(win)
        windows.append(win)
        win.show()
        if persona is not None:
            win.new_persona(persona)
        if model is not None:
            win.editor.model.setCurrentText(model)
        if prompt is not None:
            win.editor.system_prompt.setPlainText(prompt)
        if greeting is not None:
            win.editor.greeting.setPlainText(greeting)
        return win

    yield make
    for win in windows:
        win.preview.shutdown()
        assert not win.preview.daemon.is_running()
