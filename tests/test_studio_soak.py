"""A short preview soak (`python -m studio_gui.soak`, the 10-minute one's code) on the tiny model: the studio's
real window (Qt offscreen) previews a daemon it started itself and is talked to every few seconds; it stays up,
paints frames, finishes replies, keeps the references of True/None, and its daemon is gone after the window
closes. docs/studio.md reports the 10-minute run on `default`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

ROOT = Path(__file__).resolve().parent.parent


def test_short_preview_soak_on_tiny():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "studio_gui.soak", "--model", "tiny", "--minutes", "0.33",
                           "--every", "3", "--report", "10"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.stdout.strip(), f"no summary (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0, summary
    assert summary["preview_up_at_end"] and summary["daemon_gone_after_close"] and not summary["errors"]
    assert summary["frames_painted"] > 0 and summary["packets"]["audio"] > 0 and summary["packets"]["text"] > 0
    assert summary["sent"] >= 1 and summary["replies_ended"] >= 2          # the greeting and at least one line
    # A binding that drops a reference per emit loses ~55 of True's a second here (~1,000 in this run).
    true_start, true_end = summary["true_refs"]
    none_start, none_end = summary["none_refs"]
    assert true_end > true_start - 200 and none_end > none_start - 200, summary
