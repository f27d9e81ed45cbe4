"""The studio's built-in gallery: the characters the corpus generator exports (same ids the engine knows)."""

import os

import pytest

from studio_gui.gallery import find_character, load_gallery


def test_shipped_gallery_matches_the_engines_characters(tmp_path, monkeypatch):
    monkeypatch.setenv("XSTREAMER_CONFIG_DIR", str(tmp_path))     # no user gallery: the shipped one is used
    monkeypatch.delenv("XSTREAMER_GALLERY_DIR", raising=False)
    chars = load_gallery()
    assert len(chars) == 12
    ada = find_character("ada", chars)
    assert ada is not None and ada.name == "Ada"
    from engine_core.data.synth.gallery import gallery_characters

    assert sorted(c.id for c in chars) == sorted(c.id for c in gallery_characters())
    assert all(os.path.getsize(c.image) > 1000 for c in chars)


def test_pick_a_shipped_character_in_the_window(qtbot, studio_window, screenshot):
    """A mouse click on a built-in character makes it the persona's identity; renders the screenshot."""
    pytest.importorskip("pytestqt")
    from PySide6.QtCore import Qt

    win = studio_window("Kemi", prompt="You are Kemi, a warm and witty radio host.",
                        greeting="Good morning, listeners!")
    chooser = win.portrait
    assert chooser.gallery.isVisible() and not chooser.gallery_hint.isVisible()
    row = [c.id for c in chooser.characters].index("kemi")
    item = chooser.gallery.item(row)
    chooser.gallery.scrollToItem(item)
    with qtbot.waitSignal(chooser.characterChanged) as sig:
        qtbot.mouseClick(chooser.gallery.viewport(), Qt.MouseButton.LeftButton,
                         pos=chooser.gallery.visualItemRect(item).center())
    assert sig.args == ["kemi"] and chooser.character == "kemi" and chooser.portrait_path is None
    assert "Kemi" in chooser.message.text() and not chooser.preview.pixmap().isNull()
    assert win.dirty and win.save_current()
    assert win.store.load("Kemi").character == "kemi"
    screenshot(win, "studio_gallery_pick.png")
    # Shown again from the file (another persona, then back): the pick is highlighted in the gallery.
    win.new_persona("Other")
    assert chooser.character is None and not chooser.gallery.selectedItems()
    win.select("Kemi")
    assert chooser.character == "kemi" and [i.text() for i in chooser.gallery.selectedItems()] == ["Kemi"]
