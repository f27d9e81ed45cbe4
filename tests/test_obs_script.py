"""The OBS script (plugins/obs_source/obs_script/xstreamer_obs.py) against a faithful fake of `obspython`.

The fake (tests/obs_fake/obspython.py) follows libobs' reference rules, records every call with its thread and
every script_log line, and calls timers and hotkeys on other threads than the UI thread, as OBS does; like OBS
29 it returns a placeholder source (output flags 0) for a source type no plugin registered. Every test ends by
checking that the script made no libobs call but script_log outside the UI thread. Live parts are real: the
`xstreamer obs` bridge the script starts (with the venv's Python), the daemon that bridge starts itself
(`--model tiny`), and `xstreamer serve` / `xstreamer obs` subprocesses started by the tests.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT_DIR = ROOT / "plugins" / "obs_source" / "obs_script"
sys.path.insert(0, str(ROOT / "tests" / "obs_fake"))
sys.path.insert(0, str(SCRIPT_DIR))     # OBS puts a script's folder on sys.path (its runtime helper lives there)
import obspython  # noqa: E402  (the fake)
import xstreamer_obs_runtime as runtime  # noqa: E402

from plugins.obs_source.procs import BridgeProc, Daemon  # noqa: E402
from tests.waiting import alive, wait_for  # noqa: E402

# the tests that start the bridge (or a daemon) are marked `process` one by one: the others need only the fake

SCRIPT = SCRIPT_DIR / "xstreamer_obs.py"
VENV = ROOT / ".venv"
XSTREAMER = str(VENV / "bin" / "xstreamer")
PORTRAIT = ROOT / "sdk" / "portrait" / "gallery" / "ada.png"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, token: str | None = None) -> dict:
    req = urllib.request.Request(url, headers={"X-XStreamer-Token": token} if token else {})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def loud(levels=(obspython.LOG_WARNING, obspython.LOG_ERROR)) -> list[str]:
    """Script log lines at levels that pop OBS's Script Log window open."""
    return [m for lvl, m, _ in obspython.logs if lvl in levels]


@pytest.fixture
def script():
    """A freshly imported script in a fresh fake OBS; unloaded (worker + bridge stopped) afterwards."""
    obspython.reset()
    spec = importlib.util.spec_from_file_location("xstreamer_obs_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    module.script_unload()
    assert not module.cohost.worker, "the worker thread must stop on unload"
    assert obspython.off_ui_thread() == [], "libobs calls (script_log aside) only on OBS's UI thread"


def settings_for(module, **values) -> obspython.Data:
    data = obspython.obs_data_create()
    module.script_defaults(data)
    for key, value in values.items():
        setter = {bool: obspython.obs_data_set_bool, int: obspython.obs_data_set_int}.get(
            type(value), obspython.obs_data_set_string)
        setter(data, key, value)
    return data


def props_by_name(module) -> dict:
    return {p["name"]: p for p in module.script_properties().all_items()}


def test_properties_and_defaults(script):
    data = settings_for(script)
    script.cohost.read(data)
    by_name = props_by_name(script)
    assert {"status", "persona", "portrait", "add_source", "stop", "say_text", "say", "speak", "interrupt", "mute",
            "twitch_channel", "chat_prefix", "chat_mods_only", "chat_user_cooldown", "chat_cooldown", "twitch_nick",
            "twitch_oauth", "size_pct", "corner", "start_daemon", "model", "daemon", "bridge_port",
            "xstreamer"} <= set(by_name)
    assert by_name["status"]["kind"] == obspython.OBS_TEXT_INFO
    assert by_name["persona"]["type"] == "path" and by_name["persona"]["kind"] == obspython.OBS_PATH_FILE
    assert "*.json" in by_name["persona"]["filter"] and "*.png" in by_name["portrait"]["filter"]
    assert by_name["twitch_oauth"]["kind"] == obspython.OBS_TEXT_PASSWORD
    assert by_name["bridge_port"]["type"] == "int" and by_name["bridge_port"]["max"] == 65535
    assert callable(by_name["say"]["callback"]) and callable(by_name["speak"]["callback"])
    assert [v for _, v in by_name["corner"]["options"]] == ["bottom-right", "bottom-left", "top-right", "top-left"]
    assert obspython.obs_data_get_bool(data, "start_daemon") is True, "the script starts the daemon by default"
    assert obspython.obs_data_get_string(data, "model") == "default"
    assert obspython.obs_data_get_int(data, "bridge_port") == 8765
    assert obspython.obs_data_get_string(data, "chat_prefix") == "!ask"
    token = obspython.obs_data_get_string(data, "bridge_token")
    assert len(token) >= 32, "a token is made once and kept in the settings"
    script.cohost.read(data)
    assert obspython.obs_data_get_string(data, "bridge_token") == token
    assert "co-host" in script.script_description()


def test_browser_source_is_created_placed_then_updated(script, tmp_path):
    data = settings_for(script, bridge_port=9123, xstreamer=str(tmp_path / "absent"))
    script.cohost.read(data)
    token = script.cohost.spec.token
    assert script.ensure_source()
    src = obspython.sources[script.SOURCE_NAME]
    assert src.kind == "browser_source" and src.flags & obspython.OBS_SOURCE_VIDEO
    assert src.settings.values["url"] == f"http://127.0.0.1:9123/?token={token}"
    assert src.settings.values["reroute_audio"] is True
    assert "rgba(0, 0, 0, 0)" in src.settings.values["css"], "a transparent page"
    scene = obspython.current_scene
    assert [item.source for item in scene.items] == [src]
    item = scene.items[0]
    # 1280x720: bottom right, 40 % of the canvas height (288 px), a 14 px margin; scaled inside its bounds
    assert item.alignment == 2 | 8 and item.pos == (1280 - 14, 720 - 14)
    assert item.bounds == (288, 288) and item.bounds_type == obspython.OBS_BOUNDS_SCALE_INNER
    assert any("added at (1266, 706), 288 px tall" in m for _, m, _ in obspython.logs)

    item.pos = (100.0, 50.0)      # the streamer moves it: pressing the button again leaves it there
    obspython.obs_data_set_int(data, "bridge_port", 9124)
    script.cohost.read(data)
    assert script.ensure_source()
    assert obspython.sources[script.SOURCE_NAME] is src and src.updates == 1
    assert src.settings.values["url"] == f"http://127.0.0.1:9124/?token={token}" and item.pos == (100.0, 50.0)
    assert len(scene.items) == 1, "a second call must not add the source twice"
    assert sum(1 for name, _ in obspython.calls if name == "obs_source_create") == 1
    # references: libobs' list + the scene item hold the source; everything the script created is released
    assert src.refs == 2 and scene.refs == 1
    assert all(obj.refs == 0 for obj in obspython.created if obj is not data)

    obspython.obs_data_set_int(data, "bridge_port", 9125)
    script.script_update(data)          # changed settings update the existing source (not a new one)
    assert src.settings.values["url"] == f"http://127.0.0.1:9125/?token={token}" and src.updates == 2

    obspython.canvas = (1920, 1080)
    obspython.obs_data_set_int(data, "size_pct", 50)
    obspython.obs_data_set_string(data, "corner", "top-left")
    script.cohost.read(data)
    other = obspython.Source("scene", "Scene 2", None)
    obspython.sources["Scene 2"], obspython.current_scene = other, other
    assert script.ensure_source()
    assert [item.source for item in other.items] == [src] and len(scene.items) == 1
    placed = other.items[0]
    assert placed.alignment == 4 | 1 and placed.pos == (22, 22) and placed.bounds == (540, 540)
    assert loud() == []


def test_missing_browser_source_is_said_not_success(script, tmp_path):
    """Debian's OBS: obs_source_create("browser_source") returns a placeholder. The script must not add it,
    must not log success, and must say why in its properties and its log."""
    obspython.reset(browser=False)
    data = settings_for(script, bridge_port=free_port(), xstreamer=str(tmp_path / "absent"))
    script.script_load(data)
    status = props_by_name(script)["status"]
    assert status["info_type"] == obspython.OBS_TEXT_INFO_ERROR, "said in the properties before any click"
    assert "no Browser Source" in obspython.obs_data_get_string(data, "status")
    assert loud() == [], "nothing in the collection yet: the Script Log does not pop open at load"

    add = props_by_name(script)["add_source"]["callback"]
    assert add(None, None) is True
    assert script.SOURCE_NAME not in obspython.sources, "no broken placeholder is left behind"
    assert obspython.current_scene.items == []
    errors = loud((obspython.LOG_ERROR,))
    assert errors and "no Browser Source" in errors[0] and "obs-browser" in errors[0]
    assert not [m for _, m, _ in obspython.logs if "shows http" in m or "added at" in m], "no success line"
    status = props_by_name(script)["status"]
    assert status["info_type"] == obspython.OBS_TEXT_INFO_ERROR
    text = obspython.obs_data_get_string(data, "status")
    assert "no Browser Source" in text and f"?token={script.cohost.spec.token}" in text, "…and the page's URL"
    assert all(obj.refs == 0 for obj in obspython.created if obj is not data)


def test_a_saved_placeholder_is_reported_at_load(script, tmp_path):
    """A scene collection made by an OBS with obs-browser, opened in one without: the source is a placeholder."""
    obspython.reset(browser=False)
    placeholder = obspython.Source("browser_source", "XStreamer Co-host", None)
    obspython.sources[placeholder.name] = placeholder
    assert placeholder.flags == 0
    script.script_load(settings_for(script, bridge_port=free_port(), xstreamer=str(tmp_path / "absent")))
    errors = loud((obspython.LOG_ERROR,))
    assert errors and "no Browser Source" in errors[0]
    assert script.ensure_source() is False and placeholder.updates == 0


@pytest.mark.process
def test_missing_xstreamer_is_logged_not_raised(script, tmp_path):
    data = settings_for(script, bridge_port=free_port(), xstreamer=str(tmp_path / "no-such-xstreamer"),
                        active=True)
    script.script_load(data)
    wait_for(lambda: any("cannot start the bridge" in m for _, m, _ in obspython.logs), what="an error log")
    errors = [m for lvl, m, _ in obspython.logs if lvl == obspython.LOG_ERROR]
    assert errors and "xstreamer" in errors[0]
    assert script.cohost.bridge is None
    # hotkeys and the periodic check are registered once; hotkey bindings survive a save
    names = sorted(h["name"] for h in obspython.hotkeys.values())
    assert names == ["xstreamer.interrupt", "xstreamer.mute"]
    assert [ms for _, ms in obspython.timers] == [script.CHECK_INTERVAL_MS]
    obspython.hotkeys[0]["bindings"] = [{"key": "OBS_KEY_F9"}]
    script.script_save(data)
    assert obspython.obs_data_get_array(data, "xstreamer.interrupt").items == [{"key": "OBS_KEY_F9"}]
    script.script_unload()
    assert obspython.timers == []


def test_nothing_starts_before_the_button(script):
    data = settings_for(script, bridge_port=free_port())
    script.script_load(data)
    for _ in range(3):
        obspython.run_timers()
        time.sleep(0.1)
    assert script.cohost.bridge is None and loud() == []


# ---- where xstreamer is, on each OS ---------------------------------------------------------------------
def make_venv(root: Path, host: runtime.Host) -> Path:
    (root / "pyvenv.cfg").parent.mkdir(parents=True, exist_ok=True)
    (root / "pyvenv.cfg").write_text("home = /usr/bin\n")
    python = host.venv_python(root)
    python.parent.mkdir(parents=True, exist_ok=True)
    python.write_text("")
    return python


@pytest.mark.parametrize("platform", ["win32", "darwin", "linux"])
def test_runtime_is_found_on_every_os(tmp_path, platform):
    host = runtime.Host(platform)
    # pip install: the script lives inside the venv's site-packages
    venv = tmp_path / "venv"
    python = make_venv(venv, host)
    site = (venv / "Lib" / "site-packages") if host.windows else (venv / "lib" / "python3.11" / "site-packages")
    script = site / "plugins" / "obs_source" / "obs_script" / "xstreamer_obs.py"
    script.parent.mkdir(parents=True)
    script.write_text("")
    found = runtime.find_runtime("", str(script), host, which=lambda name: None)
    assert found is not None and found.prefix == (str(python), "-m", "xstreamer")
    assert python.as_posix().endswith("Scripts/python.exe" if host.windows else "bin/python")
    # a clone set up with .venv
    clone = tmp_path / "clone"
    clone_python = make_venv(clone / ".venv", host)
    in_clone = clone / "plugins" / "obs_source" / "obs_script" / "xstreamer_obs.py"
    in_clone.parent.mkdir(parents=True)
    found = runtime.find_runtime("", str(in_clone), host, which=lambda name: None)
    assert found.prefix == (str(clone_python), "-m", "xstreamer")
    # the setting: a venv folder, a python, the command
    assert runtime.find_runtime(str(venv), "/x/y.py", host).prefix[0] == str(python)
    exe = "C:\\xs\\Scripts\\python.exe" if host.windows else "/opt/xs/bin/python3.11"
    assert runtime.find_runtime(exe, "/x/y.py", host).prefix == (exe, "-m", "xstreamer")
    cmd = "C:\\xs\\Scripts\\xstreamer.exe" if host.windows else "/opt/xs/bin/xstreamer"
    assert runtime.find_runtime(cmd, "/x/y.py", host).prefix == (cmd,)
    # nothing anywhere: None (the script then says what to set)
    assert runtime.find_runtime("", str(tmp_path / "lone" / "x.py"), host, which=lambda n: None) is None
    assert runtime.find_runtime("", str(tmp_path / "lone" / "x.py"), host,
                                which=lambda n: "/usr/bin/xstreamer").prefix == ("/usr/bin/xstreamer",)
    assert ("creationflags" in host.popen_flags()) == host.windows, "no console window on Windows"


def test_bridge_command_line_keeps_secrets_in_the_environment():
    spec = runtime.BridgeSpec(port=8800, token="t" * 32, model="tiny", twitch_channel="somechannel",
                              twitch_nick="mybot", twitch_oauth="oauth:secret", chat_prefix="!ai", chat_mods_only=True)
    argv = spec.args()
    assert argv[:4] == ["obs", "--port", "8800", "--exit-with-stdin"]
    assert argv[argv.index("--model") + 1] == "tiny" and "--start-daemon" in argv
    assert argv[argv.index("--twitch-channel") + 1] == "somechannel" and "--chat-mods-only" in argv
    assert argv[argv.index("--chat-prefix") + 1] == "!ai"
    assert not any("secret" in a or "t" * 32 in a for a in argv), "no token on the command line"
    assert spec.env()["XSTREAMER_OBS_TOKEN"] == "t" * 32 and spec.env()["XSTREAMER_TWITCH_OAUTH"] == "oauth:secret"


def test_the_bridge_log_is_rotated(tmp_path):
    log = tmp_path / "bridge.log"
    assert runtime.rotate_log(str(log), 10) is False           # no log yet
    log.write_bytes(b"x" * 10)
    assert runtime.rotate_log(str(log), 10) is False and log.exists()
    log.write_bytes(b"y" * 11)
    assert runtime.rotate_log(str(log), 10) is True
    assert not log.exists() and (tmp_path / "bridge.log.1").read_bytes() == b"y" * 11


# ---- live: the script starts the bridge, the bridge starts the daemon ------------------------------------
@pytest.mark.process
def test_one_button_starts_the_cohost_and_the_text_box_and_hotkeys_reach_it(script):
    """No terminal: the button starts the bridge (the venv's Python, found from the script's location), which
    starts its own daemon; Reply and Say this reach it, the hotkeys too; nothing pops the Script Log open; unload
    ends the bridge and the daemon."""
    port = free_port()
    data = settings_for(script, bridge_port=port, model="tiny")
    script.script_load(data)
    add = props_by_name(script)["add_source"]["callback"]
    assert add(None, None) is True and obspython.obs_data_get_bool(data, "active") is True
    token = script.cohost.spec.token
    live = wait_for(lambda: [m for _, m, _ in obspython.logs if "co-host live" in m] or obspython.run_timers(),
                    timeout=180, what="the co-host to go live")
    assert f"http://127.0.0.1:{port}/" in live[0]
    health = get_json(f"http://127.0.0.1:{port}/health", token)
    own = health["daemon_process"]
    assert own["state"] == "running" and own["model"] == "tiny" and own["pid"]
    assert health["options"]["start_daemon"] == "tiny" and health["options"]["connect"] is None
    started = [m for _, m, _ in obspython.logs if "started the bridge" in m][0]
    assert f"the environment at {VENV}" in started and "--exit-with-stdin" in started

    obspython.obs_data_set_string(data, "say_text", "Hello there, co-host!")
    by_name = props_by_name(script)
    assert by_name["say"]["callback"](None, None) is True
    assert obspython.obs_data_get_string(data, "say_text") == ""
    obspython.obs_data_set_string(data, "say_text", "Welcome to the stream, everyone.")
    assert by_name["speak"]["callback"](None, None) is True
    answers = wait_for(lambda: [(m, t) for _, m, t in obspython.logs if m.startswith(("[xstreamer] /say:",
                                                                                      "[xstreamer] /speak:"))
                                ] if len([m for _, m, _ in obspython.logs if m.startswith(
                                    ("[xstreamer] /say:", "[xstreamer] /speak:"))]) == 2 else None,
                       what="the /say and /speak answers")
    assert all("'ok': True" in m and "'utt'" in m for m, _ in answers)
    assert {t for _, t in answers} == {"xstreamer-obs"}, "HTTP runs on the worker thread, never on OBS's UI"
    stats = get_json(f"http://127.0.0.1:{port}/stats", token)["bridge"]
    assert stats["says"] == 1 and stats["speaks"] == 1

    obspython.press_hotkey("xstreamer.mute")
    wait_for(lambda: get_json(f"http://127.0.0.1:{port}/stats", token)["bridge"]["muted"] is True, what="mute")
    obspython.press_hotkey("xstreamer.interrupt")
    wait_for(lambda: get_json(f"http://127.0.0.1:{port}/stats", token)["bridge"]["interrupts"] == 1,
             what="interrupt")
    assert loud() == [], "a normal start logs quietly (warnings and errors pop OBS's Script Log open)"

    bridge = script.cohost.bridge.popen
    script.script_unload()
    wait_for(lambda: bridge.poll() is not None, timeout=15, what="the bridge to end when its lifeline closes")
    wait_for(lambda: not alive(own["pid"]), timeout=15, what="the daemon the bridge started to end with it")


def bridge_health(port: int, token: str) -> dict | None:
    try:
        return get_json(f"http://127.0.0.1:{port}/health", token)
    except OSError:
        return None


@pytest.mark.process
def test_unload_never_blocks_obs(script):
    """script_unload returns at once although the worker is busy and the bridge is running: the worker ends
    after its current job (without running queued ones), the bridge's lifeline closes and it goes away."""
    port = free_port()
    data = settings_for(script, bridge_port=port, start_daemon=False, daemon=f"tcp://127.0.0.1:{free_port()}",
                        active=True)
    script.script_load(data)
    wait_for(lambda: bridge_health(port, script.cohost.spec.token) or obspython.run_timers(),
             what="the script's bridge to answer")
    proc, worker = script.cohost.bridge.popen, script.cohost.worker
    busy, release, ran = threading.Event(), threading.Event(), []
    script.cohost.submit(lambda: (busy.set(), release.wait(10)))    # e.g. an HTTP request to a hung bridge
    script.cohost.submit(lambda: ran.append("queued job"))
    assert busy.wait(5)

    started = time.monotonic()
    script.script_unload()
    took = time.monotonic() - started
    assert took < 0.2, f"script_unload blocked OBS's UI thread for {took:.2f} s"
    wait_for(lambda: proc.poll() is not None, timeout=5, what="the bridge to exit when its stdin closes")
    assert proc.returncode == 0, "a graceful stop (lifeline), not a kill"
    assert bridge_health(port, script.cohost.spec.token) is None and worker.is_alive()
    release.set()
    worker.join(5)
    assert not worker.is_alive() and ran == [], "the worker ends after its current job, queued ones are dropped"
    script.cohost.submit(lambda: ran.append("after unload"))
    assert script.cohost.worker is None and ran == [], "no new work after unload"


@pytest.mark.process
def test_settings_change_restarts_own_bridge_with_persona_and_portrait(script, tmp_path):
    """A bridge the script started is restarted when the daemon, persona or portrait setting changes, and the
    persona/portrait settings reach its --persona/--portrait (a studio library persona file included)."""
    from studio_gui.personas import PersonaStore, StoredPersona

    port = free_port()
    first_daemon, second_daemon = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    data = settings_for(script, bridge_port=port, daemon=first_daemon, start_daemon=False, active=True)
    script.script_load(data)
    token = script.cohost.spec.token
    health = wait_for(lambda: bridge_health(port, token) or obspython.run_timers(), what="the first bridge")
    assert health["endpoint"] == first_daemon and health["persona"] == "Avatar" and health["portrait"] is None
    first = script.cohost.bridge

    portrait = tmp_path / "portraits" / "ada.png"
    portrait.parent.mkdir()
    shutil.copy(PORTRAIT, portrait)
    persona_file = PersonaStore(tmp_path / "personas").save(
        StoredPersona(name="Ada Streams", system_prompt="You are Ada, a cheerful co-host.",
                      portrait=str(portrait)))
    obspython.obs_data_set_string(data, "daemon", second_daemon)
    obspython.obs_data_set_string(data, "persona", str(persona_file))
    script.script_update(data)
    health = wait_for(lambda: (h := bridge_health(port, token)) and h["endpoint"] == second_daemon and h,
                      timeout=20, what="the restarted bridge")
    assert any("settings changed: restarting the co-host" in m for _, m, _ in obspython.logs)
    assert first.poll() is not None and script.cohost.bridge is not first
    argv = script.cohost.bridge.argv
    assert argv[argv.index("--persona") + 1] == str(persona_file) and "--portrait" not in argv
    assert health["persona"] == "Ada Streams", "the bridge read the studio's persona file"
    assert health["portrait"] == str(portrait.resolve()), "...and took its portrait as the default --portrait"
    assert health["options"]["persona"] == str(persona_file.resolve()) and health["options"]["portrait"] is None

    other = tmp_path / "other.png"
    shutil.copy(PORTRAIT, other)
    obspython.obs_data_set_string(data, "portrait", str(other))
    second = script.cohost.bridge
    script.script_update(data)
    health = wait_for(lambda: (h := bridge_health(port, token)) and h["portrait"] == str(other.resolve()) and h,
                      timeout=20, what="the bridge restarted with the portrait setting")
    argv = script.cohost.bridge.argv
    assert second.poll() is not None and argv[argv.index("--portrait") + 1] == str(other)
    assert health["persona"] == "Ada Streams" and health["options"]["portrait"] == str(other.resolve())
    assert loud() == []


@pytest.mark.process
def test_a_bridge_started_elsewhere_is_reported_not_used(script):
    """A bridge on the configured port that does not know this script's token (a terminal, another OBS)."""
    elsewhere = f"tcp://127.0.0.1:{free_port()}"
    bridge = BridgeProc.start(XSTREAMER, elsewhere)
    try:
        data = settings_for(script, bridge_port=bridge.port, start_daemon=False, active=True)
        script.script_load(data)
        warned = wait_for(lambda: [m for m in loud((obspython.LOG_WARNING,)) if "another program answers" in m]
                          or obspython.run_timers(), what="the warning")
        assert f"port {bridge.port}" in warned[0]
        for _ in range(3):
            obspython.run_timers()
            time.sleep(0.3)
        assert len([m for _, m, _ in obspython.logs if "another program answers" in m]) == 1, "warned once"
        assert script.cohost.bridge is None, "the script neither starts a second bridge nor kills this one"
        assert bridge.proc.popen.poll() is None
        assert props_by_name(script)["status"]["info_type"] == obspython.OBS_TEXT_INFO_WARNING
        assert f"Port {bridge.port} is taken" in obspython.obs_data_get_string(data, "status")
        assert not any("co-host live" in m for _, m, _ in obspython.logs)
    finally:
        bridge.stop()
