"""Where a reply's first packet spends its time inside the daemon: `python -m engine_core.daemon.bench_parts`.

    python -m engine_core.daemon.bench_parts [--model tiny|default|paper] [--device cuda] [--random-weights]
                                             [--replies 6] [--mode speak|chat] [--json FILE]

`bench_path` times the first packet at an SDK client of a whole daemon; this splits it. The daemon's own parts
run in this process (an engine session, its `SessionWorker` pacing the block loop to a 400 ms lead, the
`MediaPublisher` on loopback) with a ZeroMQ subscriber in place of the client. Each reply is asked for just after a
packet arrives, as a client reacting to the stream would, then interrupted at its first packet. Per reply, ms from
the request: the worker seeing its first chunk's speech ready (`Session.reply_ready`), the block loop's call for
that chunk starting and returning, its packets queued (`Outbox.put_chunk`), and the first of them received. The
session's and the outbox's methods are observed on the instance, not replaced. Prints a table (and JSON with
--json); nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time

import zmq

from engine_core.bench.cli import DEFAULT_TEXT
from engine_core.bench.report import write_json
from sdk.protocol import decode_media

from .media import MediaPublisher
from .session_worker import SessionWorker

PARTS = ("ready", "chunk_start", "chunk_end", "queued", "received")


class _Observed:
    """The marks of each reply (utt -> part -> monotonic time), from wrappers on a session and an outbox."""

    def __init__(self) -> None:
        self.marks: dict[int, dict[str, float]] = {}
        self.readies: list[float] = []          # when reply_ready turned True

    def session(self, session):
        next_chunk, reply_ready = session.next_chunk, session.reply_ready
        was_ready = [False]

        def observed_next():
            start = time.monotonic()
            chunk = next_chunk()
            if chunk.utt in self.marks and "chunk_start" not in self.marks[chunk.utt]:
                self.marks[chunk.utt].update(chunk_start=start, chunk_end=time.monotonic())
            return chunk

        def observed_ready():
            ready = reply_ready()
            if ready and not was_ready[0]:
                self.readies.append(time.monotonic())
            was_ready[0] = ready
            return ready
        session.next_chunk, session.reply_ready = observed_next, observed_ready
        return session

    def outbox(self, box) -> None:
        put_chunk = box.put_chunk

        def observed_put(packets, n_samples, *args, **kwargs):
            utt = packets[0][1].utt if packets else 0
            if utt in self.marks and "queued" not in self.marks[utt]:
                self.marks[utt]["queued"] = time.monotonic()
            return put_chunk(packets, n_samples, *args, **kwargs)
        box.put_chunk = observed_put


def _load(model: str, device: str | None, random_weights: bool):
    from engine_core.engine import Engine

    kwargs = {"device": device} if device else {}
    if random_weights:
        kwargs["random_weights"] = True
    return Engine.load(model, **kwargs)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--device", default=None)
    ap.add_argument("--random-weights", action="store_true")
    ap.add_argument("--mode", choices=["speak", "chat"], default="chat")
    ap.add_argument("--text", default=DEFAULT_TEXT, 
                    help="what is said (bench_path's and the engine bench's line)")
    ap.add_argument("--replies", type=int, default=6)
    ap.add_argument("--lead-ms", type=float, default=400.0)
    ap.add_argument("--settle-s", type=float, default=5.0, help="idle stream before the first reply")
    ap.add_argument("--gap-s", type=float, default=2.0, help="idle stream between replies")
    ap.add_argument("--json", dest="json_path", default=None)
    args = ap.parse_args(argv)
    engine = _load(args.model, args.device, args.random_weights)
    seen = _Observed()
    opened: dict[str, object] = {}
    ctx = zmq.Context()
    publisher = MediaPublisher(ctx, "tcp://127.0.0.1:*")
    endpoint = publisher.start_and_wait()
    worker = SessionWorker("parts", lambda: opened.setdefault("session", seen.session(engine.open_session())),
                           publisher, lead_s=args.lead_ms / 1e3, model_name=args.model, reply=lambda ok, p: None,
                           on_exit=lambda sid: None, subscribe_wait_s=0.5)
    seen.outbox(worker.outbox)
    sub = ctx.socket(zmq.SUB)
    rows = []

    def drain(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if sub.poll(20):
                sub.recv_multipart()
    try:
        worker.start()
        worker.publishing.wait(120)            # the XPUB takes a subscription only to a live session's topic
        sub.setsockopt(zmq.SUBSCRIBE, worker.outbox.topic)
        sub.connect(endpoint)
        drain(args.settle_s)                                   # the idle stream settles at its lead
        for _ in range(args.replies):
            while not sub.poll(100):                           # ask just after a packet, as a client would
                pass
            sub.recv_multipart()
            session = opened["session"]
            start = time.monotonic()
            utt = session.chat(args.text) if args.mode == "chat" else session.speak(args.text)
            seen.marks[utt] = marks = {}
            while "received" not in marks:
                if sub.poll(50):
                    pkt, _ = decode_media(sub.recv_multipart())
                    if pkt.type in ("audio", "video") and pkt.utt == utt:
                        marks["received"] = time.monotonic()
            ready = [t for t in seen.readies if start <= t <= marks.get("chunk_start", marks["received"])]
            if ready:
                marks["ready"] = ready[-1]
            rows.append({part: round((marks[part] - start) * 1e3, 1) if part in marks else None for part in PARTS})
            worker.interrupt()
            drain(args.gap_s)
    finally:
        worker.close()
        worker.join(10.0)
        publisher.stop()
        publisher.join(5.0)
        sub.close(linger=0)
        ctx.term()
    later = rows[1:] or rows
    medians = {part: round(statistics.median(r[part] for r in later if r[part] is not None), 1)
               for part in PARTS if any(r[part] is not None for r in later)}
    result = {"model": args.model, "device": args.device, "mode": args.mode, "replies": rows,
              "medians_after_the_first": medians}
    print(" ".join(f"{p:>12}" for p in PARTS))
    for r in rows:
        print(" ".join(f"{r[p]!s:>12}" for p in PARTS))
    print("medians (replies 2 on):", result["medians_after_the_first"])
    write_json(args.json_path, result)
    return result


if __name__ == "__main__":
    main()
