"""The OBS script (plugins/obs_source/obs_script/xstreamer_obs.py) against a faithful fake of `obspython`.

The fake (tests/obs_fake/obspython.py) follows libobs' reference rules, records every call with its thread and
every script_log line, and calls timers and hotkeys on other threads than the UI thread, as OBS does. Every test
ends by checking that the script made no libobs call but script_log outside the UI thread. Live parts are real:
`xstreamer serve --model tiny` and `xstreamer obs` subprocesses.
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
sys.path.insert(0, str(ROOT / "tests" / "obs_fake"))
import obspython  # noqa: E402  (the fake)

from plugins.obs_source.procs import BridgeProc, Daemon  # noqa: E402

SCRIPT = ROOT / "plugins" / "obs_source" / "obs_script" / "xstreamer_obs.py"
XSTREAMER = str(ROOT / ".venv" / "bin" / "xstreamer")
PORTRAIT = ROOT / "studio_gui" / "gallery" / "ada.png"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; script log: {obspython.logs[-10:]}")


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


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
        (obspython.obs_data_set_int if isinstance(value, int) else obspython.obs_data_set_string)(data, key, value)
    return data


def test_properties_and_defaults(script):
    data = settings_for(script)
    props = script.script_properties()
    by_name = {p["name"]: p for p in props.items}
    assert {"daemon", "persona", "portrait", "bridge_port", "say_text", "say", "interrupt", "mute",
            "add_source"} <= set(by_name)
    assert by_name["persona"]["type"] == "path" and by_name["persona"]["kind"] == obspython.OBS_PATH_FILE
    assert "*.json" in by_name["persona"]["filter"] and "*.png" in by_name["portrait"]["filter"]
    assert by_name["bridge_port"]["type"] == "int" and by_name["bridge_port"]["max"] == 65535
    assert callable(by_name["say"]["callback"]) and by_name["say_text"]["type"] == "text"
    assert obspython.obs_data_get_string(data, "daemon") == "tcp://127.0.0.1:7570"
    assert obspython.obs_data_get_int(data, "bridge_port") == 8765
    assert isinstance(script.script_description(), str) and "co-host" in script.script_description()


def test_browser_source_is_created_then_updated_not_duplicated(script, tmp_path):
    data = settings_for(script, bridge_port=9123, xstreamer=str(tmp_path / "absent"))
    script.cohost.read(data)
    assert script.ensure_source()
    src = obspython.sources[script.SOURCE_NAME]
    assert src.kind == "browser_source"
    assert src.settings.values["url"] == "http://127.0.0.1:9123/"
    assert src.settings.values["reroute_audio"] is True
    assert (src.settings.values["width"], src.settings.values["height"]) == (256, 256)
    scene = obspython.current_scene
    assert [item.source for item in scene.items] == [src]

    obspython.obs_data_set_int(data, "bridge_port", 9124)
    obspython.obs_data_set_int(data, "width", 512)
    script.cohost.read(data)
    assert script.ensure_source()
    assert obspython.sources[script.SOURCE_NAME] is src and src.updates == 1
    assert src.settings.values["url"] == "http://127.0.0.1:9124/" and src.settings.values["width"] == 512
    assert len(scene.items) == 1, "a second call must not add the source twice"
    assert sum(1 for name, _ in obspython.calls if name == "obs_source_create") == 1
    # references: libobs' list + the scene item hold the source; everything the script created is released
    assert src.refs == 2 and scene.refs == 1
    assert all(obj.refs == 0 for obj in obspython.created if obj is not data)

    obspython.obs_data_set_int(data, "bridge_port", 9125)
    script.script_update(data)          # changed settings update the existing source (not a new one)
    assert src.settings.values["url"] == "http://127.0.0.1:9125/" and src.updates == 2
    assert all(obj.refs == 0 for obj in obspython.created if obj is not data)

    other = obspython.Source("scene", "Scene 2", None)
    obspython.sources["Scene 2"], obspython.current_scene = other, other
    assert script.ensure_source()
    assert [item.source for item in other.items] == [src] and len(scene.items) == 1


def test_missing_bridge_command_is_logged_not_raised(script, tmp_path):
    data = settings_for(script, bridge_port=free_port(), xstreamer=str(tmp_path / "no-such-xstreamer"))
    script.script_load(data)
    script.script_update(data)
    wait_for(lambda: any("cannot start the bridge" in m for _, m, _ in obspython.logs), what="an error log")
    errors = [(lvl, m) for lvl, m, _ in obspython.logs if lvl == obspython.LOG_ERROR]
    assert errors and "xstreamer" in errors[0][1]
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


@pytest.fixture(scope="module")
def daemon():
    d = Daemon.start(XSTREAMER)
    yield d
    d.stop()


def test_missing_daemon_is_logged_and_retried(script):
    """No daemon: the script starts the real bridge, logs that the daemon does not answer, keeps checking."""
    port = free_port()
    data = settings_for(script, bridge_port=port, daemon=f"tcp://127.0.0.1:{free_port()}", xstreamer=XSTREAMER)
    script.script_load(data)
    wait_for(lambda: script.cohost.bridge is not None, what="the bridge to be started")
    warned = wait_for(lambda: [m for lvl, m, _ in obspython.logs if lvl == obspython.LOG_WARNING and
                               "daemon" in m and "does not answer" in m] or
                      obspython.run_timers(), timeout=40, what="a missing-daemon warning")
    assert "tcp://127.0.0.1:" in warned[0]
    checks = sum(1 for name, _ in obspython.calls if name == "script_log")
    for _ in range(3):  # more checks: no exception, no duplicate warning flood
        obspython.run_timers()
        time.sleep(0.3)
    health = get_json(f"http://127.0.0.1:{port}/health")
    assert health["ok"] is True and health["daemon"] is False
    assert not [m for _, m, _ in obspython.logs if "Error:" in m or "Traceback" in m]
    assert sum(1 for name, _ in obspython.calls if name == "script_log") - checks <= 1
    proc = script.cohost.bridge
    script.script_unload()
    wait_for(lambda: proc.poll() is not None, timeout=5, what="unloading the script to stop the bridge it started")


def test_text_box_and_hotkeys_reach_a_live_bridge(script, daemon):
    bridge = BridgeProc.start(XSTREAMER, daemon.control)
    try:
        port = int(bridge.url.rstrip("/").rsplit(":", 1)[1])
        wait_for(lambda: get_json(bridge.url + "health")["daemon"], what="the bridge's session")
        data = settings_for(script, bridge_port=port, daemon=daemon.control, xstreamer=XSTREAMER)
        script.script_load(data)
        wait_for(lambda: any("co-host live" in m for _, m, _ in obspython.logs), what="the live log line")
        assert script.cohost.bridge is None, "a running bridge is used, not started again"

        obspython.obs_data_set_string(data, "say_text", "Hello there, co-host!")
        say = obspython.obs_properties_get(script.script_properties(), "say")["callback"]
        assert say(None, None) is True                      # the properties view refreshes...
        assert obspython.obs_data_get_string(data, "say_text") == ""   # ...with an empty text box
        line = wait_for(lambda: [(m, t) for _, m, t in obspython.logs if m.startswith("[xstreamer] /say:")],
                        what="the /say answer")
        message, thread = line[0]
        assert "'ok': True" in message and "'utt'" in message
        assert thread == "xstreamer-obs", "HTTP must run on the worker thread, never on OBS's UI thread"
        assert get_json(bridge.url + "stats")["bridge"]["says"] == 1

        obspython.press_hotkey("xstreamer.mute")
        wait_for(lambda: get_json(bridge.url + "stats")["bridge"]["muted"] is True, what="mute")
        obspython.press_hotkey("xstreamer.interrupt")
        wait_for(lambda: get_json(bridge.url + "stats")["bridge"]["interrupts"] == 1, what="interrupt")
        http_threads = {t for _, m, t in obspython.logs if m.startswith("[xstreamer] /")}
        assert http_threads == {"xstreamer-obs"}
    finally:
        bridge.stop()


def bridge_health(port: int) -> dict | None:
    try:
        return get_json(f"http://127.0.0.1:{port}/health")
    except OSError:
        return None


def test_unload_never_blocks_obs(script):
    """script_unload returns at once although the worker is busy and the bridge is running: the worker ends
    after its current job (without running queued ones), the bridge gets SIGTERM and goes away by itself."""
    port = free_port()
    data = settings_for(script, bridge_port=port, daemon=f"tcp://127.0.0.1:{free_port()}", xstreamer=XSTREAMER)
    script.script_load(data)
    wait_for(lambda: bridge_health(port), what="the script's bridge to answer")
    proc, worker = script.cohost.bridge, script.cohost.worker
    busy, release, ran = threading.Event(), threading.Event(), []
    script.cohost.submit(lambda: (busy.set(), release.wait(10)))    # e.g. an HTTP request to a hung bridge
    script.cohost.submit(lambda: ran.append("queued job"))
    assert busy.wait(5)

    started = time.monotonic()
    script.script_unload()
    took = time.monotonic() - started
    assert took < 0.2, f"script_unload blocked OBS's UI thread for {took:.2f} s"
    wait_for(lambda: proc.poll() is not None, timeout=5, what="the bridge to exit after SIGTERM")
    assert bridge_health(port) is None and worker.is_alive(), "the bridge is gone while the worker is still busy"
    release.set()
    worker.join(5)
    assert not worker.is_alive() and ran == [], "the worker ends after its current job, queued ones are dropped"
    script.cohost.submit(lambda: ran.append("after unload"))
    assert script.cohost.worker is None and ran == [], "no new work after unload"


def test_settings_change_restarts_own_bridge_with_persona_and_portrait(script, tmp_path):
    """A bridge the script started is restarted when the daemon, persona or portrait setting changes, and the
    persona/portrait settings reach its --persona/--portrait (a studio library persona file included)."""
    from studio_gui.personas import PersonaStore, StoredPersona

    port = free_port()
    first_daemon, second_daemon = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    data = settings_for(script, bridge_port=port, daemon=first_daemon, xstreamer=XSTREAMER)
    script.script_load(data)
    health = wait_for(lambda: bridge_health(port), what="the script's first bridge")
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
    health = wait_for(lambda: (h := bridge_health(port)) and h["endpoint"] == second_daemon and h,
                      timeout=20, what="the restarted bridge")
    assert any("settings changed: restarting the bridge" in m for _, m, _ in obspython.logs)
    assert first.poll() is not None and script.cohost.bridge is not first
    argv = script.cohost.bridge.args
    assert argv[argv.index("--persona") + 1] == str(persona_file) and "--portrait" not in argv
    assert health["persona"] == "Ada Streams", "the bridge read the studio's persona file"
    assert health["portrait"] == str(portrait.resolve()), "...and took its portrait as the default --portrait"
    assert health["options"]["persona"] == str(persona_file.resolve()) and health["options"]["portrait"] is None

    other = tmp_path / "other.png"
    shutil.copy(PORTRAIT, other)
    obspython.obs_data_set_string(data, "portrait", str(other))
    second = script.cohost.bridge
    script.script_update(data)
    health = wait_for(lambda: (h := bridge_health(port)) and h["portrait"] == str(other.resolve()) and h,
                      timeout=20, what="the bridge restarted with the portrait setting")
    argv = script.cohost.bridge.args
    assert second.poll() is not None and argv[argv.index("--portrait") + 1] == str(other)
    assert health["persona"] == "Ada Streams" and health["options"]["portrait"] == str(other.resolve())
    assert not [m for lvl, m, _ in obspython.logs if lvl == obspython.LOG_WARNING and "not started by" in m]


def test_foreign_bridge_for_another_daemon_is_warned(script):
    """A bridge started elsewhere on the configured port that talks to another daemon is not silently used."""
    elsewhere, configured = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    bridge = BridgeProc.start(XSTREAMER, elsewhere)
    try:
        port = int(bridge.url.rstrip("/").rsplit(":", 1)[1])
        data = settings_for(script, bridge_port=port, daemon=configured, xstreamer=XSTREAMER)
        script.script_load(data)
        warned = wait_for(lambda: [m for lvl, m, _ in obspython.logs if lvl == obspython.LOG_WARNING and
                                   "not started by this script" in m], what="the mismatch warning")
        assert f"uses connect {elsewhere!r}, not {configured!r}" in warned[0]
        for _ in range(3):
            obspython.run_timers()
            time.sleep(0.3)
        assert len([m for _, m, _ in obspython.logs if "not started by this script" in m]) == 1, "warned once"
        assert script.cohost.bridge is None, "the script neither starts a second bridge nor kills this one"
        assert bridge.proc.popen.poll() is None and get_json(bridge.url + "health")["endpoint"] == elsewhere
        assert not any("co-host live" in m for _, m, _ in obspython.logs)
    finally:
        bridge.stop()
