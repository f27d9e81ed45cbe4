"""Studio persona library: files round-trip through the store and through the window (real Qt, offscreen)."""

from __future__ import annotations

import json
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from sdk.protocol import Persona  # noqa: E402
from studio_gui.gallery import GALLERY_ENV  # noqa: E402
from studio_gui.personas import (CONFIG_ENV, PersonaStore, PersonaStoreError, StoredPersona,  # noqa: E402
                                 config_dir, slugify)



@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "cfg"))
    monkeypatch.delenv(GALLERY_ENV, raising=False)          # the gallery the studio ships
    return PersonaStore()


def test_config_dir_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "x"))
    assert config_dir() == tmp_path / "x"
    assert PersonaStore().root == tmp_path / "x" / "personas"


def test_store_round_trip(store, tmp_path):
    ada = store.create("Ada Lovelace", system_prompt="You are Ada.", greeting="Hello!", model="tiny",
                       portrait=str(tmp_path / "ada.png"))
    path = store.path_for("Ada Lovelace")
    assert path.name == "ada-lovelace.json" and path.parent == store.root
    on_disk = json.loads(path.read_text())
    assert on_disk["system_prompt"] == "You are Ada." and on_disk["portrait"].endswith("ada.png")
    # The wire persona drops only the portrait path and validates against protocol v2.
    wire = store.load("Ada Lovelace").to_persona()
    assert isinstance(wire, Persona) and wire.greeting == "Hello!" and wire.model == "tiny"
    assert store.create("Ada Lovelace").name == "Ada Lovelace 2"          # names stay unique
    # Edit + rename: the old file goes away.
    store.save(ada.model_copy(update={"name": "Countess", "voice": "joe"}), previous_name="Ada Lovelace")
    assert store.names() == ["Ada Lovelace 2", "Countess"]
    dup = store.duplicate("Countess")
    assert dup.name == "Countess copy" and store.load("Countess copy").system_prompt == "You are Ada."
    store.delete("Countess copy")
    assert not store.exists("Countess copy")
    with pytest.raises(PersonaStoreError, match="already exists"):
        store.save(StoredPersona(name="Countess"), previous_name="Ada Lovelace 2")


def test_store_import_export_and_bad_files(store, tmp_path):
    store.create("Bob", greeting="Yo")
    out = store.export_file("Bob", tmp_path)
    assert json.loads(out.read_text())["greeting"] == "Yo"
    imported = store.import_file(out)
    assert imported.name == "Bob 2" and store.load("Bob 2").greeting == "Yo"
    rel = tmp_path / "rel.json"
    rel.write_text(json.dumps({"name": "Rel", "portrait": "faces/me.png"}))
    assert store.import_file(rel).portrait == str(tmp_path / "faces" / "me.png")
    bad = tmp_path / "bad.json"
    for content, reason in [("{not json", "not a JSON"), ("[1, 2]", "JSON object"),
                            (json.dumps({"name": "X", "colour": "red"}), "colour"),
                            (json.dumps({"name": ""}), "name"),
                            (json.dumps({"format": "xstreamer-obs", "version": 1}), "names no persona file"),
                            (json.dumps({"format": "xstreamer-obs", "persona_file": "gone.json"}),
                             "cannot read"),
                            (json.dumps({"format": "xstreamer-unity", "version": 1}), "holds no persona")]:
        bad.write_text(content)
        with pytest.raises(PersonaStoreError, match=reason):
            store.import_file(bad)
    with pytest.raises(PersonaStoreError, match="cannot read"):
        store.import_file(tmp_path / "missing.json")
    with pytest.raises(PersonaStoreError, match="no letters"):
        slugify("!!!")
    (store.root / "junk.json").write_text("garbage")      # unreadable files are skipped by the listing
    assert "junk" not in store.names() and "Bob" in store.names()


def test_window_library_round_trip(qtbot, store, tmp_path, screenshot):
    from studio_gui.app import MainWindow

    win = MainWindow(store, use_audio_device=False)
    qtbot.addWidget(win)
    win.show()
    assert win.library.names() == [] and not win.save_button.isEnabled()
    screenshot(win, "studio_empty.png")

    name = win.new_persona("Ada")
    assert name == "Ada" and win.library.current() == "Ada" and store.exists("Ada")
    # Edit through the widgets as a user would, then save.
    qtbot.keyClicks(win.editor.name, " Byron")
    win.editor.system_prompt.setPlainText("You are Ada Lovelace, a mathematician.")
    win.editor.greeting.setPlainText("Good evening.")
    win.editor.model.setCurrentText("tiny")
    assert win.portrait.choose_character("ada")
    assert win.dirty
    qtbot.mouseClick(win.save_button, __import__("PySide6.QtCore").QtCore.Qt.MouseButton.LeftButton)
    assert not win.dirty and not store.exists("Ada") and win.library.names() == ["Ada Byron"]
    saved = store.load("Ada Byron")
    assert (saved.system_prompt, saved.greeting, saved.model, saved.character) == \
        ("You are Ada Lovelace, a mathematician.", "Good evening.", "tiny", "ada")
    screenshot(win, "studio_persona_edited.png")

    # An invalid edit is refused with a message and nothing is written.
    win.editor.name.setText("")
    assert not win.save_current() and "name" in win.last_error.lower()
    win.editor.name.setText("Ada Byron")

    dup = win.duplicate_current()
    assert dup == "Ada Byron copy" and win.current == dup
    assert store.load(dup).greeting == "Good evening."
    assert win.delete_current(confirm=False) and not store.exists(dup)
    assert win.library.names() == ["Ada Byron"] and win.current == "Ada Byron"

    out = win.export_persona(tmp_path / "exported.json")
    assert json.loads(out.read_text())["name"] == "Ada Byron"
    imported = win.import_persona(out)
    assert imported == "Ada Byron 2" and win.library.names() == ["Ada Byron", "Ada Byron 2"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": 5}')
    assert win.import_persona(bad) is None and "Import failed" in win.message.text()

    # Switching persona with unsaved edits saves them first.
    win.select("Ada Byron")
    win.editor.greeting.setPlainText("Changed before switching.")
    win.library.list.setCurrentRow(1)
    assert win.current == "Ada Byron 2"
    assert store.load("Ada Byron").greeting == "Changed before switching."
    # A second window over the same folder sees the same personas (the files are the source of truth).
    other = MainWindow(PersonaStore(store.root), use_audio_device=False)
    qtbot.addWidget(other)
    assert other.library.names() == ["Ada Byron", "Ada Byron 2"]
    win.preview.shutdown()
    other.preview.shutdown()


def test_main_entry_point(qtbot, tmp_path, monkeypatch):
    """`xstreamer-studio --config-dir DIR` opens the window on DIR/personas (the event loop is not entered
    here: a real quit() would end pytest-qt's application for the tests that follow)."""
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "cfg"))
    from PySide6.QtWidgets import QApplication

    from studio_gui.app import MainWindow, main

    PersonaStore(tmp_path / "personas").create("Listed")
    monkeypatch.setattr(QApplication, "exec", lambda self: 0)
    assert main(["--config-dir", str(tmp_path)]) == 0
    windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
    assert [(w.store.root, w.library.names()) for w in windows] == [(tmp_path / "personas", ["Listed"])]
    for w in windows:
        w.close()


def test_voice_list_and_reply_cap(qtbot, store):
    """The voice box offers the voices the models have (sdk.protocol.VOICES) and nothing can be typed into it;
    a file naming a voice no model has shows (and saves) the first real one. The reply cap round-trips through
    the file into the persona a session is opened with."""
    from sdk.protocol import MAX_REPLY_SENTENCES, VOICES
    from studio_gui.app import MainWindow

    win = MainWindow(store, use_audio_device=False)
    qtbot.addWidget(win)
    win.new_persona("Narrator")
    box = win.editor.voice
    assert [box.itemText(i) for i in range(box.count())] == list(VOICES) and not box.isEditable()
    assert win.editor.max_sentences.maximum() == MAX_REPLY_SENTENCES
    assert win.editor.max_sentences.value() == 0 and win.editor.max_sentences.text() == "no limit"
    win.editor.max_sentences.setValue(2)
    assert win.dirty and win.save_current()
    assert json.loads(store.path_for("Narrator").read_text())["max_reply_sentences"] == 2
    assert win.session_persona()[0].max_reply_sentences == 2                 # what the session is opened with

    old = store.load("Narrator").model_copy(update={"name": "Old file", "voice": "en_GB-alba-medium"})
    store.save(old)
    other = MainWindow(PersonaStore(store.root), use_audio_device=False)    # a fresh window reads the files
    qtbot.addWidget(other)
    other.select("Old file")
    assert other.editor.voice.currentText() == VOICES[0]
    assert other.editor.max_sentences.value() == 2
    assert other.editor.persona().voice == VOICES[0]
    win.preview.shutdown()
    other.preview.shutdown()


def test_export_carries_the_portrait(store, tmp_path):
    """Export… copies the portrait beside the file and references it by a relative name, so the exported
    folder can move (another machine) and still imports with its portrait."""
    from matplotlib import cbook

    photo = tmp_path / "photos" / "Ada.JPG"
    photo.parent.mkdir()
    photo.write_bytes(open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), "rb").read())
    store.create("Ada", portrait=str(photo), voice="amy")
    (tmp_path / "share").mkdir()
    out = store.export_file("Ada", tmp_path / "share")      # a folder: the file is named after the persona
    doc = json.loads(out.read_text())
    assert out == tmp_path / "share" / "ada.json" and doc["portrait"] == "ada.portrait.jpg"
    assert (out.parent / "ada.portrait.jpg").read_bytes() == photo.read_bytes()
    moved = tmp_path / "elsewhere"
    (out.parent).rename(moved)
    photo.unlink()                                            # the original is gone: only the copy is left
    imported = store.import_file(moved / "ada.json")
    assert imported.name == "Ada 2" and imported.voice == "amy"
    assert imported.portrait == str(moved / "ada.portrait.jpg")
    assert store.load("Ada 2").portrait == str(moved / "ada.portrait.jpg")
    # A persona whose portrait file is missing exports with its stored path (nothing to copy).
    out2 = store.export_file("Ada", tmp_path / "again.json")
    assert json.loads(out2.read_text())["portrait"] == str(photo)
