"""The daemon's memory over time, from outside (its RSS in /proc): `python -m engine_core.daemon.bench_memory`.

    python -m engine_core.daemon.bench_memory rounds --model default --rounds 6 --sessions 8
    python -m engine_core.daemon.bench_memory soak --model default --minutes 60

`rounds`: each round opens `--sessions` sessions at once (one client each), lets each speak a line, closes
them all, waits for the daemon to settle and samples its RSS; memory given back on close shows as a flat line
after the first round (the model and the first sessions' one-off allocations). `soak`: one session fed back to
back (the next line as soon as the last one ends: a stream that never idles) for `--minutes`, RSS sampled
every `--every` seconds. Both print one line per sample and the slope (MB per round / MB per minute, least
squares over the samples after `--warmup`), and write JSON with --json. Linux only (/proc). Nothing is
asserted.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path
from typing import Any

from sdk.client import Client
from sdk.launcher import DaemonProcess
from sdk.protocol import END_EVENTS

LINES = ("The weather is lovely today, so we will walk to the park and look at the ducks.",
         "A long stream should cost the same memory in its fifth hour as in its first.",
         "Every session gives back what it took when it closes.")


def rss_mb(pid: int) -> float:
    """Resident set size of a process, MB (VmRSS)."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (0 for fewer than two points)."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    return 0.0 if var == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var


def speak_to_end(session: Any, text: str, timeout: float = 120.0) -> int:
    """Say `text` and read the session until that utterance ends; returns the packets read."""
    utt = session.speak(text)
    n = 0
    for pkt, _ in session.packets(timeout=timeout):
        n += 1
        if pkt.type == "event" and pkt.utt == utt and pkt.event in END_EVENTS:
            return n
    return n


def run_rounds(d: DaemonProcess, rounds: int, sessions: int, settle_s: float) -> list[dict]:
    pid = d.proc.pid
    samples = [{"round": 0, "rss_mb": round(rss_mb(pid), 1)}]
    print(f"round 0 (loaded, no session): {samples[0]['rss_mb']} MB", flush=True)
    for r in range(1, rounds + 1):
        errors: list[BaseException] = []

        def one(k: int) -> None:
            try:
                with Client(d.control, client_name=f"mem-{r}-{k}", timeout=60) as client:
                    with client.open_session() as s:
                        speak_to_end(s, LINES[k % len(LINES)])
            except BaseException as exc:  # reported below
                errors.append(exc)
        threads = [threading.Thread(target=one, args=(k,)) for k in range(sessions)]
        t0 = time.monotonic()
        peak = 0.0
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            peak = max(peak, rss_mb(pid))
            time.sleep(0.2)
        time.sleep(settle_s)
        rss = rss_mb(pid)
        samples.append({"round": r, "rss_mb": round(rss, 1), "peak_mb": round(peak, 1),
                        "seconds": round(time.monotonic() - t0, 1), "errors": [repr(e) for e in errors]})
        print(f"round {r}: {sessions} sessions opened, spoke, closed in {samples[-1]['seconds']} s; "
              f"RSS {rss:.1f} MB after (peak {peak:.1f}){'; errors ' + str(errors) if errors else ''}", flush=True)
    return samples


def run_soak(d: DaemonProcess, minutes: float, every_s: float) -> list[dict]:
    pid = d.proc.pid
    samples: list[dict] = []
    t0 = time.monotonic()
    stop = threading.Event()
    said = [0]

    def feed() -> None:
        with Client(d.control, client_name="mem-soak", timeout=60) as client, client.open_session() as s:
            k = 0
            while not stop.is_set():
                speak_to_end(s, LINES[k % len(LINES)])
                k += 1
                said[0] = k
    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    while time.monotonic() - t0 < minutes * 60 and feeder.is_alive():
        m = (time.monotonic() - t0) / 60
        samples.append({"minute": round(m, 2), "rss_mb": round(rss_mb(pid), 1), "lines": said[0]})
        print(f"{m:6.1f} min: RSS {samples[-1]['rss_mb']} MB, {said[0]} lines spoken", flush=True)
        time.sleep(every_s)
    stop.set()
    feeder.join(180)
    return samples


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["rounds", "soak"])
    ap.add_argument("--model", default="default")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--settle-s", type=float, default=5.0, help="rounds: wait this long after closing to sample")
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--every", type=float, default=30.0, help="soak: seconds between samples")
    ap.add_argument("--warmup", type=float, default=1.0,
                    help="samples before this (rounds: round number; soak: minutes) are left out of the slope")
    ap.add_argument("--serve-arg", action="append", default=[], help="an extra `xstreamer serve` argument")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    extra = ["--max-sessions", str(max(8, args.sessions)), "--client-sessions", "1", *args.serve_arg]
    with DaemonProcess(model=args.model, extra_args=extra, ready_timeout=900) as d:
        if args.mode == "rounds":
            samples = run_rounds(d, args.rounds, args.sessions, args.settle_s)
            xs = [s["round"] for s in samples if s["round"] >= args.warmup]
        else:
            samples = run_soak(d, args.minutes, args.every)
            xs = [s["minute"] for s in samples if s["minute"] >= args.warmup]
        ys = [s["rss_mb"] for s in samples[len(samples) - len(xs):]]
    unit = "MB per round" if args.mode == "rounds" else "MB per minute"
    result = {"mode": args.mode, "model": args.model, "samples": samples, "slope": round(slope(xs, ys), 3),
              "unit": unit, "serve_args": args.serve_arg}
    print(f"slope after warm-up: {result['slope']} {unit} over {len(xs)} samples", flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
