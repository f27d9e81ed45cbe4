"""Studio one-click exports: the OBS settings + Browser Source URL and the Unity bridge's settings file."""

from __future__ import annotations

import base64
import json
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

from sdk.protocol import Persona  # noqa: E402
from studio_gui.export import ExportError, browser_source_url, export_obs, export_unity  # noqa: E402
from studio_gui.personas import CONFIG_ENV, PersonaStore, StoredPersona  # noqa: E402

OBS_SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "plugins", "obs_source", "obs_script", "xstreamer_obs.py")


@pytest.fixture
def portrait(tmp_path):
    from matplotlib import cbook

    path = tmp_path / "grace.jpg"
    with open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), "rb") as f:
        path.write_bytes(f.read())
    return path


def test_obs_export(tmp_path, portrait):
    persona = StoredPersona(name="Co Host", greeting="Hi chat", model="tiny", portrait=str(portrait))
    settings_path, persona_path = export_obs(persona, tmp_path / "obs", daemon="tcp://127.0.0.1:7001",
                                             port=9100, session="abc123")
    doc = json.loads(settings_path.read_text())
    assert settings_path.name == "co-host.obs.json" and doc["format"] == "xstreamer-obs"
    assert doc["browser_source"]["url"] == "http://127.0.0.1:9100/?session=abc123"
    assert doc["browser_source"]["reroute_audio"] is True
    # The portrait is copied beside the settings and named relatively; the OBS script's settings and the
    # bridge command (handed verbatim to a process in OBS's working directory) use the copy's full path.
    copy = tmp_path / "obs" / "co-host.portrait.jpg"
    assert doc["portrait"] == "co-host.portrait.jpg" and copy.read_bytes() == portrait.read_bytes()
    assert doc["persona_file"] == "co-host.persona.json" == persona_path.name
    s = doc["obs_script_settings"]
    assert (s["daemon"], s["bridge_port"]) == ("tcp://127.0.0.1:7001", 9100)
    assert s["portrait"] == str(copy.resolve())
    # The persona file the settings point at is a valid wire persona (what `xstreamer obs --persona` loads).
    assert s["persona"] == str(persona_path.resolve())
    wire = Persona.model_validate_json(persona_path.read_bytes())
    assert wire.greeting == "Hi chat" and wire.name == "Co Host"
    cmd = doc["bridge_command"]
    assert cmd[1:3] == ["obs", "--connect"] and cmd[cmd.index("--session") + 1] == "abc123"
    assert cmd[cmd.index("--portrait") + 1] == str(copy.resolve())
    assert browser_source_url(8765) == "http://127.0.0.1:8765/"
    with pytest.raises(ExportError):
        browser_source_url(70000)


@pytest.mark.skipif(not os.path.exists(OBS_SCRIPT), reason="the OBS script is not in this checkout")
def test_obs_settings_keys_match_the_script(tmp_path):
    """Every key the studio writes is a setting the OBS script reads (and vice versa for the core ones)."""
    import re

    source = open(OBS_SCRIPT, encoding="utf-8").read()
    read = set(re.findall(r'obs_data_get_(?:string|int|bool)\(settings, "(\w+)"\)', source))
    persona = StoredPersona(name="K")
    written = set(json.loads(export_obs(persona, tmp_path)[0]
                             .read_text())["obs_script_settings"])
    assert written <= read, written - read


def test_unity_export(tmp_path, portrait):
    persona = StoredPersona(name="NPC", system_prompt="You guard the gate.", portrait=str(portrait))
    path = export_unity(persona, tmp_path, daemon="tcp://127.0.0.1:7002")
    doc = json.loads(path.read_text())
    assert path.name == "npc.unity.json" and doc["format"] == "xstreamer-unity" and doc["version"] == 1
    assert doc["control_endpoint"] == "tcp://127.0.0.1:7002"
    assert Persona.model_validate(doc["persona"]).system_prompt == "You guard the gate."
    assert base64.b64decode(doc["portrait_base64"]) == portrait.read_bytes()        # still embedded
    assert doc["portrait_path"] == "npc.portrait.jpg"                               # and copied beside it
    assert (tmp_path / "npc.portrait.jpg").read_bytes() == portrait.read_bytes()
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
        out = export_obs(persona, tmp_path / "out")[0]
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
    again = export_obs(back, moved)[0] if kind == "obs" else export_unity(back, moved)
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
    out = win.export_to_obs(tmp_path / "exp")          # unsaved edits are saved first
    assert out is not None and not win.dirty
    doc = json.loads(out.read_text())
    assert doc["browser_source"]["url"] == "http://127.0.0.1:8765/"      # no live session: the bridge opens one
    assert json.loads(open(doc["obs_script_settings"]["persona"]).read())["greeting"] == "Welcome back"
    unity = win.export_to_unity(tmp_path / "exp")
    assert json.loads(unity.read_text())["persona"]["name"] == "Streamer"
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
