"""The studio's built-in gallery: the characters the corpus generator exports (same ids the engine knows)."""

import os

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
