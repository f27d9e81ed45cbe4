"""The Qt binding keeps Python's reference counts: emits (GUI thread and worker threads) and void calls neither
drop nor leak references to True/None/False.

PySide6 6.12.0 on CPython 3.10/3.11 drops one reference to True per `emit()` and one to None per void call,
and the studio aborted ~75 s into every preview ("Fatal Python error: bool_dealloc"). These tests fail on such
a binding: the probe in a child process (thousands of calls: a broken binding aborts it or reports the loss),
and the studio's own SessionWorker signals emitted from a Python thread into GUI-thread slots in this process.
Fast: a few seconds, no daemon.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from studio_gui.qt_binding import (BindingError, check_binding, counts, drift_since, problems,  # noqa: E402
                                   reference_drift)

ROOT = Path(__file__).resolve().parent.parent
CALLS = 3000          # past True's whole reference count at start-up (~600): a broken binding cannot hide


@pytest.mark.process
def test_many_emits_in_a_child_process_keep_true_and_none():
    """Main-thread emits, worker-thread emits and void calls, CALLS each, in a fresh interpreter."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "studio_gui.qt_binding", "--calls", str(CALLS)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"the probe failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["problems"] == []
    for kind in ("emit_gui_thread", "emit_worker_thread", "void_method"):
        for name, d in report["drift"][kind].items():
            assert abs(d) <= 16, f"{kind}: {name} drifted by {d} over {CALLS} calls ({report['pyside6']})"


def test_session_worker_signals_from_a_thread_keep_refcounts(qtbot):
    """The studio's socket-thread signals (SessionWorker.media/opened/acked/...) emitted from a Python thread
    and delivered to GUI-thread slots, as in a preview: no reference to True/None is lost or leaked."""
    from sdk.protocol import Persona
    from studio_gui.preview.session_worker import SessionWorker

    n = 400
    worker = SessionWorker("tcp://127.0.0.1:1", Persona())       # never started: only its signals are used
    got = {"media": 0, "opened": 0, "acked": 0, "failed": 0}

    def count(key):
        def slot(*_a):
            got[key] += 1
        return slot

    worker.media.connect(count("media"))
    worker.opened.connect(count("opened"))
    worker.acked.connect(count("acked"))
    worker.command_failed.connect(count("failed"))

    def emit_all():
        for i in range(n):
            worker.media.emit(None, b"\x00" * 8)            # what a packet without payload looks like
            worker.opened.emit("s1", {"ok": True, "x": None})
            worker.acked.emit("chat", i)
            worker.command_failed.emit("chat", "refused")

    emit_all()                          # warm up: first deliveries create cached objects
    qtbot.waitUntil(lambda: got["failed"] == n, timeout=20_000)
    for k in got:
        got[k] = 0
    gc.collect()                        # earlier tests' garbage is not this test's drift
    gc.disable()
    try:
        before = counts()
        t = threading.Thread(target=emit_all, name="xstreamer-studio-socket")
        t.start()
        t.join(30)
        qtbot.waitUntil(lambda: min(got.values()) == n, timeout=20_000)
        drift = drift_since(before)      # (lost references are given back: a failure here does not abort)
    finally:
        gc.enable()
    # A broken binding loses one reference per emit (-1600); a sound one drifts by a few (thread bookkeeping).
    assert all(abs(d) < n // 4 for d in drift.values()), f"{4 * n} emits from a thread: refcount drift {drift}"


def test_probe_names_a_binding_that_drops_references():
    """The probe itself: a drift of -n is a problem (named, with the kind of call), a few is not."""
    n = 100
    assert problems({"emit_gui_thread": {"True": -3, "None": 2, "False": 0}}, n) == []
    bad = problems({"emit_gui_thread": {"True": -n, "None": 0, "False": 0},
                    "void_method": {"True": 0, "None": -n, "False": 0}}, n)
    assert bad == [f"emit_gui_thread: True lost {n} references over {n} calls",
                   f"void_method: None lost {n} references over {n} calls"]
    drift = reference_drift(50)
    assert set(drift) == {"emit_gui_thread", "emit_worker_thread", "void_method"}
    check_binding()                      # this environment's binding is a good one (else BindingError)
    assert issubclass(BindingError, RuntimeError)
