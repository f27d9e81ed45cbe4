"""Five clicks place a face the detector cannot find: a drawn face `sdk.portrait` refuses on its own is accepted
with the user's points (eye centres, nose tip, mouth corners), the same frame the engine makes with them; the
points are clicked in the studio's dialog (mapped from the scaled view to the picture's pixels), stored with
the persona, and handed to the session's open."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

cv2 = pytest.importorskip("cv2")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, Qt  # noqa: E402

from sdk.portrait import load_portrait  # noqa: E402
from studio_gui.portrait_check import PortraitRejected, check_portrait, source_image  # noqa: E402
from studio_gui.widgets.face_points import FacePointsDialog  # noqa: E402

POINTS = [[155.0, 180.0], [245.0, 180.0], [200.0, 235.0], [160.0, 285.0], [240.0, 285.0]]


@pytest.fixture(scope="module")
def drawn(tmp_path_factory) -> str:
    """A flat drawn face (no detector finds it) on a 600x500 picture; POINTS are its eyes, nose and mouth."""
    img = np.full((500, 600, 3), 235, np.uint8)
    cv2.circle(img, (200, 210), 120, (140, 170, 200), -1)
    for x in (155, 245):
        cv2.circle(img, (x, 180), 12, (40, 40, 40), -1)
    cv2.circle(img, (200, 235), 8, (90, 110, 150), -1)
    cv2.line(img, (160, 285), (240, 285), (40, 40, 120), 6)
    path = tmp_path_factory.mktemp("drawn") / "drawn.png"
    assert cv2.imwrite(str(path), img)
    return str(path)


def test_points_place_a_face_the_detector_misses(drawn):
    with pytest.raises(PortraitRejected) as info:
        check_portrait(drawn)
    assert info.value.reason == "no_face" and "Place face points" in str(info.value)
    result = check_portrait(drawn, POINTS)
    assert result.found_by == "face_points" and result.face_points == POINTS
    engine = load_portrait(drawn, face_points=POINTS)            # what the engine makes with the same points
    assert np.array_equal(result.crop, engine.image) and np.allclose(result.landmarks, engine.landmarks)
    with pytest.raises(PortraitRejected) as info:                # the eyes swapped: refused, with the reason
        check_portrait(drawn, [POINTS[1], POINTS[0], *POINTS[2:]])
    assert info.value.reason == "bad_points"


def test_the_dialog_maps_clicks_to_picture_pixels(qtbot, drawn, screenshot):
    dialog = FacePointsDialog(source_image(drawn))
    qtbot.addWidget(dialog)
    view, ok = dialog.view, dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    assert view.scale < 1.0 and view.width() <= 480              # shown smaller than the picture
    assert "left eye" in dialog.prompt.text() and not ok.isEnabled()
    for i, (x, y) in enumerate(POINTS):
        at = view.to_view([x, y])
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=QPoint(round(at.x()), round(at.y())))
        assert len(view.points) == i + 1
        if i == 0:
            assert "right eye" in dialog.prompt.text()
    assert ok.isEnabled() and "press OK" in dialog.prompt.text()
    dialog.show()
    screenshot(dialog, "studio_face_points.png")
    got = np.array(dialog.points())
    assert np.abs(got - np.array(POINTS)).max() <= 1.0 / view.scale     # within one shown pixel
    dialog.undo_button.click()
    assert dialog.points() is None and not ok.isEnabled() and "right corner of the mouth" in dialog.prompt.text()


def test_chooser_offers_points_stores_them_and_opens_with_them(qtbot, drawn, studio_window, monkeypatch):
    win = studio_window("Drawn", model="tiny")
    chooser = win.portrait
    assert not chooser.load_file(drawn)
    assert chooser.last_reason == "no_face" and chooser.points_button.isVisibleTo(win)
    assert chooser.points_for == drawn and chooser.portrait_path is None

    def clicked_exec(dialog):                  # the user clicks the five points and presses OK
        for x, y in POINTS:
            dialog.view.add(x, y)
        return FacePointsDialog.DialogCode.Accepted

    monkeypatch.setattr(FacePointsDialog, "exec", clicked_exec)
    with qtbot.waitSignal(chooser.checked, timeout=60_000) as checked:
        assert chooser.place_points_dialog()
    assert checked.args == [True] and "five points" in chooser.message.text()
    assert chooser.portrait_path == os.path.realpath(drawn) and not chooser.points_button.isVisibleTo(win)
    assert np.allclose(chooser.face_points, POINTS, atol=1.0)
    assert win.save_current()
    stored = win.store.load("Drawn")
    assert stored.portrait == os.path.realpath(drawn) and np.allclose(stored.face_points, POINTS, atol=1.0)
    persona, portrait, points = win.session_open()           # what the preview's session is opened with
    assert portrait == open(drawn, "rb").read() and np.allclose(points, POINTS, atol=1.0)
    assert "face_points" not in persona.model_dump()

    other = studio_window()                                    # a fresh window shows the stored persona placed
    with qtbot.waitSignal(other.portrait.checked, timeout=60_000) as checked:
        other.select("Drawn")
    assert checked.args == [True] and other.portrait.last_check.found_by == "face_points"
    assert chooser.choose_character("ada") and chooser.face_points is None      # another identity: no points


def test_the_preview_opens_with_the_points_on_a_live_daemon(qtbot, drawn, studio_window):
    """Without its points the daemon refuses the drawn picture (invalid_portrait); with them the session opens
    and frames are painted: the points reach the engine through the session's open."""
    win = studio_window("Drawn live", model="tiny")
    assert win.portrait.load_file(drawn, POINTS) and win.save_current()
    panel = win.preview
    panel.start_button.click()
    qtbot.waitUntil(lambda: panel.session_id is not None, timeout=90_000)
    qtbot.waitUntil(lambda: panel.video.frames_shown >= 5, timeout=30_000)
    assert panel.worker.face_points == POINTS
    win.portrait.face_points = None                       # the same daemon, the picture without its points
    panel.connect_to(panel.control)
    qtbot.waitUntil(lambda: "failed" in panel.progress_label.text().lower(), timeout=30_000)
    assert "invalid_portrait" in panel.progress_label.text() or "no face" in panel.progress_label.text()
    panel.stop()
