"""Studio A/V policy: audio is the master clock; the audio queue keeps pts; the plot refuses unknown series."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

pytest.importorskip("PySide6")

from studio_gui.preview.audio_out import PcmQueue  # noqa: E402
from studio_gui.preview.av_sync import Frame, FrameScheduler  # noqa: E402
from sdk.launcher import parse_ready_line  # noqa: E402


def _frames(n: int, step: int = 882) -> list[Frame]:
    return [Frame(i * step, bytes([i]) * 12, 2, 2) for i in range(n)]


def test_scheduler_follows_the_audio_clock():
    s = FrameScheduler()
    for f in _frames(10):
        s.push(f)
    assert s.due(clock=None, now=5.0, audio_active=True).pts == 0        # no clock yet: free-run
    s.clear()
    for f in _frames(10):
        s.push(f)
    assert s.due(clock=0, now=0.0, audio_active=True).pts == 0
    assert s.due(clock=881, now=0.0, audio_active=True) is None           # next frame not due yet
    shown = s.due(clock=882 * 4 + 10, now=0.0, audio_active=True)        # late: newest due frame, drop others
    assert shown.pts == 882 * 4 and s.dropped == 3
    assert s.offset_ms(shown, 882 * 4 + 441) == pytest.approx(-20.0)
    assert s.offset_ms(shown, None) is None


def test_scheduler_free_runs_without_audio():
    s = FrameScheduler(fps=25)
    for f in _frames(3):
        s.push(f)
    assert s.due(None, now=10.0, audio_active=False).pts == 0
    assert s.due(None, now=10.01, audio_active=False) is None             # 40 ms per frame
    assert s.due(None, now=10.05, audio_active=False).pts == 882


def test_pcm_queue_tracks_pts():
    q = PcmQueue()
    q.push(1000, b"\x01\x00" * 100)
    q.push(1100, b"\x02\x00" * 50)
    assert q.queued == 150 and q.read_pts is None
    data = q.read(120)
    assert len(data) == 240 and q.read_pts == 1120 and q.queued == 30
    assert data[198:202] == b"\x01\x00\x02\x00"
    q.clear()
    assert q.read(10) == b"" and q.queued == 0
    with pytest.raises(ValueError):
        q.push(0, b"\x00")


def test_ready_line():
    line = "xstreamer daemon ready control=tcp://127.0.0.1:5001 media=tcp://127.0.0.1:5002 model=tiny"
    assert parse_ready_line(line) == ("tcp://127.0.0.1:5001", "tcp://127.0.0.1:5002", "tiny")
    assert parse_ready_line("loading weights 40%") is None


def test_stats_plot(qtbot):
    from studio_gui.preview.stats_plot import StatsPlot

    plot = StatsPlot(points=5)
    qtbot.addWidget(plot)
    before = plot.grab().toImage()
    for i in range(6):
        plot.add(fps=20 + i, latency=300 - i, av_offset=(-1) ** i * 10)
    plot.add(fps=25)                      # missing series repeat their last value
    assert list(plot.data["fps"]) == [22, 23, 24, 25, 25] and plot.data["latency"][-1] == 295
    assert plot.grab().toImage() != before
    with pytest.raises(KeyError):
        plot.add(bitrate=1)
