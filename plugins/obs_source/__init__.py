"""OBS Studio integration: the `xstreamer obs` Browser Source bridge (bridge.py, daemon_link.py), its page
(web/), the OBS Python script (obs_script/xstreamer_obs.py) and test/measurement helpers (cdp.py, procs.py,
measure.py). See docs/obs.md."""
