"""A replica killed mid-reply, as its client sees it: `python -m engine_core.daemon.bench_failover`.

    python -m engine_core.daemon.bench_failover --model tiny --replicas 2 --trials 3

Starts a Ray cluster on this machine (`ray start --head --block`, its own process group and token, taken down at the
end; engine_core/daemon/ray_head.py), then `xstreamer serve --ray 127.0.0.1:PORT --replicas N --model M` (engine_core/daemon/ray_replicas.py). Each trial opens
one session per replica with the Python SDK (the daemon spreads them one a replica), has each speak a long line,
and once the replies are on air kills one replica's process (SIGKILL); it then times, for the session that
lived there, the kill -> the `moved` event -> its next video frame ("media again"), checks that the other
session never paused longer than a chunk, and waits for the daemon's new replica in its place before the next
trial.
Prints the figures (and writes JSON with --json); nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import threading
import time

from engine_core.bench.report import write_json
from engine_core.daemon.ray_head import RayHead
from sdk.client import Client
from sdk.launcher import DaemonProcess

LINE = " ".join(["This reply is still on air when its replica goes away."] * 8)
NAMESPACE = "xstreamer"


def _replicas(address: str, n: int) -> list:
    import ray

    if not ray.is_initialized():
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=False)
    return [ray.get_actor(f"xstreamer-replica-{i}", namespace=NAMESPACE) for i in range(n)]


def _pid(actor, timeout: float = 5.0) -> int | None:
    import ray

    try:
        return int(ray.get(actor.info.remote(), timeout=timeout)["pid"])
    except Exception:
        return None


def trial(control: str, actors: list, victim: int) -> dict:
    """One kill: sessions on every replica speaking; replica `victim` SIGKILLed; the moved session's times."""
    pid = _pid(actors[victim])
    clients = [Client(control, client_name=f"failover-{i}", timeout=60) for i in range(len(actors))]
    for c in clients:
        c.connect()
    sessions = [c.open_session() for c in clients]
    seen: dict[int, dict] = {i: {"moved": None, "media_after": None, "longest_pause": 0.0} for i in range(len(sessions))}
    killed = [0.0]
    stop = threading.Event()

    def read(i: int, s) -> None:
        last = None
        while not stop.is_set():
            item = s.recv(timeout=0.1)
            if item is None:
                continue
            pkt, _ = item
            now = time.monotonic()
            if pkt.type == "video":
                if killed[0] and last is not None:
                    seen[i]["longest_pause"] = max(seen[i]["longest_pause"], now - last)
                last = now
                if seen[i]["moved"] is not None and seen[i]["media_after"] is None:
                    seen[i]["media_after"] = now
            if pkt.type == "event" and pkt.event == "moved":
                seen[i]["moved"] = now
                seen[i]["reason"] = pkt.reason

    try:
        utts = [s.speak(LINE) for s in sessions]
        on_air = set()
        while len(on_air) < len(sessions):                 # every reply's first audio is out
            for i, s in enumerate(sessions):
                item = s.recv(timeout=0.05)
                if item is not None and item[0].type == "audio" and item[0].utt == utts[i]:
                    on_air.add(i)
        readers = [threading.Thread(target=read, args=(i, s), daemon=True) for i, s in enumerate(sessions)]
        for r in readers:
            r.start()
        time.sleep(1.0)
        killed[0] = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(v["media_after"] for v in seen.values()):
            time.sleep(0.05)
        time.sleep(2.0)
        stop.set()
        for r in readers:
            r.join(5)
    finally:
        for s in sessions:
            try:
                s.close()
            except Exception:
                pass
        for c in clients:
            c.close()
    moved = [i for i, v in seen.items() if v["moved"] is not None]
    out = {"victim": f"replica-{victim}", "pid": pid, "moved_sessions": len(moved)}
    if moved:
        v = seen[moved[0]]
        out["moved_event_ms"] = round((v["moved"] - killed[0]) * 1e3, 1)
        out["media_again_ms"] = round((v["media_after"] - killed[0]) * 1e3, 1) if v["media_after"] else None
        out["reason"] = v.get("reason", "")
    others = [v["longest_pause"] for i, v in seen.items() if i not in moved]
    out["other_sessions_longest_pause_ms"] = round(max(others) * 1e3, 1) if others else None
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--cpus", type=int, default=4, help="CPUs the local Ray cluster offers")
    ap.add_argument("--replica-cpus", type=float, default=1.0)
    ap.add_argument("--json", dest="json_path", default=None)
    args = ap.parse_args(argv)
    head = RayHead(args.cpus)                  # (a cluster of this machine with a token of its own)
    os.environ.update(head.env())              # (this process and the daemon it starts connect with the token)
    results: list[dict] = []
    daemon = None
    try:
        daemon = DaemonProcess(model=args.model, ready_timeout=600, extra_args=[
            "--ray", head.address, "--replicas", str(args.replicas), "--replica-cpus", str(args.replica_cpus)]).start()
        actors = _replicas(head.address, args.replicas)
        for t in range(args.trials):
            victim = t % args.replicas
            r = trial(daemon.control, actors, victim)
            results.append(r)
            print(f"trial {t + 1}: killed {r['victim']} (pid {r['pid']}): moved event {r.get('moved_event_ms')} ms, "
                  f"media again {r.get('media_again_ms')} ms after the kill; the other sessions' longest pause "
                  f"{r['other_sessions_longest_pause_ms']} ms", flush=True)
            deadline = time.monotonic() + 300          # the daemon starts a new replica; wait until it answers
            while time.monotonic() < deadline:
                time.sleep(0.5)
                try:
                    actors[victim] = _replicas(head.address, args.replicas)[victim]
                except ValueError:                      # (not named yet)
                    continue
                if _pid(actors[victim], 2.0) not in (None, r["pid"]):
                    break
            time.sleep(1.5)                             # (the daemon's check for it runs every half second)
    finally:
        if daemon is not None:
            daemon.stop()
        try:
            import ray

            ray.shutdown()
        except Exception:
            pass
        head.stop()
    again = [r["media_again_ms"] for r in results if r.get("media_again_ms")]
    result = {"model": args.model, "replicas": args.replicas, "trials": results,
              "media_again_ms_median": round(statistics.median(again), 1) if again else None,
              "media_again_ms_max": max(again) if again else None}
    print(f"media again after a replica was killed: median {result['media_again_ms_median']} ms, "
          f"max {result['media_again_ms_max']} ms over {len(again)} kills")
    write_json(args.json_path, result)
    return result


if __name__ == "__main__":
    main()
