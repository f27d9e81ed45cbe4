"""XStreamer co-host for OBS Studio: load this file from Tools -> Scripts (Python 3.11 scripting).

One persona, one portrait, one button: *Add / update the co-host* puts the AI co-host into the current scene as
a Browser Source ("XStreamer Co-host", bottom right, a fraction of the canvas height, transparent around the
portrait) and starts the `xstreamer obs` bridge, which starts and watches the daemon itself: no terminal. The
script also gives a text box with *Reply* and *Say this* (verbatim), hotkeys to interrupt and mute, and
optional Twitch chat as input (a command prefix, mods only, cooldowns).

OBS builds without obs-browser (Debian's obs-studio package) cannot show a Browser Source: OBS then returns a
placeholder source rather than nothing, so the script checks that the source type is registered
(`obs_source_get_display_name`, output flags) and says so in the script's properties and its log instead of
adding a broken source.

Threading: OBS calls the script_* functions and button callbacks on its UI thread, `obs.timer_add` timers on
its graphics thread and hotkeys on its hotkey thread. Only UI-thread code calls libobs (script_log aside):
timers and hotkeys only enqueue work. Nothing here blocks the UI thread: HTTP requests and starting/stopping
the bridge run in one worker thread fed by a queue, and unloading only signals (the bridge's stdin lifeline is
closed; a short-lived thread reaps it). Logging is quiet: the Script Log window pops open on warnings and
errors (OBS shows it for those levels), so only what needs the streamer's action is logged above "info".

A bridge that answers on the configured port but was started elsewhere (a terminal, another OBS) does not know
this script's token: the script says so and leaves it alone. A bridge the script started itself is restarted
when the settings change.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable

import obspython as obs

from xstreamer_obs_runtime import BridgeProcess, BridgeSpec, Host, Runtime, find_runtime

SOURCE_NAME = "XStreamer Co-host"
SOURCE_KIND = "browser_source"
OBS_SOURCE_VIDEO = 1                 # libobs' output flag of a source that draws video
ALIGN_RIGHT, ALIGN_BOTTOM = 2, 8     # OBS_ALIGN_* (macros, not exported to Python)
CHECK_INTERVAL_MS = 2000
BRIDGE_RESTART_S = 5.0               # start the bridge at most this often
HTTP_TIMEOUT_S = 2.0
DEFAULT_PORT = 8765                  # the bridge's default port (OBS's Python cannot import sdk.protocol)
DEFAULT_DAEMON = "tcp://127.0.0.1:7570"
PAGE_SIZE = 512                      # the Browser Source's page (the canvas scales 256 or 512 px frames to it)
HOTKEYS = (("xstreamer.interrupt", "XStreamer: interrupt the co-host", "/interrupt"),
           ("xstreamer.mute", "XStreamer: mute / unmute the co-host", "/mute"))
PAGE_CSS = "body { background-color: rgba(0, 0, 0, 0); margin: 0px auto; overflow: hidden; }"
NO_BROWSER = ("This OBS has no Browser Source (the obs-browser plugin is missing, e.g. Debian's obs-studio "
              "package): the co-host cannot be shown. Install OBS from obsproject.com or Flathub "
              "(com.obsproject.Studio), which include it.")
CORNERS = {"bottom-right": (ALIGN_BOTTOM | ALIGN_RIGHT), "bottom-left": (ALIGN_BOTTOM | 1),
           "top-right": (4 | ALIGN_RIGHT), "top-left": (4 | 1)}


def log(level: int, message: str) -> None:
    """Write to OBS's script log; silent in other threads once unloaded. LOG_WARNING and LOG_ERROR pop the
    Script Log window open: use them only for what needs the streamer's action."""
    if cohost.closing.is_set() and threading.current_thread() is not threading.main_thread():
        return
    obs.script_log(level, f"[xstreamer] {message}")


class CoHost:
    """All state of the script: settings, the worker thread, the bridge process and the hotkeys."""

    def __init__(self, host: Host | None = None) -> None:
        self.host = host or Host()
        self.settings: Any = None
        self.spec = BridgeSpec(port=DEFAULT_PORT, token="")
        self.command = ""
        self.size_pct = 40
        self.corner = "bottom-right"
        self.jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self.worker: threading.Thread | None = None
        self.bridge: BridgeProcess | None = None
        self.bridge_log = os.path.join(tempfile.gettempdir(), "xstreamer-obs-bridge.log")
        self.last_start = 0.0
        self.check_pending = threading.Event()
        self.health: dict | None = None
        self.status = "Press “Add / update the co-host” to start."
        self.status_level = "normal"         # "normal" | "warning" | "error"
        self.last_state = ""
        self.hotkeys: dict[str, int] = {}
        self.closing = threading.Event()          # set by script_unload: no new work, the worker ends
        self.lock = threading.Lock()              # guards `bridge` between the worker and unload
        self.wanted = False                       # setting "active": "Add / update" pressed, "Stop" not since

    # ---- settings (UI thread) -------------------------------------------------------------------------
    def read(self, settings: Any) -> None:
        self.settings = settings
        token = obs.obs_data_get_string(settings, "bridge_token")
        if len(token) < 32:
            token = secrets.token_urlsafe(24)
            obs.obs_data_set_string(settings, "bridge_token", token)
        get_s = lambda k: obs.obs_data_get_string(settings, k).strip()      # noqa: E731
        get_i = lambda k: int(obs.obs_data_get_int(settings, k))            # noqa: E731
        self.spec = BridgeSpec(
            port=get_i("bridge_port") or DEFAULT_PORT, token=token,
            start_daemon=obs.obs_data_get_bool(settings, "start_daemon"), model=get_s("model") or "default",
            connect=get_s("daemon") or DEFAULT_DAEMON, keys=get_s("keys"), persona=get_s("persona"),
            portrait=get_s("portrait"),
            twitch_channel=get_s("twitch_channel").lstrip("#"), twitch_nick=get_s("twitch_nick"),
            twitch_oauth=get_s("twitch_oauth"), chat_prefix=get_s("chat_prefix"),
            chat_mods_only=obs.obs_data_get_bool(settings, "chat_mods_only"),
            chat_user_cooldown=max(0, get_i("chat_user_cooldown")), chat_cooldown=max(0, get_i("chat_cooldown")))
        self.command = get_s("xstreamer")
        self.size_pct = min(100, max(5, get_i("size_pct") or 40))
        self.corner = get_s("corner") or "bottom-right"
        self.wanted = obs.obs_data_get_bool(settings, "active")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.spec.port}/"

    @property
    def url(self) -> str:
        """The Browser Source's URL: the page, with this script's token."""
        return f"{self.base}?token={self.spec.token}"

    def set_status(self, message: str, level: str = "normal") -> None:
        self.status, self.status_level = message, level

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
        HTTP_TIMEOUT_S) and exits without running queued ones; the bridge this script started has its lifeline
        closed now and is reaped (terminated, then killed, if it lingers) by a daemon thread."""
        with self.lock:
            self.closing.set()
            proc, self.bridge = self.bridge, None
        self.jobs.put(None)
        self.worker = None
        if proc is not None:
            proc.stop()

    # ---- HTTP to the bridge (worker thread only) -------------------------------------------------------
    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base.rstrip("/") + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              "X-XStreamer-Token": self.spec.token})
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
            log(obs.LOG_WARNING, f"{path}: the bridge at {self.base} does not answer ({exc}); is the co-host "
                f"started (Add / update the co-host)?")
            self.check_pending.clear()

    # ---- supervision (worker thread) ------------------------------------------------------------------
    def check(self) -> None:
        """Worker job: ask /health; start (or restart) the bridge when needed; log changes of state."""
        try:
            self._check()
        finally:
            self.check_pending.clear()

    def _check(self) -> None:
        if not self.wanted:
            return
        bridge = self.bridge
        if bridge is not None and bridge.poll() is None and bridge.spec != self.spec:
            self._state("restart", "settings changed: restarting the co-host", obs.LOG_INFO)
            self.stop_bridge()
            self.last_start = 0.0          # start the new one now, not after BRIDGE_RESTART_S
        try:
            self.health = self.request("GET", "/health")
        except (OSError, ValueError):
            self.health = None
        health = self.health
        if health is None:
            exited = self.bridge.poll() if self.bridge is not None else None
            if exited is not None:
                tail = self.bridge_log_tail()
                self._state(f"exited {exited}", f"the bridge exited with code {exited}: {tail}; restarting it "
                            f"every {BRIDGE_RESTART_S:g} s", obs.LOG_ERROR,
                            status=f"The co-host's bridge stopped (code {exited}): {tail}")
            elif self.bridge is None:
                self._state("starting", f"starting the co-host's bridge on port {self.spec.port}", obs.LOG_INFO,
                            status="Starting the co-host…")
            self.start_bridge()
        elif not health.get("authorized"):
            self._state("foreign", f"another program answers on port {self.spec.port} (an `xstreamer obs` "
                        f"started elsewhere, e.g. in a terminal): stop it, or change *Bridge port*",
                        obs.LOG_WARNING, status=f"Port {self.spec.port} is taken by another bridge: stop it or "
                        f"change Bridge port.")
        if health and health.get("authorized"):
            self._report(health)

    def _report(self, health: dict) -> None:
        own = health.get("daemon_process") or {}
        chat = health.get("chat")
        if health.get("daemon"):
            live = f"co-host live: session {health.get('session')} at {self.base}"
            if chat:
                live += f"; chat #{chat.get('channel')}: {chat.get('state')}"
            self._state("live", live, obs.LOG_INFO, status="The co-host is live." + (
                f" Chat #{chat.get('channel')}: {chat.get('state')}." if chat else ""))
            if chat and chat.get("state") == "failed":
                self._state("chat failed", f"Twitch chat: {chat.get('error')}", obs.LOG_WARNING,
                            status=f"Twitch chat: {chat.get('error')}")
        elif own.get("state") == "failed":
            self._state("daemon failed", f"the daemon did not start: {own.get('error')}", obs.LOG_ERROR,
                        status=f"The daemon did not start: {own.get('error')}")
        elif own:
            self._state("daemon starting", f"starting the daemon (model {own.get('model')}); this takes a while "
                        f"the first time", obs.LOG_INFO, status=f"Starting the co-host (model {own.get('model')})…")
        else:
            self._state("daemon", f"the daemon at {self.spec.connect} does not answer "
                        f"({health.get('error') or 'not connected'}); the bridge keeps retrying", obs.LOG_INFO,
                        status=f"Waiting for the daemon at {self.spec.connect}…")

    def bridge_log_tail(self) -> str:
        try:
            with open(self.bridge_log, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 2000))
                lines = f.read().decode("utf-8", "replace").strip().splitlines()
            return lines[-1] if lines else "(its log is empty)"
        except OSError:
            return f"(no log at {self.bridge_log})"

    def _state(self, state: str, message: str, level: int, status: str | None = None) -> None:
        """Log `message` once per change of `state`; show `status` in the properties (its colour follows
        `level`)."""
        if status is not None:
            self.set_status(status, {obs.LOG_ERROR: "error", obs.LOG_WARNING: "warning"}.get(level, "normal"))
        if state != self.last_state:
            log(level, message)
            self.last_state = state

    def runtime(self) -> Runtime | None:
        return find_runtime(self.command, __file__, self.host)

    def start_bridge(self) -> None:
        if self.bridge is not None and self.bridge.poll() is None:
            return  # ours, still starting
        if time.monotonic() - self.last_start < BRIDGE_RESTART_S:
            return
        self.last_start = time.monotonic()
        runtime = self.runtime()
        if runtime is None:
            self._state("no runtime", "cannot find xstreamer: set *xstreamer* to its virtual environment folder "
                        "(or its python / xstreamer command)", obs.LOG_ERROR,
                        status="xstreamer not found: set the xstreamer field to its virtual environment folder.")
            return
        spec = self.spec
        try:
            proc = BridgeProcess.start(runtime, spec, self.bridge_log, self.host)
        except OSError as exc:
            self.bridge = None
            self._state("cannot start", f"cannot start the bridge with {runtime.prefix[0]} ({exc}); set "
                        f"*xstreamer* to xstreamer's virtual environment folder", obs.LOG_ERROR,
                        status=f"Cannot start xstreamer ({exc}).")
            return
        with self.lock:
            if self.closing.is_set():       # unloaded meanwhile: this bridge is nobody's
                proc.stop()
                return
            self.bridge = proc
        if not self.last_state.startswith("exited"):   # not again every BRIDGE_RESTART_S while it keeps failing
            log(obs.LOG_INFO, f"started the bridge ({runtime.origin}): {' '.join(proc.argv)} "
                f"(log: {self.bridge_log})")

    def stop_bridge(self) -> None:
        """Worker thread: stop the bridge this script started and wait for it."""
        with self.lock:
            proc, self.bridge = self.bridge, None
        if proc is not None:
            proc.stop(wait=True)


cohost = CoHost()


# ---- the Browser Source (UI thread; libobs calls only, no I/O) -----------------------------------------
def browser_source_available() -> bool:
    """Whether this OBS can make a Browser Source (obs_source_create returns a placeholder when it cannot)."""
    return (obs.obs_source_get_display_name(SOURCE_KIND) is not None
            and bool(obs.obs_get_source_output_flags(SOURCE_KIND) & OBS_SOURCE_VIDEO))


def is_placeholder(source: Any) -> bool:
    """A source whose type OBS does not know (e.g. saved by an OBS that had obs-browser): it draws nothing."""
    return not obs.obs_source_get_output_flags(source) & OBS_SOURCE_VIDEO


def source_settings() -> Any:
    """A new obs_data with the Browser Source settings (the caller releases it)."""
    data = obs.obs_data_create()
    obs.obs_data_set_string(data, "url", cohost.url)
    obs.obs_data_set_bool(data, "is_local_file", False)
    obs.obs_data_set_int(data, "width", PAGE_SIZE)
    obs.obs_data_set_int(data, "height", PAGE_SIZE)
    obs.obs_data_set_bool(data, "reroute_audio", True)
    obs.obs_data_set_bool(data, "shutdown", False)
    obs.obs_data_set_bool(data, "restart_when_active", False)
    obs.obs_data_set_string(data, "css", PAGE_CSS)
    return data


def place(item: Any) -> tuple[float, float, float]:
    """Put a newly added co-host in the chosen corner, scaled to `size_pct` % of the canvas height (a margin
    of 2 % of it from the edges). Returns (x, y, size) in canvas pixels."""
    video = obs.obs_video_info()
    if not obs.obs_get_video_info(video):
        return (0.0, 0.0, 0.0)
    width, height = video.base_width, video.base_height
    size = round(height * cohost.size_pct / 100)
    margin = round(height * 0.02)
    align = CORNERS.get(cohost.corner, CORNERS["bottom-right"])
    bounds = obs.vec2()
    bounds.x, bounds.y = size, size
    obs.obs_sceneitem_set_bounds_type(item, obs.OBS_BOUNDS_SCALE_INNER)
    obs.obs_sceneitem_set_bounds_alignment(item, 0)
    obs.obs_sceneitem_set_bounds(item, bounds)
    obs.obs_sceneitem_set_alignment(item, align)
    pos = obs.vec2()
    pos.x = width - margin if align & ALIGN_RIGHT else margin
    pos.y = height - margin if align & ALIGN_BOTTOM else margin
    obs.obs_sceneitem_set_pos(item, pos)
    return (pos.x, pos.y, size)


def ensure_source() -> bool:
    """Create the co-host Browser Source, or update it, and make sure the current scene shows it (placed and
    scaled the first time it is added to a scene). False, with the reason said, when OBS cannot show it."""
    if not browser_source_available():
        log(obs.LOG_ERROR, NO_BROWSER)
        return False
    data = source_settings()
    source = obs.obs_get_source_by_name(SOURCE_NAME)
    try:
        if source is not None:
            if is_placeholder(source):
                log(obs.LOG_ERROR, f"'{SOURCE_NAME}' is a placeholder of a source type this OBS lacks: {NO_BROWSER}")
                return False
            obs.obs_source_update(source, data)
        else:
            source = obs.obs_source_create(SOURCE_KIND, SOURCE_NAME, data, None)
            if source is None or is_placeholder(source):
                log(obs.LOG_ERROR, NO_BROWSER)
                if source is not None:
                    obs.obs_source_remove(source)
                return False
        scene_source = obs.obs_frontend_get_current_scene()
        if scene_source is None:
            log(obs.LOG_WARNING, "no current scene: the source exists but was not added to a scene")
            return True
        try:
            scene = obs.obs_scene_from_source(scene_source)
            if obs.obs_scene_find_source(scene, SOURCE_NAME) is None:
                x, y, size = place(obs.obs_scene_add(scene, source))
                log(obs.LOG_INFO, f"'{SOURCE_NAME}' added at ({x:g}, {y:g}), {size:g} px tall ({cohost.corner})")
        finally:
            obs.obs_source_release(scene_source)
        log(obs.LOG_INFO, f"'{SOURCE_NAME}' shows {cohost.base}")
        return True
    finally:
        if source is not None:
            obs.obs_source_release(source)
        obs.obs_data_release(data)


def existing_source() -> str:
    """UI thread, at load: "none", "ok" or "placeholder" for a co-host source saved in the scene collection."""
    source = obs.obs_get_source_by_name(SOURCE_NAME)
    if source is None:
        return "none"
    try:
        return "placeholder" if is_placeholder(source) else "ok"
    finally:
        obs.obs_source_release(source)


def update_existing_source() -> None:
    """Settings changed: point an existing co-host source at the (new) bridge URL."""
    source = obs.obs_get_source_by_name(SOURCE_NAME)
    if source is None:
        return
    if is_placeholder(source):
        obs.obs_source_release(source)
        return
    data = source_settings()
    try:
        obs.obs_source_update(source, data)
    finally:
        obs.obs_data_release(data)
        obs.obs_source_release(source)


# ---- callbacks -----------------------------------------------------------------------------------------
def on_add_source(props: Any, prop: Any) -> bool:
    """Start the co-host (bridge + daemon) and show it in the current scene. Without a Browser Source in this OBS
    the co-host still starts (its page URL is in the status line) and the script says why it is not shown."""
    cohost.wanted = True
    if cohost.settings is not None:
        obs.obs_data_set_bool(cohost.settings, "active", True)
    if cohost.last_state in ("", "stopped"):
        cohost.set_status("Starting the co-host…")
    ensure_source()
    request_check()
    return True      # refresh the properties view (its status line)


def on_stop(props: Any, prop: Any) -> bool:
    """Stop the co-host (bridge and daemon); the source stays in the scene, transparent."""
    cohost.wanted = False
    if cohost.settings is not None:
        obs.obs_data_set_bool(cohost.settings, "active", False)
    cohost.submit(cohost.stop_bridge)
    cohost.set_status("Stopped. Press “Add / update the co-host” to start it again.")
    cohost.last_state = "stopped"
    log(obs.LOG_INFO, "co-host stopped")
    return True


def _send(path: str) -> Callable[[Any, Any], bool]:
    def callback(props: Any, prop: Any) -> bool:
        text = obs.obs_data_get_string(cohost.settings, "say_text").strip() if cohost.settings else ""
        if not text:
            log(obs.LOG_INFO, "nothing to say: type a sentence in the text box first")
            return False
        cohost.submit(lambda: cohost.post(path, {"text": text}))
        obs.obs_data_set_string(cohost.settings, "say_text", "")
        return True  # refresh the properties view (the text box is now empty)
    return callback


on_say = _send("/say")          # the co-host answers it
on_speak = _send("/speak")      # the co-host says it word for word


def on_interrupt(props: Any, prop: Any) -> bool:
    cohost.submit(lambda: cohost.post("/interrupt"))
    return False


def on_mute(props: Any, prop: Any) -> bool:
    cohost.submit(lambda: cohost.post("/mute"))
    return False


def on_refresh(props: Any, prop: Any) -> bool:
    return True


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
    return ("<b>XStreamer co-host</b><br>An AI co-host in your scene: pick a persona and a portrait, press "
            "<i>Add / update the co-host</i>. The script starts xstreamer by itself.")


def script_defaults(settings: Any) -> None:
    obs.obs_data_set_default_bool(settings, "start_daemon", True)
    obs.obs_data_set_default_string(settings, "model", "default")
    obs.obs_data_set_default_string(settings, "daemon", DEFAULT_DAEMON)
    obs.obs_data_set_default_int(settings, "bridge_port", DEFAULT_PORT)
    obs.obs_data_set_default_int(settings, "size_pct", 40)
    obs.obs_data_set_default_string(settings, "corner", "bottom-right")
    obs.obs_data_set_default_string(settings, "chat_prefix", "!ask")
    obs.obs_data_set_default_int(settings, "chat_user_cooldown", 30)
    obs.obs_data_set_default_int(settings, "chat_cooldown", 10)


def script_properties() -> Any:
    props = obs.obs_properties_create()
    text, level = cohost.status, cohost.status_level
    if not browser_source_available():       # said first, whatever the co-host's own state
        text, level = f"{NO_BROWSER} The co-host's page: {cohost.url} — {text}", "error"
    if cohost.settings is not None:
        obs.obs_data_set_string(cohost.settings, "status", text)
    status = obs.obs_properties_add_text(props, "status", "Status", obs.OBS_TEXT_INFO)
    obs.obs_property_text_set_info_type(status, {"warning": obs.OBS_TEXT_INFO_WARNING,
                                                 "error": obs.OBS_TEXT_INFO_ERROR}.get(level,
                                                                                       obs.OBS_TEXT_INFO_NORMAL))
    obs.obs_properties_add_button(props, "refresh", "Refresh status", on_refresh)
    obs.obs_properties_add_path(props, "persona", "Persona (JSON)", obs.OBS_PATH_FILE,
                                "Persona (*.json);;All files (*.*)", None)
    obs.obs_properties_add_path(props, "portrait", "Portrait image", obs.OBS_PATH_FILE,
                                "Images (*.png *.jpg *.jpeg *.webp);;All files (*.*)", None)
    obs.obs_properties_add_button(props, "add_source", "Add / update the co-host", on_add_source)
    obs.obs_properties_add_button(props, "stop", "Stop the co-host", on_stop)
    obs.obs_properties_add_text(props, "say_text", "Text", obs.OBS_TEXT_DEFAULT)
    obs.obs_properties_add_button(props, "say", "Reply to this", on_say)
    obs.obs_properties_add_button(props, "speak", "Say this (verbatim)", on_speak)
    obs.obs_properties_add_button(props, "interrupt", "Interrupt", on_interrupt)
    obs.obs_properties_add_button(props, "mute", "Mute / unmute", on_mute)

    chat = obs.obs_properties_create()
    obs.obs_properties_add_text(chat, "twitch_channel", "Twitch channel (empty: no chat)", obs.OBS_TEXT_DEFAULT)
    obs.obs_properties_add_text(chat, "chat_prefix", "Command (empty: every line)", obs.OBS_TEXT_DEFAULT)
    obs.obs_properties_add_bool(chat, "chat_mods_only", "Moderators only")
    obs.obs_properties_add_int(chat, "chat_user_cooldown", "Per-viewer cooldown (s)", 0, 3600, 1)
    obs.obs_properties_add_int(chat, "chat_cooldown", "Cooldown between answers (s)", 0, 3600, 1)
    obs.obs_properties_add_text(chat, "twitch_nick", "Bot login (empty: read anonymously)", obs.OBS_TEXT_DEFAULT)
    obs.obs_properties_add_text(chat, "twitch_oauth", "Bot OAuth token", obs.OBS_TEXT_PASSWORD)
    obs.obs_properties_add_group(props, "chat", "Viewer chat (Twitch)", obs.OBS_GROUP_NORMAL, chat)

    look = obs.obs_properties_create()
    obs.obs_properties_add_int(look, "size_pct", "Height (% of the canvas)", 5, 100, 1)
    corner = obs.obs_properties_add_list(look, "corner", "Corner", obs.OBS_COMBO_TYPE_LIST,
                                         obs.OBS_COMBO_FORMAT_STRING)
    for name in CORNERS:
        obs.obs_property_list_add_string(corner, name.replace("-", " "), name)
    obs.obs_properties_add_group(props, "look", "Placement (when first added to a scene)", obs.OBS_GROUP_NORMAL,
                                 look)

    advanced = obs.obs_properties_create()
    obs.obs_properties_add_bool(advanced, "start_daemon", "Start the daemon myself")
    obs.obs_properties_add_text(advanced, "model", "Model preset", obs.OBS_TEXT_DEFAULT)
    obs.obs_properties_add_text(advanced, "daemon", "Daemon address (when not started here)", obs.OBS_TEXT_DEFAULT)
    obs.obs_properties_add_path(advanced, "keys", "CURVE keys folder (a daemon off this PC)", obs.OBS_PATH_DIRECTORY,
                                "", None)
    obs.obs_properties_add_int(advanced, "bridge_port", "Bridge port", 1024, 65535, 1)
    obs.obs_properties_add_path(advanced, "xstreamer", "xstreamer (venv folder; empty: find it)",
                                obs.OBS_PATH_DIRECTORY, "", None)
    obs.obs_properties_add_group(props, "advanced", "Advanced", obs.OBS_GROUP_NORMAL, advanced)
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
    if existing_source() == "placeholder":    # the collection has a co-host this OBS cannot show: say so now
        log(obs.LOG_ERROR, f"'{SOURCE_NAME}' cannot be shown: {NO_BROWSER}")
    obs.timer_add(request_check, CHECK_INTERVAL_MS)
    request_check()
    log(obs.LOG_INFO, f"loaded (Python {sys.version.split()[0]}); bridge {cohost.base}, "
        + (f"daemon started here (model {cohost.spec.model})" if cohost.spec.start_daemon
           else f"daemon {cohost.spec.connect}"))


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
