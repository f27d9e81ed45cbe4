"""A faithful fake of OBS Studio's `obspython` module (the subset the xstreamer OBS script uses).

Behaviour follows libobs / obs-frontend-api as documented (docs.obsproject.com, OBS 29):
* obs_data: `obs_data_create` returns a new reference; getters return the user value, else the default set by
  `obs_data_set_default_*`, else "" / 0 / False; `obs_data_get_array` returns a new reference or None.
* sources: `obs_source_create` and `obs_get_source_by_name` return new references the caller must release;
  `obs_source_create` stores its own copy of the settings; `obs_source_update` applies settings on top of the
  source's settings (like `obs_data_apply`); *_release functions accept None.
* scenes: `obs_frontend_get_current_scene` returns a new reference to the scene's source;
  `obs_scene_from_source` borrows; `obs_scene_find_source` returns a borrowed item or None; `obs_scene_add`
  adds an item (the scene holds a reference to the source) and returns it.
* source types: `obs_source_get_display_name(id)` is None and `obs_get_source_output_flags(id)` 0 for a type no
  plugin registered; `obs_source_create` of such a type still returns a source (libobs logs "Source ID '%s' not
  found" and makes a placeholder whose output flags are 0), as OBS 29 does (checked under Xvfb). `reset(
  browser=False)` is an OBS without obs-browser (Debian's package).
* scene items keep their transform (`obs_sceneitem_set_pos/alignment/bounds/bounds_type`); `obs_get_video_info`
  fills an `obs_video_info` with the canvas size (`canvas`, 1280x720 by default).
* hotkeys, timers, properties and `script_log` record what the script did for tests to inspect.
* threads, as in OBS 29 (checked with a probe script under Xvfb): script_* functions and property buttons run
  on the UI thread (the test's main thread here); `timer_add` callbacks run on the graphics thread
  (`run_timers` calls them on a thread named "obs-graphics"), hotkey callbacks on the hotkey thread
  (`press_hotkey`: "obs-hotkey"; OBS also calls them on the UI thread when its window has the focus).
Every call is recorded in `calls` as (function name, thread name); `off_ui_thread()` lists the calls other than
`script_log` made outside the UI thread. `reset()` restores a fresh OBS.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

LOG_ERROR, LOG_WARNING, LOG_INFO, LOG_DEBUG = 100, 200, 300, 400
OBS_TEXT_DEFAULT, OBS_TEXT_PASSWORD, OBS_TEXT_MULTILINE, OBS_TEXT_INFO = 0, 1, 2, 3
OBS_TEXT_INFO_NORMAL, OBS_TEXT_INFO_WARNING, OBS_TEXT_INFO_ERROR = 0, 1, 2
OBS_PATH_FILE, OBS_PATH_FILE_SAVE, OBS_PATH_DIRECTORY = 0, 1, 2
OBS_COMBO_TYPE_EDITABLE, OBS_COMBO_TYPE_LIST = 1, 2
OBS_COMBO_FORMAT_INT, OBS_COMBO_FORMAT_FLOAT, OBS_COMBO_FORMAT_STRING = 1, 2, 3
OBS_GROUP_NORMAL, OBS_GROUP_CHECKABLE = 1, 2
OBS_BOUNDS_NONE, OBS_BOUNDS_STRETCH, OBS_BOUNDS_SCALE_INNER = 0, 1, 2
OBS_INVALID_HOTKEY_ID = 2**64 - 1
OBS_SOURCE_VIDEO, OBS_SOURCE_AUDIO, OBS_SOURCE_ASYNC = 1, 2, 4
# output flags OBS 29 reports for these types (obs_get_source_output_flags, probed under Xvfb; browser_source's
# from obs-browser's source info: video | audio | custom draw | interaction | do not duplicate | srgb)
BROWSER_FLAGS = 0x1 | 0x2 | 0x8 | 0x20 | 0x200 | 0x8000
SOURCE_TYPES = {"browser_source": ("Browser", BROWSER_FLAGS), "color_source_v3": ("Color Source", 32777),
                "image_source": ("Image", 32769), "scene": ("Scene", 0x1 | 0x8)}

calls: list[tuple[str, str]] = []
logs: list[tuple[int, str, str]] = []          # (level, message, thread name)
created: list["_Ref"] = []                      # every obs_data / obs_data_array the script created
sources: dict[str, "Source"] = {}
timers: list[tuple[Callable[[], None], int]] = []
hotkeys: dict[int, dict] = {}
registered: dict[str, tuple[str, int]] = {}
canvas = (1280, 720)
current_scene: "Source | None" = None
_lock = threading.Lock()


def _record(name: str) -> None:
    with _lock:
        calls.append((name, threading.current_thread().name))


def off_ui_thread() -> list[tuple[str, str]]:
    """Test helper: every recorded libobs / frontend call other than script_log not made on the UI thread."""
    ui = threading.main_thread().name
    with _lock:
        return [(name, thread) for name, thread in calls if thread != ui and name != "script_log"]


def _on_thread(name: str, fn: Callable[[], None]) -> None:
    """Run `fn` on a thread called `name` and wait for it; its exception is re-raised here."""
    error: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            error.append(exc)

    thread = threading.Thread(target=run, name=name)
    thread.start()
    thread.join()
    if error:
        raise error[0]


class _Ref:
    def __init__(self) -> None:
        self.refs = 1

    def addref(self) -> None:
        self.refs += 1

    def release(self) -> None:
        if self.refs <= 0:
            raise RuntimeError(f"{type(self).__name__} released more often than referenced")
        self.refs -= 1


class Data(_Ref):
    """obs_data_t."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, Any] = {}
        self.defaults: dict[str, Any] = {}

    def get(self, name: str, zero: Any) -> Any:
        return self.values.get(name, self.defaults.get(name, zero))


class DataArray(_Ref):
    """obs_data_array_t."""

    def __init__(self, items: list | None = None) -> None:
        super().__init__()
        self.items = list(items or [])


class Source(_Ref):
    """obs_source_t (a scene is a source of kind "scene" with items)."""

    def __init__(self, kind: str, name: str, settings: Data | None) -> None:
        super().__init__()
        self.kind, self.name = kind, name
        self.flags = registered.get(kind, ("", 0))[1]       # 0: a placeholder of an unknown type
        self.removed = False
        self.settings = Data()
        if settings is not None:
            self.settings.values.update(settings.values)
        self.items: list[SceneItem] = []
        self.updates = 0


class SceneItem:
    def __init__(self, scene: Source, source: Source) -> None:
        self.scene, self.source = scene, source
        self.pos = (0.0, 0.0)
        self.alignment = 4 | 1                 # OBS_ALIGN_TOP | OBS_ALIGN_LEFT
        self.bounds = (0.0, 0.0)
        self.bounds_type = OBS_BOUNDS_NONE
        self.bounds_alignment = 0


class vec2:  # noqa: N801 - the SWIG name
    def __init__(self) -> None:
        self.x = 0.0
        self.y = 0.0


class obs_video_info:  # noqa: N801 - the SWIG name
    def __init__(self) -> None:
        self.base_width = 0
        self.base_height = 0


class Properties:
    """obs_properties_t: an ordered list of (kind, name, description, extra)."""

    def __init__(self) -> None:
        self.items: list[dict] = []

    def add(self, **item: Any) -> dict:
        if any(p["name"] == item["name"] for p in self.all_items()):
            raise RuntimeError(f"property {item['name']!r} added twice")
        self.items.append(item)
        return item

    def all_items(self) -> list[dict]:
        """Every property, those of groups included."""
        out = []
        for p in self.items:
            out.append(p)
            if p["type"] == "group":
                out.extend(p["content"].all_items())
        return out


def reset(scene_name: str = "Scene", browser: bool = True, size: tuple[int, int] = (1280, 720)) -> None:
    """A fresh OBS with one scene, current; `browser=False`: without obs-browser."""
    global current_scene, canvas
    calls.clear(), logs.clear(), sources.clear(), timers.clear(), hotkeys.clear(), created.clear()
    registered.clear()
    registered.update({k: v for k, v in SOURCE_TYPES.items() if browser or k != "browser_source"})
    canvas = size
    current_scene = Source("scene", scene_name, None)
    sources[scene_name] = current_scene


# ---- obs_data --------------------------------------------------------------------------------------
def obs_data_create() -> Data:
    _record("obs_data_create")
    data = Data()
    created.append(data)
    return data


def obs_data_create_from_json(text: str) -> Data:
    import json
    _record("obs_data_create_from_json")
    data = Data()
    data.values.update(json.loads(text))
    created.append(data)
    return data


def obs_data_release(data: Data | None) -> None:
    _record("obs_data_release")
    if data is not None:
        data.release()


def _setter(name: str, typ: type) -> Callable:
    def set_value(data: Data, key: str, value: Any) -> None:
        _record(name)
        if not isinstance(value, typ):
            raise TypeError(f"{name}: {key} expects {typ.__name__}, got {type(value).__name__}")
        data.values[key] = value
    return set_value


def _default_setter(name: str, typ: type) -> Callable:
    def set_default(data: Data, key: str, value: Any) -> None:
        _record(name)
        if not isinstance(value, typ):
            raise TypeError(f"{name}: {key} expects {typ.__name__}, got {type(value).__name__}")
        data.defaults[key] = value
    return set_default


def _getter(name: str, zero: Any) -> Callable:
    def get_value(data: Data, key: str) -> Any:
        _record(name)
        return data.get(key, zero)
    return get_value


obs_data_set_string = _setter("obs_data_set_string", str)
obs_data_set_int = _setter("obs_data_set_int", int)
obs_data_set_bool = _setter("obs_data_set_bool", bool)
obs_data_set_default_string = _default_setter("obs_data_set_default_string", str)
obs_data_set_default_int = _default_setter("obs_data_set_default_int", int)
obs_data_set_default_bool = _default_setter("obs_data_set_default_bool", bool)
obs_data_get_string = _getter("obs_data_get_string", "")
obs_data_get_int = _getter("obs_data_get_int", 0)
obs_data_get_bool = _getter("obs_data_get_bool", False)


def obs_data_get_array(data: Data, key: str) -> DataArray | None:
    _record("obs_data_get_array")
    array = data.values.get(key)
    if array is None:
        return None
    array.addref()
    return array


def obs_data_set_array(data: Data, key: str, array: DataArray) -> None:
    _record("obs_data_set_array")
    array.addref()
    data.values[key] = array


def obs_data_array_release(array: DataArray | None) -> None:
    _record("obs_data_array_release")
    if array is not None:
        array.release()


# ---- sources and scenes -------------------------------------------------------------------------------
def obs_source_create(kind: str, name: str, settings: Data | None, hotkey_data: Data | None) -> Source:
    _record("obs_source_create")
    source = Source(kind, name, settings)
    sources.setdefault(name, source)
    source.addref()  # libobs keeps the source alive in its list until it is removed
    return source


def obs_source_get_display_name(kind: str) -> str | None:
    _record("obs_source_get_display_name")
    return registered[kind][0] if kind in registered else None


def obs_get_source_output_flags(kind: str) -> int:
    _record("obs_get_source_output_flags")
    return registered.get(kind, ("", 0))[1]


def obs_source_get_output_flags(source: Source) -> int:
    _record("obs_source_get_output_flags")
    return source.flags


def obs_source_remove(source: Source) -> None:
    """libobs removes the source from its list (releasing the list's reference) and from every scene."""
    _record("obs_source_remove")
    if not source.removed and sources.get(source.name) is source:
        del sources[source.name]
        source.removed = True
        source.release()


def obs_get_source_by_name(name: str) -> Source | None:
    _record("obs_get_source_by_name")
    source = sources.get(name)
    if source is not None:
        source.addref()
    return source


def obs_source_update(source: Source, settings: Data) -> None:
    _record("obs_source_update")
    source.settings.values.update(settings.values)
    source.updates += 1


def obs_source_get_settings(source: Source) -> Data:
    _record("obs_source_get_settings")
    source.settings.addref()
    return source.settings


def obs_source_release(source: Source | None) -> None:
    _record("obs_source_release")
    if source is not None:
        source.release()


def obs_frontend_get_current_scene() -> Source | None:
    _record("obs_frontend_get_current_scene")
    if current_scene is not None:
        current_scene.addref()
    return current_scene


def obs_scene_from_source(source: Source) -> Source | None:
    _record("obs_scene_from_source")
    return source if source is not None and source.kind == "scene" else None


def obs_scene_find_source(scene: Source, name: str) -> SceneItem | None:
    _record("obs_scene_find_source")
    return next((item for item in scene.items if item.source.name == name), None)


def obs_scene_add(scene: Source, source: Source) -> SceneItem:
    _record("obs_scene_add")
    source.addref()
    item = SceneItem(scene, source)
    scene.items.append(item)
    return item


def obs_get_video_info(info: obs_video_info) -> bool:
    _record("obs_get_video_info")
    info.base_width, info.base_height = canvas
    return True


def _item_setter(name: str, attr: str, is_vec: bool) -> Callable:
    def set_value(item: SceneItem, value: Any) -> None:
        _record(name)
        setattr(item, attr, (float(value.x), float(value.y)) if is_vec else value)
    return set_value


obs_sceneitem_set_pos = _item_setter("obs_sceneitem_set_pos", "pos", True)
obs_sceneitem_set_bounds = _item_setter("obs_sceneitem_set_bounds", "bounds", True)
obs_sceneitem_set_alignment = _item_setter("obs_sceneitem_set_alignment", "alignment", False)
obs_sceneitem_set_bounds_type = _item_setter("obs_sceneitem_set_bounds_type", "bounds_type", False)
obs_sceneitem_set_bounds_alignment = _item_setter("obs_sceneitem_set_bounds_alignment", "bounds_alignment", False)


# ---- properties -------------------------------------------------------------------------------------------
def obs_properties_create() -> Properties:
    _record("obs_properties_create")
    return Properties()


def obs_properties_add_text(props: Properties, name: str, description: str, kind: int) -> dict:
    _record("obs_properties_add_text")
    return props.add(type="text", name=name, description=description, kind=kind)


def obs_properties_add_path(props: Properties, name: str, description: str, kind: int, flt: str,
                            default_path: str | None) -> dict:
    _record("obs_properties_add_path")
    return props.add(type="path", name=name, description=description, kind=kind, filter=flt)


def obs_properties_add_int(props: Properties, name: str, description: str, lo: int, hi: int, step: int) -> dict:
    _record("obs_properties_add_int")
    return props.add(type="int", name=name, description=description, min=lo, max=hi, step=step)


def obs_properties_add_bool(props: Properties, name: str, description: str) -> dict:
    _record("obs_properties_add_bool")
    return props.add(type="bool", name=name, description=description)


def obs_properties_add_list(props: Properties, name: str, description: str, kind: int, fmt: int) -> dict:
    _record("obs_properties_add_list")
    return props.add(type="list", name=name, description=description, kind=kind, format=fmt, options=[])


def obs_property_list_add_string(prop: dict, name: str, value: str) -> int:
    _record("obs_property_list_add_string")
    prop["options"].append((name, value))
    return len(prop["options"]) - 1


def obs_properties_add_group(props: Properties, name: str, description: str, kind: int,
                             content: Properties) -> dict:
    _record("obs_properties_add_group")
    names = {p["name"] for p in props.all_items()}
    if name in names or names & {p["name"] for p in content.all_items()}:
        raise RuntimeError(f"group {name!r}: a property name is used twice")
    return props.add(type="group", name=name, description=description, kind=kind, content=content)


def obs_property_text_set_info_type(prop: dict, info_type: int) -> None:
    _record("obs_property_text_set_info_type")
    prop["info_type"] = info_type


def obs_properties_add_button(props: Properties, name: str, text: str, callback: Callable) -> dict:
    _record("obs_properties_add_button")
    return props.add(type="button", name=name, description=text, callback=callback)


def obs_properties_get(props: Properties, name: str) -> dict | None:
    _record("obs_properties_get")
    return next((p for p in props.all_items() if p["name"] == name), None)


# ---- hotkeys, timers, log ----------------------------------------------------------------------------------
def obs_hotkey_register_frontend(name: str, description: str, callback: Callable[[bool], None]) -> int:
    _record("obs_hotkey_register_frontend")
    hotkey_id = len(hotkeys)
    hotkeys[hotkey_id] = {"name": name, "description": description, "callback": callback, "bindings": []}
    return hotkey_id


def obs_hotkey_load(hotkey_id: int, array: DataArray | None) -> None:
    _record("obs_hotkey_load")
    hotkeys[hotkey_id]["bindings"] = list(array.items) if array is not None else []


def obs_hotkey_save(hotkey_id: int) -> DataArray:
    _record("obs_hotkey_save")
    array = DataArray(hotkeys[hotkey_id]["bindings"])
    created.append(array)
    return array


def press_hotkey(name: str) -> None:
    """Test helper: OBS calls a frontend hotkey's callback with pressed=True, then False on release."""
    entry = next(h for h in hotkeys.values() if h["name"] == name)
    _on_thread("obs-hotkey", lambda: (entry["callback"](True), entry["callback"](False)))


def timer_add(callback: Callable[[], None], milliseconds: int) -> None:
    _record("timer_add")
    timers.append((callback, milliseconds))


def timer_remove(callback: Callable[[], None]) -> None:
    _record("timer_remove")
    timers[:] = [t for t in timers if t[0] is not callback]


def run_timers() -> None:
    """Test helper: one tick of every timer, on the graphics thread (where OBS calls them, between frames)."""
    def tick() -> None:
        for callback, _ in list(timers):
            callback()
    _on_thread("obs-graphics", tick)


def script_log(level: int, message: str) -> None:
    _record("script_log")
    if level not in (LOG_ERROR, LOG_WARNING, LOG_INFO, LOG_DEBUG):
        raise ValueError(f"script_log: unknown level {level}")
    with _lock:
        logs.append((level, message, threading.current_thread().name))


reset()
