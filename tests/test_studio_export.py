"""Studio one-click exports: the persona file the OBS script loads and the Unity component's settings file;
neither carries the preview's temporary daemon address or session. (The plugins load them in
tests/test_studio_export_plugins.py.)"""

from __future__ import annotations

import base64
import json
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

from sdk.persona_file import parse_persona  # noqa: E402
from sdk.protocol import Persona  # noqa: E402
from studio_gui.export import ExportError, export_obs, export_unity  # noqa: E402
from studio_gui.personas import CONFIG_ENV, PersonaStore, StoredPersona  # noqa: E402


@pytest.fixture
def portrait(tmp_path):
    from matplotlib import cbook

    path = tmp_path / "grace.jpg"
    with open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), "rb") as f:
        path.write_bytes(f.read())
    return path


def test_obs_export_is_a_persona_file_with_its_portrait(tmp_path, portrait):
    persona = StoredPersona(name="Co Host", greeting="Hi chat", model="tiny", max_reply_sentences=2,
                            portrait=str(portrait))
    path = export_obs(persona, tmp_path / "obs")
    assert path == tmp_path / "obs" / "co-host.json"
    doc = json.loads(path.read_text())
    stored = parse_persona(path.read_bytes())                     # what the OBS bridge's --persona parses
    assert stored.to_persona() == persona.to_persona()
    copy = tmp_path / "obs" / "co-host.portrait.jpg"                # copied beside it, named relatively
    assert doc["portrait"] == "co-host.portrait.jpg" and copy.read_bytes() == portrait.read_bytes()
    text = path.read_text()
    assert "tcp://" not in text and "session" not in text           # nothing temporary in it
    no_face = json.loads(export_obs(StoredPersona(name="Plain"), tmp_path / "plain").read_text())
    assert no_face["portrait"] is None


def test_unity_export(tmp_path, portrait):
    persona = StoredPersona(name="NPC", system_prompt="You guard the gate.", portrait=str(portrait))
    path = export_unity(persona, tmp_path)
    doc = json.loads(path.read_text())
    assert path.name == "npc.unity.json" and doc["format"] == "xstreamer-unity" and doc["version"] == 1
    assert "control_endpoint" not in doc                            # the scene's own setting, not baked in
    assert Persona.model_validate(doc["persona"]).system_prompt == "You guard the gate."
    assert base64.b64decode(doc["portrait_base64"]) == portrait.read_bytes()        # embedded
    assert doc["portrait_path"] == "npc.portrait.jpg"                               # and copied beside it
    assert (tmp_path / "npc.portrait.jpg").read_bytes() == portrait.read_bytes()
    named = json.loads(export_unity(persona, tmp_path / "named", daemon="tcp://10.0.0.5:7570").read_text())
    assert named["control_endpoint"] == "tcp://10.0.0.5:7570"       # only when a caller names one
    no_face = json.loads(export_unity(StoredPersona(name="Plain"), tmp_path).read_text())
    assert no_face["portrait_base64"] is None and no_face["portrait_path"] is None
    portrait.unlink()
    with pytest.raises(ExportError, match="does not exist"):
        export_unity(persona, tmp_path)


@pytest.mark.parametrize("kind", ["obs", "unity"])
def test_export_folder_moves_and_imports_back(tmp_path, portrait, kind):
    """An exported folder is self-contained: moved elsewhere with the original photo deleted, its JSON
    file imports back as a persona whose portrait is the copy (a real face the chooser accepts)."""
    from studio_gui.portrait_check import check_portrait

    persona = StoredPersona(name="Road Trip", greeting="Hello from the road", voice="amy", model="tiny",
                            portrait=str(portrait))
    if kind == "obs":
        out = export_obs(persona, tmp_path / "out")
    else:
        out = export_unity(persona, tmp_path / "out")
    original = portrait.read_bytes()
    portrait.unlink()
    moved = tmp_path / "usb-stick"
    (tmp_path / "out").rename(moved)
    store = PersonaStore(tmp_path / "cfg" / "personas")
    back = store.import_file(moved / out.name)
    assert (back.name, back.greeting, back.voice, back.model) == \
        ("Road Trip", "Hello from the road", "amy", "tiny")
    assert back.portrait == str(moved / "road-trip.portrait.jpg")
    assert open(back.portrait, "rb").read() == original and check_portrait(back.portrait).face[2] > 64
    # Exporting the imported persona into the folder that already holds its portrait works (no self-copy).
    again = export_obs(back, moved) if kind == "obs" else export_unity(back, moved)
    assert again.exists() and (moved / "road-trip.portrait.jpg").read_bytes() == original


def test_window_export_buttons(qtbot, tmp_path, portrait, monkeypatch):
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "cfg"))
    monkeypatch.delenv("XSTREAMER_GALLERY_DIR", raising=False)
    from studio_gui.app import MainWindow

    win = MainWindow(PersonaStore(), use_audio_device=False)
    qtbot.addWidget(win)
    win.new_persona("Streamer")
    assert win.portrait.load_file(portrait)
    win.editor.greeting.setPlainText("Welcome back")
    win.preview.control, win.preview.session_id = "tcp://127.0.0.1:45123", "s1234"   # as during a preview
    out = win.export_to_obs(tmp_path / "exp")          # unsaved edits are saved first
    assert out is not None and not win.dirty
    assert json.loads(out.read_text())["greeting"] == "Welcome back"
    assert "45123" not in out.read_text() and "s1234" not in out.read_text()
    assert "Persona (JSON)" in win.message.text()
    unity = win.export_to_unity(tmp_path / "exp")
    assert json.loads(unity.read_text())["persona"]["name"] == "Streamer"
    assert "45123" not in unity.read_text() and "s1234" not in unity.read_text()
    win.preview.control, win.preview.session_id = None, None
    # Import… reads the Unity export back: a new persona wearing the copied portrait.
    with qtbot.waitSignal(win.portrait.checked) as checked:
        assert win.import_persona(unity) == "Streamer 2" and win.current == "Streamer 2"
    assert checked.args == [True]
    assert win.portrait.portrait_path == str(tmp_path / "exp" / "streamer.portrait.jpg")
    assert win.portrait.last_reason is None and "Face found" in win.portrait.message.text()
    assert win.editor.greeting.toPlainText() == "Welcome back"
    win.select("Streamer")
    portrait.unlink()
    assert win.export_to_unity(tmp_path / "exp") is None and "does not exist" in win.last_error
    win.preview.shutdown()
