"""Fuzz a live daemon with N random and mutated control messages and print what came back:

    .venv/bin/python tests/fuzz_daemon.py --messages 10000 [--model tiny] [--json out.json]

The generator is tests/test_daemon_fuzz.py's (hypothesis, derandomized: the same messages on every run): noise
(random frames, mutated valid headers, random header maps, on made-up sessions), well-formed and mutated
requests on a live session the fuzzing connection holds (`resume` with its secret), and a budget of `open`s
with random personas and mutated portraits. Afterwards: the daemon is still up, the live session still streams
and speaks, and a new client is served normally. Prints the counts (messages, replies by kind, errors by code)
and exits 1 if any check fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from sdk.client import Client  # noqa: E402
from sdk.launcher import DaemonProcess  # noqa: E402
from sdk.protocol.messages import Hello, Resume  # noqa: E402
from test_daemon_fuzz import CODES, SENT, fuzz_batches, fuzz_sessions_gone  # noqa: E402
from test_daemon_helpers import RawControl, collect_until, is_end  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    batches = max(1, args.messages // 10)
    checks: dict[str, bool] = {}
    t0 = time.monotonic()
    with DaemonProcess(model=args.model, extra_args=["--max-sessions", "2", "--client-rate", "100000",
                                                     "--session-queue", "1000"]) as d:
        with Client(d.control, client_name="fuzz-live") as client, client.open_session() as s:
            collect_until(s, lambda p: p.type == "video")
            raw = RawControl(d.control)
            try:
                raw.call(Hello(req=0, versions=[2]))
                raw.call(Resume(req=0, session=s.id, secret=s.info.secret))
                fuzz_batches(raw, s.id, batches)
            finally:
                raw.close()
            fuzz_s = time.monotonic() - t0
            checks["daemon_alive"] = d.alive()
            checks["live_session_answers_ping"] = client.ping(session=s.id).type == "pong"
            checks["fuzzed_sessions_closed"] = fuzz_sessions_gone(d.control)
            s.interrupt()
            utt = s.speak("Still here.")
            checks["live_session_still_speaks"] = collect_until(s, is_end(utt)).text(utt) == "Still here."
        with Client(d.control, client_name="after-fuzz") as fresh, fresh.open_session() as s2:
            utt = s2.speak("A new client after the fuzz.")
            checks["new_client_served"] = collect_until(s2, is_end(utt)).text(utt) == "A new client after the fuzz."
        checks["daemon_alive_at_the_end"] = d.alive()
    replies = SENT["replies"]
    errors = sum(CODES.values())
    result = {"messages": SENT["messages"], "seconds": round(fuzz_s, 1), "replies": replies,
              "typed_errors": errors, "error_codes": dict(sorted(CODES.items(), key=lambda kv: -kv[1])),
              "live_messages": SENT["live"], "live_acks": SENT["live_acks"], "opens": SENT["open"],
              "opened": SENT["opened"], "checks": checks}
    print(f"fuzz: {result['messages']} messages in {result['seconds']} s ({args.model}); {replies} replies, "
          f"{errors} typed errors, {replies - errors} other replies (acks, pongs, opened, welcome)")
    print(f"  on the live session: {SENT['live']} messages, {SENT['live_acks']} acked; opens: {SENT['open']} sent, "
          f"{SENT['opened']} opened")
    for code, n in result["error_codes"].items():
        print(f"  {code:20s} {n}")
    for name, ok in checks.items():
        print(f"  check {name}: {'ok' if ok else 'FAILED'}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
