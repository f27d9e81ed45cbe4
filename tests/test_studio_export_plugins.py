"""What the studio's Export writes is what the plugins load, there:

* OBS: the exported persona file set as the OBS script's "Persona (JSON)" setting, under the repo's fake
  `obspython` (tests/obs_fake, as tests/test_obs_script.py): the script starts the real `xstreamer obs`
  bridge, which opens a session on a live `xstreamer serve --model tiny` with that persona and the portrait
  the file names; /health shows both.
* Unity: the exported ``.unity.json`` read by the Unity core's `PersonaFile` under mono (as
  tests/test_unity_persona.py): the same persona fields (reply cap included) and portrait bytes, and no daemon
  address overriding the scene's own.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import socket
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PORTRAIT = ROOT / "sdk" / "portrait" / "gallery" / "ada.png"
SCRIPT = ROOT / "plugins" / "obs_source" / "obs_script" / "xstreamer_obs.py"
XSTREAMER = str(Path(sys.executable).parent / "xstreamer")

export = pytest.importorskip("studio_gui.export")
from studio_gui.personas import StoredPersona  # noqa: E402
from tests.waiting import wait_for  # noqa: E402


def _persona(tmp_path: Path) -> StoredPersona:
    pics = tmp_path / "pics"
    pics.mkdir(exist_ok=True)
    portrait = pics / "ada.png"
    shutil.copy(PORTRAIT, portrait)
    return StoredPersona(name="Ada Streams", system_prompt="You are Ada, a cheerful co-host.",
                         greeting="Hello chat!", model="tiny", max_reply_sentences=2, portrait=str(portrait))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _health(port: int, token: str) -> dict | None:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/health", headers={"X-XStreamer-Token": token})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())
    except OSError:
        return None


@pytest.mark.skipif(not Path(XSTREAMER).exists(), reason="no xstreamer command in this venv")
def test_the_obs_script_loads_the_obs_export(tmp_path):
    from sdk.launcher import DaemonProcess

    sys.path.insert(0, str(ROOT / "tests" / "obs_fake"))
    sys.path.insert(0, str(SCRIPT.parent))      # OBS puts the script's folder on sys.path (its runtime helper)
    import obspython  # the fake

    persona = _persona(tmp_path)
    exported = export.export_obs(persona, tmp_path / "for-obs")
    moved = tmp_path / "obs-profile"                        # the folder travels (another machine, USB stick)
    shutil.copytree(exported.parent, moved)
    shutil.rmtree(exported.parent)
    Path(persona.portrait).unlink()                         # the original photo is gone too
    persona_file = moved / exported.name
    copy = moved / "ada-streams.portrait.png"

    obspython.reset()
    spec = importlib.util.spec_from_file_location("xstreamer_obs_export_test", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with DaemonProcess(model="tiny") as daemon:
        try:
            port = _free_port()
            data = obspython.obs_data_create()
            script.script_defaults(data)
            obspython.obs_data_set_int(data, "bridge_port", port)
            obspython.obs_data_set_bool(data, "start_daemon", False)    # this test's daemon, not the script's own
            obspython.obs_data_set_bool(data, "active", True)           # as after "Add / update the co-host"
            for key, value in (("daemon", daemon.control), ("persona", str(persona_file)),
                               ("xstreamer", XSTREAMER)):
                obspython.obs_data_set_string(data, key, value)
            script.script_load(data)
            token = script.cohost.spec.token
            health = wait_for(lambda: (h := _health(port, token)) and h.get("daemon") and h or obspython.run_timers(),
                           60, "the bridge's session")
            assert health["persona"] == "Ada Streams", "the bridge took the exported persona"
            assert health["portrait"] == str(copy.resolve()), "...and the portrait copied beside it"
            assert health["endpoint"] == daemon.control and health["session"]
            assert not [m for lvl, m, _ in obspython.logs if lvl == obspython.LOG_ERROR]
        finally:
            script.script_unload()
            bridge = script.cohost.bridge
            if bridge is not None and bridge.poll() is None:
                bridge.popen.kill()


def test_the_unity_core_loads_the_unity_export(tmp_path):
    from unity_build import mb

    if mb.missing_tools() is not None:
        pytest.skip(str(mb.missing_tools()))
    persona = _persona(tmp_path)
    original = Path(persona.portrait).read_bytes()
    assets = tmp_path / "Game" / "Assets" / "StreamingAssets"
    out = export.export_unity(persona, assets / "npc")
    proc = mb.run_mono(mb.program("PersonaLoad"), str(out), timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("{")))
    assert got["ok"] is True and got["unity_export"] is True, got
    want = persona.to_persona().model_dump()
    assert {k: got["persona"][k] for k in want} == want          # every field, the reply cap included
    assert got["portrait_sha256"] == hashlib.sha256(original).hexdigest()
    # No daemon address in the file: the component keeps its own (PersonaLoad's placeholder here).
    assert got["options"]["control_endpoint"] == "tcp://unset:1"
