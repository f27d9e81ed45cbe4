"""XStreamer co-host for OBS Studio: load this file from Tools -> Scripts (Python 3.11 scripting).

It adds the AI co-host to the current scene as a Browser Source ("XStreamer Co-host") pointed at the
`xstreamer obs` bridge, with "Control audio via OBS" on so the voice lands in OBS's mixer; it starts the bridge
when it does not answer, offers a text box to talk to the co-host and hotkeys to interrupt and mute it.

Threading: OBS calls the script_* functions and button callbacks on its UI thread, `obs.timer_add` timers on
its graphics thread and hotkeys on its hotkey thread. Only UI-thread code calls libobs (script_log aside):
timers and hotkeys only enqueue work. Nothing here blocks the UI thread: HTTP requests and starting/stopping
the bridge run in one worker thread fed by a queue, and unloading only signals (the worker ends after its
current job; the bridge it started gets SIGTERM and is reaped by a short-lived thread). A missing daemon or
bridge is logged (once per change of state) and retried; no exception escapes into OBS.

A bridge that answers on the configured port but was started elsewhere (another OBS, a terminal) is used as it
is; if its /health shows another daemon, persona or portrait than the settings, the script says so in the log.
A bridge the script started itself is restarted when those settings change.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable

import obspython as obs

SOURCE_NAME = "XStreamer Co-host"
SOURCE_KIND = "browser_source"
CHECK_INTERVAL_MS = 2000
BRIDGE_RESTART_S = 5.0          # start the bridge at most this often
HTTP_TIMEOUT_S = 2.0
HOTKEYS = (("xstreamer.interrupt", "XStreamer: interrupt the co-host", "/interrupt"),
           ("xstreamer.mute", "XStreamer: mute / unmute the co-host", "/mute"))
PAGE_CSS = "body { background-color: rgba(0, 0, 0, 0); margin: 0px auto; overflow: hidden; }"


class CoHost:
    """All state of the script: settings, the worker thread, the bridge process and the hotkeys."""

    def __init__(self) -> None:
        self.settings: Any = None
        self.daemon = "tcp://127.0.0.1:7570"
        self.persona = ""
        self.portrait = ""
        self.port = 8765
        self.width = 256
        self.height = 256
        self.command = ""
        self.jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self.worker: threading.Thread | None = None
        self.bridge: subprocess.Popen | None = None
        self.bridge_argv: list[str] = []
        self.bridge_log = os.path.join(tempfile.gettempdir(), "xstreamer-obs-bridge.log")
        self.last_start = 0.0
        self.check_pending = threading.Event()
        self.health: dict | None = None
        self.last_state = ""
        self.hotkeys: dict[str, int] = {}
        self.closing = threading.Event()          # set by script_unload: no new work, the worker ends
        self.lock = threading.Lock()              # guards `bridge` between the worker and unload

    # ---- settings ----------------------------------------------------------------------------------
    def read(self, settings: Any) -> None:
        self.settings = settings
        self.daemon = obs.obs_data_get_string(settings, "daemon").strip() or "tcp://127.0.0.1:7570"
        self.persona = obs.obs_data_get_string(settings, "persona").strip()
        self.portrait = obs.obs_data_get_string(settings, "portrait").strip()
        self.port = int(obs.obs_data_get_int(settings, "bridge_port")) or 8765
        self.width = int(obs.obs_data_get_int(settings, "width")) or 256
        self.height = int(obs.obs_data_get_int(settings, "height")) or 256
        self.command = obs.obs_data_get_string(settings, "xstreamer").strip()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def wanted_options(self) -> dict:
        """What /health's "options" of a bridge matching the settings say (bridge.py resolves the paths)."""
        def real(path: str) -> str | None:
            return os.path.realpath(os.path.expanduser(path)) if path else None
        return {"connect": self.daemon, "persona": real(self.persona), "portrait": real(self.portrait)}

    def wanted_argv(self) -> list[str]:
        exe = self.command or shutil.which("xstreamer") or "xstreamer"
        argv = [exe, "obs", "--connect", self.daemon, "--port", str(self.port)]
        if self.persona:
            argv += ["--persona", self.persona]
        if self.portrait:
            argv += ["--portrait", self.portrait]
        return argv

    # ---- the worker thread ---------------------------------------------------------------------------
    def start_worker(self) -> None:
        if self.worker is None or not self.worker.is_alive():
            self.worker = threading.Thread(target=self._work, name="xstreamer-obs", daemon=True)
            self.worker.start()

    def _work(self) -> None:
        while not self.closing.is_set():
            job = self.jobs.get()
            if job is None or self.closing.is_set():
                return
            try:
                job()
            except Exception as exc:  # never let the worker die: log and go on
                log(obs.LOG_WARNING, f"{type(exc).__name__}: {exc}")

    def submit(self, job: Callable[[], None]) -> None:
        if self.closing.is_set():
            return
        self.start_worker()
        self.jobs.put(job)

    def shutdown(self) -> None:
        """script_unload: returns at once. The worker finishes its current job (an HTTP request ends within
        HTTP_TIMEOUT_S) and exits without running queued ones; the bridge this script started gets SIGTERM now
        and is reaped, or killed after 3 s, by a daemon thread."""
        with self.lock:
            self.closing.set()
            proc, self.bridge = self.bridge, None
        self.jobs.put(None)
        self.worker = None
        if proc is not None:
            end_process(proc)

    # ---- HTTP to the bridge (worker thread only) -------------------------------------------------------
    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url.rstrip("/") + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
            return json.loads(resp.read() or b"{}")

    def post(self, path: str, body: dict | None = None) -> None:
        """Worker job: POST to the bridge; failures are logged, never raised."""
        try:
            answer = self.request("POST", path, body if body is not None else {})
            log(obs.LOG_INFO, f"{path}: {answer}")
        except urllib.error.HTTPError as exc:
            log(obs.LOG_WARNING, f"{path} refused by the bridge: {exc.code} {exc.read()[:200]!r}")
        except (OSError, ValueError) as exc:
            log(obs.LOG_WARNING, f"{path}: the bridge at {self.url} does not answer ({exc}); retrying")
            self.check_pending.clear()

    # ---- supervision (worker thread) ------------------------------------------------------------------
    def check(self) -> None:
        """Worker job: ask /health; start (or restart) the bridge when needed; log changes of state."""
        try:
            self._check()
        finally:
            self.check_pending.clear()

    def _check(self) -> None:
        if self.bridge is not None and self.bridge.poll() is None and self.bridge_argv != self.wanted_argv():
            log(obs.LOG_INFO, "settings changed: restarting the bridge")
            self.stop_bridge()
            self.last_start = 0.0          # start the new one now, not after BRIDGE_RESTART_S
        try:
            self.health = self.request("GET", "/health")
        except (OSError, ValueError):
            self.health = None
        if self.health is None:
            exited = self.bridge.poll() if self.bridge is not None else None
            if exited is not None:
                self._state(f"exited {exited}", f"the bridge exited with code {exited}: {self.bridge_log_tail()}; "
                            f"restarting it every {BRIDGE_RESTART_S:g} s", obs.LOG_ERROR)
            else:
                self._state("bridge", f"the bridge at {self.url} does not answer; starting it", obs.LOG_WARNING)
            self.start_bridge()
        elif differs := self.mismatch(self.health):
            self._state("mismatch", f"the bridge at {self.url} was not started by this script and "
                        f"{differs}: stop that bridge, or change *Bridge port* to let the "
                        f"script start its own", obs.LOG_WARNING)
        elif not self.health.get("daemon"):
            self._state("daemon", f"the daemon at {self.daemon} does not answer "
                        f"({self.health.get('error') or 'not connected'}); the bridge keeps retrying",
                        obs.LOG_WARNING)
        else:
            self._state("live", f"co-host live: session {self.health.get('session')} at {self.url}",
                        obs.LOG_INFO)

    def mismatch(self, health: dict) -> str:
        """How a bridge started elsewhere differs from the settings ("" when it matches, or is ours)."""
        if self.bridge is not None and self.bridge.poll() is None:
            return ""   # ours: restarted by _check when the settings change
        options = health.get("options") or {"connect": health.get("endpoint")}
        wanted = self.wanted_options()
        differ = [f"uses {name} {options[name]!r}, not {wanted[name]!r}"
                  for name in ("connect", "persona", "portrait")
                  if name in options and options[name] != wanted[name]]
        return "; ".join(differ)

    def bridge_log_tail(self) -> str:
        try:
            with open(self.bridge_log, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 2000))
                lines = f.read().decode("utf-8", "replace").strip().splitlines()
            return lines[-1] if lines else "(its log is empty)"
        except OSError:
            return f"(no log at {self.bridge_log})"

    def _state(self, state: str, message: str, level: int) -> None:
        if state != self.last_state:
            log(level, message)
            self.last_state = state

    def start_bridge(self) -> None:
        if self.bridge is not None and self.bridge.poll() is None:
            return  # ours, still starting
        if time.monotonic() - self.last_start < BRIDGE_RESTART_S:
            return
        self.last_start = time.monotonic()
        argv = self.wanted_argv()
        try:
            with open(self.bridge_log, "ab") as out:
                proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        except OSError as exc:
            self.bridge = None
            log(obs.LOG_ERROR, f"cannot start the bridge ({exc}); set the path of the `xstreamer` command "
                f"in the script settings")
            return
        with self.lock:
            if self.closing.is_set():       # unloaded meanwhile: this bridge is nobody's
                end_process(proc)
                return
            self.bridge, self.bridge_argv = proc, argv
        if not self.last_state.startswith("exited"):   # not again every BRIDGE_RESTART_S while it keeps failing
            log(obs.LOG_INFO, f"started the bridge: {' '.join(argv)} (log: {self.bridge_log})")

    def stop_bridge(self) -> None:
        """Worker thread: stop the bridge this script started and wait for it (3 s, then SIGKILL)."""
        with self.lock:
            proc, self.bridge = self.bridge, None
        if proc is not None:
            end_process(proc, wait=True)


def end_process(proc: subprocess.Popen, wait: bool = False) -> None:
    """SIGTERM `proc`; it is waited for (3 s, then SIGKILL) here when `wait`, else by a daemon thread."""
    if proc.poll() is not None:
        return
    proc.terminate()

    def reap() -> None:
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    if wait:
        reap()
    else:
        threading.Thread(target=reap, name="xstreamer-obs-reaper", daemon=True).start()


cohost = CoHost()


def log(level: int, message: str) -> None:
    """Write to OBS's script log (Tools -> Scripts -> Script Log); silent in other threads once unloaded."""
    if cohost.closing.is_set() and threading.current_thread() is not threading.main_thread():
        return
    obs.script_log(level, f"[xstreamer] {message}")


# ---- the Browser Source (UI thread; libobs calls only, no I/O) -----------------------------------------
def source_settings() -> Any:
    """A new obs_data with the Browser Source settings (the caller releases it)."""
    data = obs.obs_data_create()
    obs.obs_data_set_string(data, "url", cohost.url)
    obs.obs_data_set_bool(data, "is_local_file", False)
    obs.obs_data_set_int(data, "width", cohost.width)
    obs.obs_data_set_int(data, "height", cohost.height)
    obs.obs_data_set_bool(data, "reroute_audio", True)
    obs.obs_data_set_bool(data, "shutdown", False)
    obs.obs_data_set_bool(data, "restart_when_active", False)
    obs.obs_data_set_string(data, "css", PAGE_CSS)
    return data


def ensure_source() -> bool:
    """Create the co-host Browser Source, or update it, and make sure the current scene shows it."""
    data = source_settings()
    source = obs.obs_get_source_by_name(SOURCE_NAME)
    try:
        if source is not None:
            obs.obs_source_update(source, data)
        else:
            source = obs.obs_source_create(SOURCE_KIND, SOURCE_NAME, data, None)
            if source is None:
                log(obs.LOG_ERROR, "OBS could not create a Browser Source (is obs-browser installed?)")
                return False
        scene_source = obs.obs_frontend_get_current_scene()
        if scene_source is None:
            log(obs.LOG_WARNING, "no current scene: the source exists but was not added to a scene")
            return True
        try:
            scene = obs.obs_scene_from_source(scene_source)
            if obs.obs_scene_find_source(scene, SOURCE_NAME) is None:
                obs.obs_scene_add(scene, source)
        finally:
            obs.obs_source_release(scene_source)
        log(obs.LOG_INFO, f"'{SOURCE_NAME}' shows {cohost.url} ({cohost.width}x{cohost.height})")
        return True
    finally:
        if source is not None:
            obs.obs_source_release(source)
        obs.obs_data_release(data)


def update_existing_source() -> None:
    """Settings changed: point an existing co-host source at the (new) bridge URL and size."""
    source = obs.obs_get_source_by_name(SOURCE_NAME)
    if source is None:
        return
    data = source_settings()
    try:
        obs.obs_source_update(source, data)
    finally:
        obs.obs_data_release(data)
        obs.obs_source_release(source)


# ---- callbacks -----------------------------------------------------------------------------------------
def on_add_source(props: Any, prop: Any) -> bool:
    ensure_source()
    request_check()
    return False


def on_say(props: Any, prop: Any) -> bool:
    text = obs.obs_data_get_string(cohost.settings, "say_text").strip() if cohost.settings else ""
    if not text:
        log(obs.LOG_INFO, "nothing to say: type a sentence in the text box first")
        return False
    cohost.submit(lambda: cohost.post("/say", {"text": text}))
    obs.obs_data_set_string(cohost.settings, "say_text", "")
    return True  # refresh the properties view (the text box is now empty)


def on_interrupt(props: Any, prop: Any) -> bool:
    cohost.submit(lambda: cohost.post("/interrupt"))
    return False


def on_mute(props: Any, prop: Any) -> bool:
    cohost.submit(lambda: cohost.post("/mute"))
    return False


def hotkey_callback(path: str) -> Callable[[bool], None]:
    def callback(pressed: bool) -> None:
        if pressed:
            cohost.submit(lambda: cohost.post(path))
    return callback


def request_check() -> None:
    """Enqueue one /health check unless one is already waiting (timer callback; never blocks)."""
    if not cohost.check_pending.is_set():
        cohost.check_pending.set()
        cohost.submit(cohost.check)


# ---- the OBS script API --------------------------------------------------------------------------------
def script_description() -> str:
    return ("<b>XStreamer co-host</b><br>Adds the AI co-host to the current scene as a Browser Source fed by "
            "the local <code>xstreamer</code> daemon. Start the daemon with <code>xstreamer serve</code>, "
            "then press <i>Add / update the co-host source</i>.")


def script_defaults(settings: Any) -> None:
    obs.obs_data_set_default_string(settings, "daemon", "tcp://127.0.0.1:7570")
    obs.obs_data_set_default_int(settings, "bridge_port", 8765)
    obs.obs_data_set_default_int(settings, "width", 256)
    obs.obs_data_set_default_int(settings, "height", 256)
    obs.obs_data_set_default_string(settings, "xstreamer", shutil.which("xstreamer") or "")


def script_properties() -> Any:
    props = obs.obs_properties_create()
    obs.obs_properties_add_text(props, "daemon", "Daemon address", obs.OBS_TEXT_DEFAULT)
    obs.obs_properties_add_path(props, "persona", "Persona (JSON)", obs.OBS_PATH_FILE,
                                "Persona (*.json);;All files (*.*)", None)
    obs.obs_properties_add_path(props, "portrait", "Portrait image", obs.OBS_PATH_FILE,
                                "Images (*.png *.jpg *.jpeg);;All files (*.*)", None)
    obs.obs_properties_add_int(props, "bridge_port", "Bridge port", 1024, 65535, 1)
    obs.obs_properties_add_int(props, "width", "Width", 64, 4096, 1)
    obs.obs_properties_add_int(props, "height", "Height", 64, 4096, 1)
    obs.obs_properties_add_path(props, "xstreamer", "xstreamer command", obs.OBS_PATH_FILE, "", None)
    obs.obs_properties_add_button(props, "add_source", "Add / update the co-host source", on_add_source)
    obs.obs_properties_add_text(props, "say_text", "Say to the co-host", obs.OBS_TEXT_DEFAULT)
    obs.obs_properties_add_button(props, "say", "Send", on_say)
    obs.obs_properties_add_button(props, "interrupt", "Interrupt", on_interrupt)
    obs.obs_properties_add_button(props, "mute", "Mute / unmute", on_mute)
    return props


def script_update(settings: Any) -> None:
    cohost.read(settings)
    update_existing_source()
    request_check()


def script_load(settings: Any) -> None:
    cohost.read(settings)
    for name, description, path in HOTKEYS:
        hotkey_id = obs.obs_hotkey_register_frontend(name, description, hotkey_callback(path))
        cohost.hotkeys[name] = hotkey_id
        saved = obs.obs_data_get_array(settings, name)
        obs.obs_hotkey_load(hotkey_id, saved)
        obs.obs_data_array_release(saved)
    obs.timer_add(request_check, CHECK_INTERVAL_MS)
    request_check()
    log(obs.LOG_INFO, f"loaded (Python {sys.version.split()[0]}); bridge {cohost.url}, daemon {cohost.daemon}")


def script_save(settings: Any) -> None:
    for name, hotkey_id in cohost.hotkeys.items():
        saved = obs.obs_hotkey_save(hotkey_id)
        obs.obs_data_set_array(settings, name, saved)
        obs.obs_data_array_release(saved)


def script_unload() -> None:
    """Never blocks OBS: signals the worker and the bridge, waits for neither (see CoHost.shutdown)."""
    obs.timer_remove(request_check)
    cohost.hotkeys.clear()  # OBS unregisters a script's frontend hotkeys itself when it unloads the script
    cohost.shutdown()
