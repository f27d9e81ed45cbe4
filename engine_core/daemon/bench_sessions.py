"""Many sessions at once, as their clients see them: `python -m engine_core.daemon.bench_sessions`.

    python -m engine_core.daemon.bench_sessions --model default --sessions 1,2,4,8 --mode speak
    python -m engine_core.daemon.bench_sessions --model paper --device cuda --random-weights --mode chat

Starts a real daemon (`xstreamer serve`), then for each count N in `--sessions` opens N sessions, one SDK client and
thread each on loopback, and lets every session talk for `--seconds`: a reply (`--mode speak`: the line said
verbatim; `chat`: the Thinker writes it), read until it ends (or is interrupted after `--reply-s`), a pause of
0.5-1.5 s, the next reply. Per session it counts the video frames that arrive (the daemon paces media at 25 fps:
a session that keeps real time gets 25 a second; one the engine cannot keep up with gets fewer) and the gaps over
200 ms between two frames, and times each reply from the request to its first audio/video packet ("first packet
under load": the other sessions talk meanwhile). Memory: the daemon's resident set (and on CUDA the GPU memory
nvidia-smi reports for it), the most seen during the window. CPU: the cores the daemon used during the window (its
CPU seconds / the window), and the machine's load average at the end (other processes take cores too). The N sessions are closed before the next count.
Prints one table row per count (and writes JSON with --json); nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field

from engine_core.bench.report import write_json
from engine_core.daemon.memory import rss_mb
from sdk.client import Client
from sdk.launcher import DaemonProcess

SPEAK_TEXT = ("Hello! It is good to see you. Let me tell you about the weather today: it is sunny and warm, "
              "with a light breeze from the sea.")
CHAT_TEXTS = ["What is a good name for a cat?", "Tell me something about the moon.",
              "How do I make a cup of tea?", "What do you like about music?"]
GAP_S = 0.2          # a longer silence between two video frames counts as a gap (a visible stall)


@dataclass
class SessionRun:
    """What one session's client saw during the window."""

    frames: int = 0
    gaps: int = 0
    firsts_ms: list[float] = field(default_factory=list)
    replies: int = 0
    error: str = ""


def _stat(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the process and its live child processes (render workers, Ray's) have used so far
    (0 where /proc is not there)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0.0
    pids = [pid]
    try:
        children = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        children = []
    parents = {c: st[1] for c in children if (st := _stat(c))}
    frontier = {pid}
    while frontier:
        frontier = {c for c, pp in parents.items() if pp.isdigit() and int(pp) in frontier}
        pids += sorted(frontier)
    for p in pids:
        st = _stat(p)
        if len(st) > 12:
            total += (int(st[11]) + int(st[12])) / tick
    return total


def _gpu_mb(pid: int) -> float:
    """GPU memory nvidia-smi reports for the process (0 without nvidia-smi or a GPU)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0.0
    total = 0.0
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0] == str(pid):
            total += float(parts[1])
    return total


def _talk(control: str, mode: str, seconds: float, reply_s: float, seed: int, opened: threading.Barrier,
          start: list[float], out: SessionRun) -> None:
    """One session's client: open, wait for every session to be open, then talk for `seconds`."""
    rng = random.Random(seed)
    try:
        with Client(control, client_name=f"bench-{seed}", timeout=120) as client, client.open_session() as s:
            settle = time.monotonic() + 2.0
            while time.monotonic() < settle:              # the idle stream settles at its lead
                s.recv(timeout=0.05)
            opened.wait(600)
            opened.wait(600)                               # (the second: `start` is set between the two)
            t_end = start[0] + seconds
            last_frame = None

            def read(until: float, utt: int, t_req: float) -> bool:
                """Read packets until `until`; True once reply `utt` ended. Counts frames, gaps, the first packet."""
                nonlocal last_frame
                while time.monotonic() < until:
                    item = s.recv(timeout=min(0.1, max(0.001, until - time.monotonic())))
                    if item is None:
                        continue
                    pkt, _ = item
                    now = time.monotonic()
                    if pkt.type == "video":
                        if now >= start[0]:
                            out.frames += 1
                            if last_frame is not None and now - last_frame > GAP_S:
                                out.gaps += 1
                        last_frame = now
                    if utt and pkt.type in ("audio", "video") and pkt.utt == utt and t_req:
                        out.firsts_ms.append((now - t_req) * 1e3)
                        t_req = 0.0
                    if utt and pkt.type == "event" and pkt.event in ("utterance_end", "interrupted") and pkt.utt == utt:
                        return True
                return False

            read(start[0], 0, 0.0)
            while time.monotonic() < t_end:
                t_req = time.monotonic()
                utt = s.chat(rng.choice(CHAT_TEXTS)) if mode == "chat" else s.speak(SPEAK_TEXT)
                out.replies += 1
                if not read(min(t_end, t_req + reply_s), utt, t_req) and time.monotonic() < t_end:
                    s.interrupt()
                    read(min(t_end, time.monotonic() + 2.0), utt, 0.0)
                read(min(t_end, time.monotonic() + rng.uniform(0.5, 1.5)), 0, 0.0)
    except Exception as exc:                 # reported in the table
        out.error = f"{type(exc).__name__}: {exc}"


def run_count(daemon: DaemonProcess, n: int, mode: str, seconds: float, reply_s: float) -> dict:
    runs = [SessionRun() for _ in range(n)]
    start = [0.0]
    opened = threading.Barrier(n + 1)
    threads = [threading.Thread(target=_talk, args=(daemon.control, mode, seconds, reply_s, i, opened, start, runs[i]),
                                daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    opened.wait(600)
    start[0] = time.monotonic() + 1.0
    opened.wait(600)
    pid = daemon.pid or 0
    time.sleep(max(0.0, start[0] - time.monotonic()))
    cpu0, own0 = _cpu_s(pid), time.process_time()
    rss = gpu = 0.0
    cpu_s = own_s = 0.0
    while any(t.is_alive() for t in threads):
        rss, gpu = max(rss, rss_mb(pid)), max(gpu, _gpu_mb(pid))
        if time.monotonic() <= start[0] + seconds:
            cpu_s, own_s = _cpu_s(pid) - cpu0, time.process_time() - own0
        time.sleep(1.0)
    for t in threads:
        t.join()
    firsts = sorted(x for r in runs for x in r.firsts_ms)
    fps = [r.frames / seconds for r in runs]
    p95 = firsts[min(len(firsts) - 1, int(round(0.95 * (len(firsts) - 1))))] if firsts else None
    return {"sessions": n, "fps_min": round(min(fps), 1), "fps_median": round(statistics.median(fps), 1),
            "fps_all": [round(f, 1) for f in fps], "gaps": sum(r.gaps for r in runs),
            "first_packet_ms_median": round(statistics.median(firsts), 1) if firsts else None,
            "first_packet_ms_p95": round(p95, 1) if p95 is not None else None, "replies": len(firsts),
            "rss_mb": round(rss, 1), "gpu_mb": round(gpu, 1), "daemon_cpu_cores": round(cpu_s / seconds, 2),
            "client_cpu_cores": round(own_s / seconds, 2), "load_avg": round(os.getloadavg()[0], 2),
            "errors": [r.error for r in runs if r.error]}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--sessions", default="1,2,4,8", help="session counts, comma-separated")
    ap.add_argument("--mode", choices=["speak", "chat"], default="speak")
    ap.add_argument("--seconds", type=float, default=30.0, help="the measured window per count")
    ap.add_argument("--reply-s", type=float, default=8.0, help="a reply still going after this is interrupted")
    ap.add_argument("--device", default=None, help="the daemon's --device (default: its own)")
    ap.add_argument("--random-weights", action="store_true", help="the daemon's --random-weights (timing only)")
    ap.add_argument("--daemon-args", default="", help="more arguments for `xstreamer serve`, space-separated")
    ap.add_argument("--log", default=None, help="write the daemon's output (its log) to this file")
    ap.add_argument("--store", action="store_true",
                    help="record the most sessions that kept real time (every session >= 24.5 fps, p95 first packet "
                         "<= 500 ms, no gap) in engine_core/daemon/capacity.json for this model and device: what "
                         "`serve --capacity auto` admits")
    ap.add_argument("--json", dest="json_path", default=None, help="write the results here (after every row)")
    args = ap.parse_args(argv)
    counts = [int(c) for c in args.sessions.split(",") if c.strip()]
    extra = ["--max-sessions", str(max(counts))]
    extra += ["--device", args.device] if args.device else []
    extra += ["--random-weights"] if args.random_weights else []
    extra += args.daemon_args.split()
    rows: list[dict] = []
    log = open(args.log, "w", buffering=1) if args.log else None
    t0 = time.monotonic()
    daemon = DaemonProcess(model=args.model, extra_args=extra, ready_timeout=900,
                           on_line=(lambda line: log.write(line + "\n")) if log else None).start()
    ready_s = round(time.monotonic() - t0, 1)
    print(f"daemon ready in {ready_s} s ({args.model}, {args.mode})", flush=True)
    result = {"model": args.model, "mode": args.mode, "device": args.device, "random_weights": args.random_weights,
              "seconds": args.seconds, "daemon_args": args.daemon_args, "ready_s": ready_s, "rows": rows}
    try:
        print(f"{'sessions':>8} {'fps min/median':>15} {'gaps':>5} {'first packet median':>20} {'p95':>7} "
              f"{'replies':>7} {'RSS MB':>8} {'GPU MB':>8} {'daemon CPU':>10} {'load':>5}", flush=True)
        for n in counts:
            row = run_count(daemon, n, args.mode, args.seconds, args.reply_s)
            rows.append(row)
            print(f"{n:>8} {row['fps_min']:>7}/{row['fps_median']:<7} {row['gaps']:>5} "
                  f"{row['first_packet_ms_median']!s:>20} {row['first_packet_ms_p95']!s:>7} {row['replies']:>7} "
                  f"{row['rss_mb']:>8} {row['gpu_mb']:>8} {row['daemon_cpu_cores']:>10} {row['load_avg']:>5}"
                  + (f"  errors: {row['errors']}" if row['errors'] else ""),
                  flush=True)
            write_json(args.json_path, result)
            time.sleep(2.0)                               # the closed sessions' workers exit
    finally:
        daemon.stop()
        if log is not None:
            log.close()
    held = [r["sessions"] for r in rows if real_time(r)]
    result["real_time_sessions"] = max(held, default=0)
    print(f"sessions in real time: {result['real_time_sessions']}")
    write_json(args.json_path, result)
    if args.store and held:
        from .capacity import store

        store(args.model, args.device or "cpu", max(held), f"bench_sessions --mode {args.mode} "
              f"({time.strftime('%Y-%m-%d')}): {max(held)} sessions at >= 24.5 fps, first packet p95 <= 500 ms")
    return result


def real_time(row: dict) -> bool:
    """Whether every session of a row kept real time: >= 24.5 fps, no gap, the first packet's p95 <= 500 ms."""
    p95 = row.get("first_packet_ms_p95")
    return (row["fps_min"] >= 24.5 and row["gaps"] == 0 and p95 is not None and p95 <= 500.0
            and not row["errors"])


if __name__ == "__main__":
    main()
