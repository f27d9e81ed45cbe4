"""A preview soak: the studio's real window (Qt offscreen) runs a live preview on a daemon it starts itself and
keeps talking to it for a while; the summary says whether it stayed up and what flowed.

    QT_QPA_PLATFORM=offscreen python -m studio_gui.soak --model default --minutes 10

Every `--every` seconds, when the persona is idle, the soak sends the next line of a small script (chat and
speak alternating). Each `--report` seconds a JSON line goes to stderr; at the end one JSON summary goes to
stdout: seconds run, frames painted, audio/video/text packets, replies started and finished, the reference
counts of True/None at the start and the end (a binding that drops them shows here before it aborts), the
studio's peak memory, and the daemon's CPU time. Exit 0 when the preview stayed up to the end and the daemon
was gone after the window closed; 1 otherwise. tests/test_studio_soak.py runs a short one on `tiny`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

LINES = (
    ("chat", "Hi! Who are you?"),
    ("chat", "What is your favourite painting in the museum?"),
    ("speak", "Welcome back, everyone. The next tour starts in five minutes."),
    ("chat", "Tell me something surprising about sculptures."),
    ("chat", "Thanks! What should I see next?"),
    ("speak", "Please keep your tickets with you at all times."),
)


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of process `pid` (Linux /proc; None elsewhere or when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return None


def run(model: str, seconds: float, every_s: float, report_s: float, check_binding: bool = True) -> dict:
    """Run the soak; returns the summary (see the module docstring)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from .app import MainWindow
    from .personas import CONFIG_ENV, PersonaStore
    from .qt_binding import check_binding as probe
    from .qt_binding import counts

    app = QApplication.instance() or QApplication([])
    if check_binding:
        probe()
    config = tempfile.mkdtemp(prefix="xstreamer-soak-")
    os.environ[CONFIG_ENV] = config
    win = MainWindow(PersonaStore(Path(config) / "personas"), use_audio_device=False)
    win.show()
    win.new_persona("Soak")
    win.editor.model.setCurrentText(model)
    win.editor.system_prompt.setPlainText("You are Farid, a cheerful museum guide. Answer briefly.")
    win.editor.greeting.setPlainText("Hello, I am Farid. Ask me anything about the museum.")
    win.editor.max_sentences.setValue(2)
    win.portrait.choose_character("farid")
    win.save_current()
    panel = win.preview
    stats = {"model": model, "sent": 0, "errors": [], "reports": 0}
    packets = {"audio": 0, "video": 0, "text": 0, "event": 0, "state": 0}
    seen_worker: list[object] = []
    refs_start = counts()
    t0 = time.monotonic()
    opened_at: list[float] = []
    next_line = [0]
    last_sent = [0.0]

    def count_media(packet: object, _payload: object) -> None:
        kind = getattr(packet, "type", "")
        packets[kind] = packets.get(kind, 0) + 1

    def tick() -> None:
        now = time.monotonic()
        worker = panel.worker
        if worker is not None and worker not in seen_worker:
            seen_worker.append(worker)
            worker.media.connect(count_media)
        if panel.session_id and not opened_at:
            opened_at.append(now - t0)
        if panel.session_id and panel.state == "idle" and now - last_sent[0] >= every_s:
            kind, text = LINES[next_line[0] % len(LINES)]
            (panel.send_chat if kind == "chat" else panel.send_speak)(text)
            next_line[0] += 1
            stats["sent"] += 1
            last_sent[0] = now
        if now - t0 >= seconds:
            loop.quit()             # (QApplication.quit would close the window, and with it the preview)

    def report() -> None:
        stats["reports"] += 1
        refs = counts()
        print(json.dumps({"t": round(time.monotonic() - t0, 1), "frames": panel.video.frames_shown,
                          "replies_ended": panel.events.count("utterance_end"), "state": panel.state,
                          "true_refs": refs["True"], "none_refs": refs["None"],
                          "daemon_cpu_s": _cpu_seconds(panel.daemon.pid)}), file=sys.stderr, flush=True)

    panel.status.connect(lambda text: stats["errors"].append(text[:200])
                         if ("failed" in text.lower() or "closed by the daemon" in text.lower()) else None)
    timer, reporter = QTimer(), QTimer()
    timer.timeout.connect(tick)
    timer.start(200)
    reporter.timeout.connect(report)
    reporter.start(int(report_s * 1000))
    loop = QEventLoop()
    panel.start_local(model)
    loop.exec()
    timer.stop()
    reporter.stop()
    elapsed = time.monotonic() - t0
    refs_end = counts()
    daemon_pid = panel.daemon.pid
    up = bool(panel.session_id) and panel.daemon.is_running()
    cpu = _cpu_seconds(daemon_pid)
    summary = {
        **stats, "seconds": round(elapsed, 1), "session_open_after_s": round(opened_at[0], 1) if opened_at else None,
        "preview_up_at_end": up, "frames_painted": panel.video.frames_shown, "packets": packets,
        "replies_started": panel.events.count("utterance_start"), "replies_ended": panel.events.count("utterance_end"),
        "true_refs": [refs_start["True"], refs_end["True"]], "none_refs": [refs_start["None"], refs_end["None"]],
        "studio_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "daemon_cpu_s": round(cpu, 1) if cpu is not None else None,
    }
    win.close()                                     # stops the session and the daemon
    deadline = time.monotonic() + 20
    while daemon_pid and _cpu_seconds(daemon_pid) is not None and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.1)
    summary["daemon_gone_after_close"] = not panel.daemon.is_running()
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studio_gui.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="default", help="model preset the preview's daemon runs")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=8.0, help="seconds between lines (sent when idle)")
    parser.add_argument("--report", type=float, default=30.0, help="seconds between progress lines (stderr)")
    parser.add_argument("--no-binding-check", action="store_true",
                        help="skip the start-up binding check (to reproduce a broken binding's crash)")
    args = parser.parse_args(argv)
    summary = run(args.model, args.minutes * 60.0, args.every, args.report, not args.no_binding_check)
    print(json.dumps(summary))
    ok = summary["preview_up_at_end"] and summary["daemon_gone_after_close"] and not summary["errors"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
