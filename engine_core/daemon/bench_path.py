"""The first packet as a client of the daemon sees it: `python -m engine_core.daemon.bench_path`.

    python -m engine_core.daemon.bench_path --model default --replies 5 [--mode speak|chat] [--lead-ms 400]
    python -m engine_core.daemon.bench_path --model paper --device cuda --random-weights --mode chat

`xstreamer bench` times the engine (the user's turn -> the reply's first chunk computed). Through the daemon,
the chunk is then published at its place in the real-time stream, behind the idle media already queued (the
worker runs up to `--lead-ms` ahead of real time). This starts a real daemon (`xstreamer serve`), opens a
session with the Python SDK over ZeroMQ on loopback, lets the idle stream settle, then for each reply times
the client's `speak`/`chat` call -> the first audio or video packet of that reply arriving at the client (with
`--random-weights` the reply is interrupted there: it would speak up to its token limit).
Prints the figures (and writes JSON with --json); nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time

from engine_core.bench.cli import DEFAULT_TEXT
from engine_core.bench.report import write_json
from sdk.client import Client
from sdk.launcher import DaemonProcess


def _drain(session, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        session.recv(timeout=0.05)


def _one_reply(session, mode: str, text: str, whole: bool) -> float:
    """Seconds from the request to the reply's first media packet; reads on to the reply's end (`whole`), or
    interrupts it there (a random-weight reply speaks up to its token limit: minutes of real-time stream)."""
    start = time.monotonic()
    utt = session.chat(text) if mode == "chat" else session.speak(text)
    first = None
    for pkt, _ in session.packets(timeout=60):
        if first is None and pkt.type in ("audio", "video") and pkt.utt == utt:
            first = time.monotonic() - start
            if not whole:
                session.interrupt()
        if pkt.type == "event" and getattr(pkt, "event", "") in ("utterance_end", "interrupted") and pkt.utt == utt:
            break
    if first is None:
        raise RuntimeError(f"reply {utt} sent no media")
    return first


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--mode", choices=["speak", "chat"], default="speak")
    ap.add_argument("--text", default=DEFAULT_TEXT)
    ap.add_argument("--replies", type=int, default=5)
    ap.add_argument("--lead-ms", type=float, default=None, help="the daemon's lead (default: the daemon's own)")
    ap.add_argument("--device", default=None, help="the daemon's --device (default: its own)")
    ap.add_argument("--random-weights", action="store_true", help="the daemon's --random-weights (timing only)")
    ap.add_argument("--thinker-weights", choices=["bf16", "int8"], default=None, help="the daemon's --thinker-weights")
    ap.add_argument("--json", dest="json_path", default=None)
    args = ap.parse_args(argv)
    extra = ["--lead-ms", str(args.lead_ms)] if args.lead_ms is not None else []
    extra += ["--device", args.device] if args.device else []
    extra += ["--random-weights"] if args.random_weights else []
    extra += ["--thinker-weights", args.thinker_weights] if args.thinker_weights else []
    daemon = DaemonProcess(model=args.model, extra_args=extra, ready_timeout=300).start()
    try:
        with Client(daemon.control, client_name="daemon-path-bench", timeout=60) as client:
            with client.open_session() as session:
                _drain(session, 4.0)                              # the idle stream settles at its lead
                firsts = []
                for _ in range(args.replies):
                    firsts.append(_one_reply(session, args.mode, args.text, not args.random_weights) * 1e3)
                    _drain(session, 2.0)
    finally:
        daemon.stop()
    result = {"model": args.model, "device": args.device, "random_weights": args.random_weights, "mode": args.mode,
              "thinker_weights": args.thinker_weights,
              "lead_ms": args.lead_ms, "replies": args.replies,
              "first_packet_at_client_ms": round(statistics.median(firsts), 1),
              "first_packet_at_client_ms_all": [round(x, 1) for x in firsts]}
    for k, v in result.items():
        print(f"{k:<32} {v}")
    write_json(args.json_path, result)
    return result


if __name__ == "__main__":
    main()
