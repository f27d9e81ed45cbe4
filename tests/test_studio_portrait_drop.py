"""Studio identity portraits dropped on the chooser: real QDragEnterEvent/QDropEvent with file URLs sent to
the window, real images (a photo, a built-in character, an image without a face, a file that is no image).
The dropped image is checked off the GUI thread; the user's last choice wins."""

from __future__ import annotations

import os
import shutil
import threading

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

pytest.importorskip("cv2")
pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent, QDropEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from studio_gui.portrait_check import check_portrait  # noqa: E402
from studio_gui.widgets.portrait_chooser import CHECK_THREAD, PREVIEW_PX, framed_pixmap  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED_GALLERY = os.path.join(ROOT, "sdk", "portrait", "gallery")
COPY = Qt.DropAction.CopyAction


def _sample(name: str) -> str:
    from matplotlib import cbook

    return str(cbook.get_sample_data(name, asfileobj=False))


def _mime(*paths: str, text: str | None = None) -> QMimeData:
    mime = QMimeData()
    if paths:
        mime.setUrls([QUrl.fromLocalFile(p) for p in paths])
    if text is not None:
        mime.setText(text)
    return mime


def _drag(window, target, mime: QMimeData, drop: bool = True) -> tuple[bool, bool]:
    """Drag `mime` over the middle of `target` and drop it there, the way the platform does: the events go
    to the top-level window, which finds the widget under the point that accepts drops. Returns whether
    the drag was accepted on entering and whether the drop was."""
    point = target.mapTo(window, target.rect().center())   # QDragEnterEvent takes a QPoint, QDropEvent a QPointF
    handle = window.windowHandle()
    enter = QDragEnterEvent(point, COPY, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter.ignore()
    QApplication.sendEvent(handle, enter)
    if not enter.isAccepted() or not drop:
        QApplication.sendEvent(handle, QDragLeaveEvent())
        return enter.isAccepted(), False
    event = QDropEvent(QPointF(point), COPY, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    event.ignore()
    QApplication.sendEvent(handle, event)
    return True, event.isAccepted()


def _expected_preview(path: str):
    """The image the chooser must show for an accepted `path`: the engine's frame with its landmarks."""
    return framed_pixmap(check_portrait(path), PREVIEW_PX).toImage()


@pytest.fixture
def window(studio_window):
    """A shown main window with one persona, on the gallery the studio ships."""
    return studio_window("Grace Hopper",
                         prompt="You are Grace Hopper, a computer scientist and naval officer.",
                         greeting="A ship in port is safe, but that is not what ships are built for.")


def test_drop_a_photo_shows_its_crop(qtbot, window, tmp_path, screenshot):
    chooser = window.portrait
    photo = str(tmp_path / "grace hopper.jpg")              # a space in the name: the URL is percent-encoded
    shutil.copyfile(_sample("grace_hopper.jpg"), photo)
    assert _drag(window, chooser.preview, _mime(text="just words")) == (False, False)   # text is refused
    assert chooser.portrait_path is None
    with qtbot.waitSignal(chooser.portraitChanged) as changed, qtbot.waitSignal(chooser.checked) as checked:
        assert _drag(window, chooser.preview, _mime(photo)) == (True, True)   # dropped on the preview box
        # The drop returned before the face was looked for: the check runs off the GUI thread.
        assert chooser.checking and chooser.portrait_path is None
        assert "Looking for a face in grace hopper.jpg" in chooser.message.text()
    assert checked.args == [True] and changed.args == [os.path.realpath(photo)] and not chooser.checking
    assert chooser.portrait_path == os.path.realpath(photo)
    assert chooser.last_reason is None and "Face found" in chooser.message.text()
    assert chooser.preview.pixmap().toImage() == _expected_preview(photo)    # the model's crop is shown
    assert window.dirty
    screenshot(window, "studio_portrait_crop.png")
    assert window.save_current() and window.store.load("Grace Hopper").portrait == os.path.realpath(photo)

    # A drawn character of the gallery is a face too; dropping it replaces the photo.
    ada = os.path.join(SHIPPED_GALLERY, "ada.png")
    with qtbot.waitSignal(chooser.checked):
        assert _drag(window, chooser.message, _mime(ada)) == (True, True)     # anywhere on the chooser
    assert chooser.portrait_path == os.path.realpath(ada)
    assert chooser.preview.pixmap().toImage() == _expected_preview(ada)


@pytest.mark.parametrize("name, reason, words", [
    ("Minduka_Present_Blue_Pack.png", "no_face", "No face found"),   # a real PNG without a face
    ("msft.csv", "unreadable", "not a readable image"),              # a text file
])
def test_drop_a_bad_file_shows_the_reason(qtbot, window, name, reason, words):
    chooser = window.portrait
    good = _sample("grace_hopper.jpg")
    with qtbot.waitSignal(chooser.checked):
        assert _drag(window, chooser.preview, _mime(good)) == (True, True)
    shown = chooser.preview.pixmap().toImage()
    changed: list[str] = []
    chooser.portraitChanged.connect(changed.append)
    with qtbot.waitSignal(chooser.checked) as checked:
        assert _drag(window, chooser.preview, _mime(_sample(name))) == (True, True)
    assert checked.args == [False]
    assert chooser.last_reason == reason and words in chooser.message.text()
    assert chooser.message.text().startswith("✗")
    # A refused image changes nothing but the message: the previous portrait and its crop stay.
    assert changed == [] and chooser.portrait_path == os.path.realpath(good)
    assert chooser.preview.pixmap().toImage() == shown


def _checks_finished(qtbot) -> None:
    """Wait until no portrait check thread runs, then let the GUI thread handle what they emitted."""
    qtbot.waitUntil(lambda: not [t for t in threading.enumerate() if t.name == CHECK_THREAD], timeout=10_000)
    qtbot.wait(50)


def test_a_check_overtaken_by_another_choice_is_dropped(qtbot, window):
    """The user's last choice wins: a check still running when a character is picked (or another persona
    is selected) is not shown when it ends."""
    chooser = window.portrait
    shown: list[bool] = []
    chooser.checked.connect(shown.append)
    assert _drag(window, chooser.preview, _mime(_sample("grace_hopper.jpg"))) == (True, True)
    assert chooser.choose_character("bruno")                  # before the check could report
    _checks_finished(qtbot)
    assert shown == [] and chooser.character == "bruno" and chooser.portrait_path is None
    assert "Bruno" in chooser.message.text()
    assert window.save_current()

    window.new_persona("Second")
    assert _drag(window, chooser.preview, _mime(_sample("grace_hopper.jpg"))) == (True, True)
    window.select("Grace Hopper")                             # switch while the check runs
    _checks_finished(qtbot)
    assert shown == [] and chooser.character == "bruno" and chooser.portrait_path is None
    assert window.store.load("Second").portrait is None
