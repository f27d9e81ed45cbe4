"""Studio identity portraits: real photos through `sdk.portrait` (the module the engine uses: dlib landmarks,
five points where no face is found); every refusal is shown with its reason."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

cv2 = pytest.importorskip("cv2")
pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from studio_gui.personas import CONFIG_ENV, PersonaStore  # noqa: E402
from sdk.portrait import decode_image, load_portrait  # noqa: E402
from sdk.portrait.landmarks import MIN_FACE_PX  # noqa: E402
from studio_gui.portrait_check import CROP_SIZE, PortraitRejected, check_portrait  # noqa: E402



@pytest.fixture
def window(studio_window):
    """A shown main window on an empty persona folder, with the gallery the studio ships."""
    return studio_window()


def _png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


@pytest.fixture(scope="module")
def hopper() -> np.ndarray:
    from matplotlib import cbook

    with open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), "rb") as f:
        return decode_image(f.read())


@pytest.fixture(scope="module")
def cases(hopper, tmp_path_factory) -> dict[str, str]:
    """One file per case: a good photo and each way a portrait is refused."""
    d = tmp_path_factory.mktemp("portraits")
    h, w = hopper.shape[:2]
    images = {
        "good": _png(hopper),
        "several_faces": _png(np.concatenate([hopper, hopper], axis=1)),
        "no_face": _png(np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)),
        "tiny_face": _png(cv2.resize(hopper, (w // 6, h // 6), interpolation=cv2.INTER_AREA)),
        "unreadable": b"\x89PNG\r\n\x1a\n this is not really an image " * 20,
    }
    paths = {}
    for name, data in images.items():
        paths[name] = str(d / f"{name}.png")
        with open(paths[name], "wb") as f:
            f.write(data)
    return paths


def test_check_portrait_accepts_one_face(cases, hopper):
    result = check_portrait(cases["good"])
    x, y, fw, fh = result.face
    assert result.crop.shape == (CROP_SIZE, CROP_SIZE, 3) and result.crop.dtype == np.uint8
    assert result.image_size == (hopper.shape[1], hopper.shape[0])
    assert fw >= MIN_FACE_PX and 0 <= x < hopper.shape[1] and 0 <= y < hopper.shape[0]
    assert result.landmarks.shape == (68, 2) and result.found_by == "detector" and result.face_points is None
    # Exactly what the engine uses: sdk.portrait's frame and landmarks, pixel for pixel.
    engine = load_portrait(cases["good"], size=CROP_SIZE)
    assert np.array_equal(result.crop, engine.image) and np.allclose(result.landmarks, engine.landmarks)


@pytest.mark.parametrize("case", ["several_faces", "no_face", "tiny_face", "unreadable"])
def test_check_portrait_refusals(cases, case):
    with pytest.raises(PortraitRejected) as info:
        check_portrait(cases[case])
    assert info.value.reason == case
    assert len(str(info.value)) > 20          # a sentence for the user, not a code


def test_check_portrait_missing_and_empty(tmp_path):
    with pytest.raises(PortraitRejected, match="does not exist") as info:
        check_portrait(tmp_path / "nope.png")
    assert info.value.reason == "unreadable"
    with pytest.raises(PortraitRejected) as info:
        check_portrait(b"")
    assert info.value.reason == "unreadable"


def test_chooser_shows_each_reason(qtbot, cases, window, screenshot):
    win = window
    assert win.portrait.characters           # the screenshot shows the shipped gallery, not the empty hint
    win.new_persona("Grace")
    chooser = win.portrait
    expected = {"unreadable": "not a readable image", "no_face": "No face", "tiny_face": "too small",
                "several_faces": "Several faces"}       # the last one is in the screenshot
    for case, words in expected.items():
        before = chooser.preview.grab().toImage()
        assert not chooser.load_file(cases[case])
        assert chooser.last_reason == case and words in chooser.message.text()
        assert chooser.portrait_path is None
        assert chooser.preview.grab().toImage() == before      # a refused image never shows as the crop
    screenshot(win, "studio_portrait_error.png")

    with qtbot.waitSignal(chooser.portraitChanged) as sig:
        assert chooser.load_file(cases["good"])
    assert sig.args == [os.path.realpath(cases["good"])] and "Face found" in chooser.message.text()
    assert not chooser.points_button.isVisible() and chooser.face_points is None
    assert chooser.preview.pixmap() is not None and not chooser.preview.pixmap().isNull()
    assert win.save_current() and win.store.load("Grace").portrait == os.path.realpath(cases["good"])
    # The preview opens sessions with these portrait bytes.
    persona, portrait = win.session_persona()
    assert persona.name == "Grace" and portrait == open(cases["good"], "rb").read()


def test_gallery_pick_sets_character(qtbot, cases, tmp_path, monkeypatch):
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    for i, colour in enumerate([(200, 60, 60), (60, 60, 200)]):
        img = np.full((128, 128, 3), colour, np.uint8)
        with open(gallery / f"c{i:04d}.png", "wb") as f:
            f.write(_png(img))
    (gallery / "gallery.json").write_text('[{"id": "c0001", "name": "Blue"}]')
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "cfg"))
    monkeypatch.setenv("XSTREAMER_GALLERY_DIR", str(gallery))
    from studio_gui.app import MainWindow

    win = MainWindow(PersonaStore(), use_audio_device=False)
    qtbot.addWidget(win)
    win.new_persona("Pixel")
    chooser = win.portrait
    assert [chooser.gallery.item(i).text() for i in range(chooser.gallery.count())] == ["c0000", "Blue"]
    assert not chooser.gallery_hint.isVisibleTo(win)
    assert chooser.load_file(cases["good"])
    assert chooser.choose_character("c0001")
    assert chooser.character == "c0001" and chooser.portrait_path is None
    assert not chooser.choose_character("nobody") and chooser.last_reason == "unknown_character"
    assert win.save_current()
    saved = win.store.load("Pixel")
    assert saved.character == "c0001" and saved.portrait is None
    win.preview.shutdown()


def test_empty_gallery_shows_hint(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "cfg"))
    monkeypatch.setenv("XSTREAMER_GALLERY_DIR", str(tmp_path / "empty"))
    from studio_gui.widgets.portrait_chooser import PortraitChooser

    chooser = PortraitChooser()
    qtbot.addWidget(chooser)
    chooser.show()
    assert chooser.characters == [] and chooser.gallery_hint.isVisible()
    assert "xstreamer data gallery" in chooser.gallery_hint.text()


def test_missing_stored_portrait_is_kept(qtbot, cases, window, tmp_path):
    """A persona whose portrait file was deleted shows the error but keeps the stored path when saved,
    until the user clears it or picks another identity. The same holds for an unknown gallery character."""
    import shutil

    from studio_gui.personas import PersonaStoreError

    photo = str(tmp_path / "moved-away.png")
    shutil.copyfile(cases["good"], photo)
    store = window.store
    store.create("Kept", portrait=photo)
    store.create("Lost character", character="zed")
    os.remove(photo)
    win, chooser = window, window.portrait
    win.refresh()
    with qtbot.waitSignal(chooser.checked) as checked:       # stored portraits are checked in the background
        win.select("Kept")
        assert chooser.checking and chooser.portrait_path == photo
    assert checked.args == [False]
    assert chooser.last_reason == "unreadable" and "does not exist" in chooser.message.text()
    assert photo in chooser.message.text() and chooser.message.text().startswith("✗")
    assert chooser.portrait_path == photo and not win.dirty
    win.editor.greeting.setPlainText("Still me.")                   # an unrelated edit, then save
    assert win.save_current()
    assert store.load("Kept").portrait == photo and store.load("Kept").greeting == "Still me."
    # The preview cannot open a session with it and says why (instead of a traceback).
    with pytest.raises(PersonaStoreError, match="cannot be read"):
        win.session_persona()
    win.preview.connect_to("tcp://127.0.0.1:9")
    assert "cannot be read" in win.preview.progress_label.text() and win.preview.worker is None
    # A refused new image keeps it too; Clear drops it.
    assert not chooser.load_file(cases["no_face"]) and chooser.portrait_path == photo
    qtbot.mouseClick(chooser.clear_button, __import__("PySide6.QtCore").QtCore.Qt.MouseButton.LeftButton)
    assert win.dirty and win.save_current() and store.load("Kept").portrait is None

    # Picking a character instead replaces the stored portrait.
    store.save(store.load("Kept").model_copy(update={"portrait": photo}))
    win.select("Lost character")
    assert chooser.character == "zed" and chooser.last_reason == "unknown_character"
    assert "zed" in chooser.message.text() and win.save_current()
    assert store.load("Lost character").character == "zed"
    win.select("Kept")
    assert chooser.portrait_path == photo
    assert chooser.choose_character("ada") and win.save_current()
    kept = store.load("Kept")
    assert (kept.portrait, kept.character) == (None, "ada")
