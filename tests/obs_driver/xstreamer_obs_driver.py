"""A test-only OBS script, loaded after xstreamer_obs.py in the smoke test's scene collection (never in a real
OBS): once OBS has finished loading it does on OBS's UI thread what a streamer does in Tools -> Scripts, and logs
what it saw as `DRIVER ...` lines for the test to read.

1. presses *Add / update the co-host* (xstreamer_obs.on_add_source) and logs the status line the script's
   properties then show (`DRIVER status level=N text=...`);
2. checks the placement code against real libobs: with the source kind switched to a type this OBS has
   (`color_source_v3`; Debian's OBS has no browser_source), `ensure_source()` adds an item, whose transform is
   read back with obs_sceneitem_get_* (`DRIVER placed ...`); the test item is removed again.
OBS shares one Python interpreter among scripts: the co-host script is `sys.modules["xstreamer_obs"]`.
"""

import sys

import obspython as obs


def act() -> None:
    cohost = sys.modules.get("xstreamer_obs")
    if cohost is None:
        obs.script_log(obs.LOG_INFO, "DRIVER no xstreamer_obs module")
        return
    cohost.on_add_source(None, None)
    props = cohost.script_properties()
    status = obs.obs_properties_get(props, "status")
    level = obs.obs_property_text_info_type(status) if hasattr(obs, "obs_property_text_info_type") else -1
    text = obs.obs_data_get_string(cohost.cohost.settings, "status")
    obs.obs_properties_destroy(props)
    obs.script_log(obs.LOG_INFO, f"DRIVER status level={level} text={text}")

    kind = cohost.SOURCE_KIND
    cohost.SOURCE_KIND = "color_source_v3"
    try:
        ok = cohost.ensure_source()
        scene_source = obs.obs_frontend_get_current_scene()
        scene = obs.obs_scene_from_source(scene_source)
        item = obs.obs_scene_find_source(scene, cohost.SOURCE_NAME)
        pos, bounds = obs.vec2(), obs.vec2()
        obs.obs_sceneitem_get_pos(item, pos)
        obs.obs_sceneitem_get_bounds(item, bounds)
        video = obs.obs_video_info()
        obs.obs_get_video_info(video)
        obs.script_log(obs.LOG_INFO, f"DRIVER placed ok={ok} canvas={video.base_width}x{video.base_height} "
                       f"pos={pos.x:g},{pos.y:g} bounds={bounds.x:g},{bounds.y:g} "
                       f"align={obs.obs_sceneitem_get_alignment(item)} "
                       f"bounds_type={obs.obs_sceneitem_get_bounds_type(item)}")
        obs.obs_sceneitem_remove(item)
        obs.obs_source_release(scene_source)
        source = obs.obs_get_source_by_name(cohost.SOURCE_NAME)
        obs.obs_source_remove(source)
        obs.obs_source_release(source)
    finally:
        cohost.SOURCE_KIND = kind


def on_event(event) -> None:
    if event == obs.OBS_FRONTEND_EVENT_FINISHED_LOADING:
        act()


def script_load(settings) -> None:
    obs.obs_frontend_add_event_callback(on_event)
