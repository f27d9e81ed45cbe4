"""Does this Qt binding keep Python's reference counts? (PySide6 6.12.0 on CPython 3.10/3.11 does not.)

PySide6 6.12.0's abi3 wheels return ``True`` from ``SignalInstance.emit()`` and ``None`` from every
void method (``setObjectName``, ...) without taking a reference: each call drops one reference to the
singleton. On CPython 3.12+ ``True``/``None`` are immortal (PEP 683) and nothing happens; on 3.10/3.11
the count reaches zero after a few hundred to a few thousand calls and the interpreter aborts with
``Fatal Python error: bool_dealloc`` (the studio's preview emits ~50 signals a second and died after
~75 s). pyproject keeps such a binding off 3.10/3.11 (``PySide6-Essentials<6.12`` there);
`check_binding` is the studio's start-up guard and the test suite's probe (tests/test_studio_binding.py).

    python -m studio_gui.qt_binding [--calls N]    # prints the drift as JSON; exit 1 on a bad binding

`reference_drift(n)` makes ``n`` calls of each kind and returns how many references ``True``, ``None`` and
``False`` gained (+) or lost (-) per kind: emits on the GUI thread, emits from a Python worker thread
(queued to a GUI-thread receiver, as the studio's socket threads do) and void method calls. A binding
that keeps the counts shows a drift near 0 (a few references of thread bookkeeping); a broken one ``-n``.
The probe gives back what it measured lost, so probing a broken binding does not abort the process.
"""

from __future__ import annotations

import ctypes
import gc
import json
import sys
import threading
import time

from PySide6.QtCore import QCoreApplication, QObject, Qt, Signal

SINGLETONS = {"True": True, "None": None, "False": False}


class BindingError(RuntimeError):
    """The Qt binding drops (or leaks) references to Python singletons; the message names it and the fix."""


class _Emitter(QObject):
    plain = Signal()
    packet = Signal(object, object)       # the shape of SessionWorker.media
    line = Signal(str, int)


def counts() -> dict[str, int]:
    """The reference counts of True, None and False now."""
    return {name: sys.getrefcount(obj) for name, obj in SINGLETONS.items()}


def drift_since(before: dict[str, int]) -> dict[str, int]:
    """References gained (+) or lost (-) since `counts()` gave `before`. Lost ones are given back (so a probe
    of a broken binding does not itself bring the interpreter down)."""
    after = counts()
    delta = {name: after[name] - before[name] for name in before}
    for name, d in delta.items():
        for _ in range(-d):
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(SINGLETONS[name]))
    return delta


def reference_drift(n: int = 200, timeout_s: float = 30.0) -> dict[str, dict[str, int]]:
    """References gained/lost by True/None/False over `n` calls of each kind (needs a Qt application;
    one is created when there is none). Keys: "emit_gui_thread", "emit_worker_thread", "void_method"."""
    gc.collect()                        # no collection of unrelated garbage inside a measurement
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _measure(n, timeout_s)
    finally:
        if was_enabled:
            gc.enable()


def _measure(n: int, timeout_s: float) -> dict[str, dict[str, int]]:
    app = QCoreApplication.instance() or QCoreApplication([])
    sender, receiver = _Emitter(), QObject()
    got: list[int] = []

    def slot(*_args: object) -> None:
        got.append(1)

    out: dict[str, dict[str, int]] = {}
    # GUI thread, direct connections (as widgets' own signals).
    for sig in (sender.plain, sender.packet, sender.line):
        sig.connect(slot)
    before = counts()
    for i in range(n):
        sender.plain.emit()
        sender.packet.emit(None, b"")
        sender.line.emit("x", i)
    out["emit_gui_thread"] = drift_since(before)
    for sig in (sender.plain, sender.packet, sender.line):
        sig.disconnect(slot)

    # A Python thread emitting; the receiver lives on the GUI thread (queued delivery).
    worker_sender = _Emitter()
    worker_sender.packet.connect(slot, Qt.ConnectionType.QueuedConnection)
    got.clear()
    before = counts()
    t = threading.Thread(target=lambda: [worker_sender.packet.emit(True, None) for _ in range(n)],
                         name="qt-binding-probe")
    t.start()
    t.join(timeout_s)
    deadline = time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < deadline:
        app.processEvents()
    out["emit_worker_thread"] = drift_since(before)
    worker_sender.packet.disconnect(slot)

    # Void methods (a binding's `return None` without a reference shows here).
    before = counts()
    for i in range(n):
        receiver.setObjectName("probe")
    out["void_method"] = drift_since(before)
    return out


def problems(drift: dict[str, dict[str, int]], n: int) -> list[str]:
    """The kinds of call whose drift is at least half a reference per call, as readable lines."""
    bad = []
    for kind, deltas in drift.items():
        for name, d in deltas.items():
            if abs(d) * 2 >= n:
                how = "lost" if d < 0 else "gained"
                bad.append(f"{kind}: {name} {how} {abs(d)} references over {n} calls")
    return bad


def check_binding(n: int = 32) -> None:
    """Raise BindingError when this PySide6 drops references (4*n calls: the studio runs it at start)."""
    import PySide6

    bad = problems(reference_drift(n), n)
    if bad:
        raise BindingError(
            f"PySide6 {PySide6.__version__} on Python {sys.version.split()[0]} drops references to Python's "
            f"True/None ({'; '.join(bad)}); the studio would abort with 'Fatal Python error' within minutes. "
            "Install a binding that keeps them: pip install 'PySide6-Essentials>=6.6,<6.12' "
            "'PySide6-Addons>=6.6,<6.12' (or use Python 3.12+).")


def main(argv: list[str] | None = None) -> int:
    import argparse

    import PySide6

    parser = argparse.ArgumentParser(prog="python -m studio_gui.qt_binding",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls of each kind (default 2000)")
    args = parser.parse_args(argv)
    drift = reference_drift(args.calls)
    bad = problems(drift, args.calls)
    print(json.dumps({"pyside6": PySide6.__version__, "python": sys.version.split()[0], "calls": args.calls,
                      "drift": drift, "problems": bad}))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
