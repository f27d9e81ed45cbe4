"""Admission by capacity (engine_core/daemon/capacity.py): a daemon answers the session past what it holds in real
time with a typed `busy` error saying so, and a session falling behind real time stops new ones; `load` reports it."""

from __future__ import annotations

import json

import pytest

from engine_core.daemon.capacity import Admission, Capacity, calibrate, device_class, resolve, stored


def test_the_open_past_capacity_is_busy_and_says_why():
    a = Admission(Capacity(3, "bench", "docs/performance.md"))
    assert a.refusal(2) is None
    why = a.refusal(3)
    assert why is not None and "holds 3 sessions in real time" in why and "bench" in why and "3 open" in why


def test_a_session_behind_real_time_stops_new_ones_for_a_while():
    a = Admission(Capacity(8, "configured", "--capacity"), behind_s=60.0)
    a.note_late("s1")
    assert a.behind() == ["s1"]
    why = a.refusal(2)
    assert why is not None and "fell behind real time" in why
    a.forget("s1")
    assert a.refusal(2) is None
    assert Admission(Capacity(8, "configured"), behind_s=0.0).refusal(1) is None
    unmeasured = Admission(Capacity(8, "unmeasured", "--max-sessions"), behind_s=60.0)
    unmeasured.note_late("s1")
    assert unmeasured.refusal(2) is None             # (no known capacity: --max-sessions alone, as before)


def test_a_known_capacity_shrinks_with_the_replicas_lost():
    counts = [(2, 2)]
    a = Admission(Capacity(4, "configured", "--capacity"), replicas=lambda: counts[0])
    assert a.capacity.sessions == 4 and a.refusal(3) is None
    counts[0] = (1, 2)                                   # one of two replicas lost
    assert a.capacity.sessions == 2 and "1 of 2 replicas live" in a.capacity.detail
    assert "holds 2 sessions" in (a.refusal(2) or "")
    counts[0] = (0, 2)
    assert a.refusal(0) is not None                      # none live: every open is busy
    unmeasured = Admission(Capacity(8, "unmeasured", "--max-sessions"), replicas=lambda: counts[0])
    assert unmeasured.refusal(0) is not None
    counts[0] = (1, 2)
    assert unmeasured.refusal(5) is None                 # (unmeasured: --max-sessions while any replica lives)


def test_capacity_comes_from_the_stored_figures_the_flag_or_max_sessions(tmp_path, monkeypatch):
    import engine_core.daemon.capacity as cap

    figures = tmp_path / "capacity.json"
    figures.write_text(json.dumps({"tiny": {device_class("cpu"): {"sessions": 3, "measured": "a run"}}}))
    assert stored("tiny", "cpu", figures) == Capacity(3, "bench", "a run")
    cap.store("tiny-motion", "cpu", 2, "another run", figures)
    assert stored("tiny-motion", "cpu", figures) == Capacity(2, "bench", "another run")
    assert stored("tiny", "cpu", figures) == Capacity(3, "bench", "a run")
    assert stored("default", "cpu", figures) is None
    monkeypatch.setattr(cap, "FIGURES", figures)
    monkeypatch.setattr(cap.stored, "__defaults__", (figures,))
    assert resolve("auto", None, "tiny", "cpu", 8) == Capacity(3, "bench", "a run")
    assert resolve("auto", None, "tiny", "cpu", 8, replicas=2).sessions == 6      # Ray: per replica
    assert resolve("auto", None, "tiny", "cpu", 2).sessions == 2                  # never past --max-sessions
    assert resolve("auto", None, "default", "cpu", 8).source == "unmeasured"
    assert resolve("5", None, "tiny", "cpu", 8) == Capacity(5, "configured", "--capacity")
    for bad in ("0", "-1", "lots"):
        with pytest.raises(ValueError):
            resolve(bad, None, "tiny", "cpu", 8)


@pytest.mark.engine
def test_calibration_measures_the_engine():
    from engine_core.engine import Engine

    engine = Engine.load("tiny")
    got = calibrate(engine, max_sessions=2, seconds=1.0)
    assert got.source == "calibrated" and 1 <= got.sessions <= 2 and "1: x" in got.detail


@pytest.mark.process
def test_a_daemon_refuses_the_session_past_its_capacity_and_reports_its_load():
    from engine_core.daemon.server import Daemon, DaemonConfig
    from engine_core.engine import Engine
    from sdk.client import Client
    from sdk.errors import BusyError
    from sdk.protocol import ErrorCode

    daemon = Daemon(Engine.load("tiny"), DaemonConfig(control_port=0, media_port=0, model_name="tiny",
                                                      max_sessions=4, capacity=Capacity(2, "configured", "--capacity")))
    daemon.start()
    try:
        with Client(daemon.control_endpoint, timeout=30) as client:
            empty = client.load()
            assert (empty.sessions, empty.capacity, empty.capacity_source, empty.accepting) == (0, 2, "configured",
                                                                                                  True)
            a, b = client.open_session(), client.open_session()
            with pytest.raises(BusyError) as refused:
                client.open_session()
            assert refused.value.code is ErrorCode.BUSY and "holds 2 sessions in real time" in refused.value.message
            full = client.load()
            assert full.sessions == 2 and not full.accepting and "holds 2 sessions" in full.reason
            assert 0.0 <= full.utilization <= 1.0 and full.rss_mb > 0 and full.replicas == 1
            b.close()
            c = client.open_session()                               # room again
            assert client.load().sessions == 2
            a.close()
            c.close()
    finally:
        daemon.stop()
