"""`xstreamer serve`: load the engine once and run the daemon until Ctrl-C / SIGTERM.

When both sockets are bound it prints exactly one line to stdout and flushes it:

    xstreamer daemon ready control=tcp://HOST:PORT media=tcp://HOST:PORT model=NAME

(port 0 picks a free port; the line shows the real one). Logs go to stderr.

Off loopback (`--host` other than 127.0.0.1/::1/localhost) it refuses to start unless given `--keys DIR`
(CURVE on both sockets; `xstreamer keys`) or `--insecure` (plain ZeroMQ to anyone who can reach the address,
logged loudly).

With `--exit-with-stdin` (what sdk/launcher.py passes) the daemon also stops when its standard input closes:
the launcher holds the pipe's other end, so the daemon ends with the process that started it
(engine_core/daemon/parent_watch.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from sdk.protocol.constants import (CLIENT_RATE, CLIENT_SESSIONS, DEFAULT_CONTROL_PORT, DEFAULT_HOST,
                                    DEFAULT_MEDIA_PORT, LEAD_MS, SESSION_QUEUE, SESSION_TIMEOUT_S)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help="interface to bind (default: loopback; others need --keys or --insecure)")
    parser.add_argument("--keys", default=None, metavar="DIR",
                        help="CURVE keys made by `xstreamer keys` (server keypair + authorized client keys): "
                             "both sockets encrypt and only listed clients get in")
    parser.add_argument("--insecure", action="store_true",
                        help="serve plain ZeroMQ off loopback WITHOUT keys: anyone who can reach the address "
                             "can use the daemon (a loud warning is logged)")
    parser.add_argument("--control-port", type=int, default=DEFAULT_CONTROL_PORT,
                        help="ROUTER port (0 = any free port)")
    parser.add_argument("--media-port", type=int, default=DEFAULT_MEDIA_PORT,
                        help="PUB port (0 = any free port)")
    parser.add_argument("--model", default="default", help="model preset (tiny/default/paper) or checkpoint dir")
    parser.add_argument("--device", default="auto", help="cpu, cuda, or auto")
    parser.add_argument("--devices", default=None,
                        help="split the model: Thinker on the first device, Actor + VAE on the second "
                             "(e.g. cuda:0,cuda:1); overrides --device")
    parser.add_argument("--max-sessions", type=int, default=8, help="sessions served at once")
    parser.add_argument("--capacity", default="auto", metavar="auto|calibrate|N",
                        help="sessions held in real time, past which an open gets `busy`: auto = the session "
                             "benchmark's figure for this model and device (engine_core/daemon/capacity.json), else "
                             "--max-sessions; calibrate = measured at start-up (seconds per session); N = as given")
    parser.add_argument("--client-sessions", type=int, default=CLIENT_SESSIONS,
                        help="sessions one client connection may hold")
    parser.add_argument("--client-rate", type=float, default=CLIENT_RATE,
                        help="requests a second one client connection may send (bursts of twice that)")
    parser.add_argument("--session-queue", type=int, default=SESSION_QUEUE,
                        help="turns (chat/speak/voice) of one session accepted and not yet ended")
    parser.add_argument("--session-timeout", type=float, default=SESSION_TIMEOUT_S,
                        help="close a session whose client sent nothing for this many seconds")
    parser.add_argument("--lead-ms", type=float, default=LEAD_MS,
                        help="how far generation may run ahead of real time (bounded lead)")
    parser.add_argument("--sndhwm", type=int, default=250,
                        help="media messages queued per subscriber before PUB drops for that subscriber only")
    parser.add_argument("--random-weights", action="store_true",
                        help="full shape with random weights: timing only (the paper preset's weights are not "
                             "public); the avatar's frames are noise and its voice silent")
    parser.add_argument("--thinker-weights", choices=["bf16", "int8"], default=None,
                        help="the glm4voice Thinker's decode step: bf16 or weight-only int8 (faster tokens, a little "
                             "less accurate; default: the model config's)")
    parser.add_argument("--glm4voice", metavar="DIR", default=None, help="a directory with GLM-4-Voice's published parts (glm-4-voice-9b, glm-4-voice-tokenizer, glm-4-voice-decoder) for a model whose Thinker is glm4voice (paper, voice)")
    parser.add_argument("--actor-tokens", choices=["on", "off"], default=None, help="on: the Actor writes and speaks the reply (its own text and audio tokens); off: the Thinker's are streamed (default: the model's)")
    parser.add_argument("--ray", metavar="ADDRESS", default=None,
                        help="run the engine as replicas on a Ray cluster (ADDRESS as `ray.init` takes it, e.g. "
                             "127.0.0.1:6379, or `local` for a cluster of this machine) behind this one endpoint; "
                             "sessions are spread by load and moved when a replica dies (engine_core/daemon/ray_replicas.py)")
    parser.add_argument("--replicas", type=int, default=2, help="with --ray: engine replicas (one GPU each on CUDA)")
    parser.add_argument("--replica-cpus", type=float, default=1.0, help="with --ray on CPU: cores per replica")
    parser.add_argument("--exit-with-stdin", action="store_true",
                        help="stop when standard input closes (a launcher holds a pipe on it: the daemon then "
                             "ends with the process that started it, on every OS)")
    parser.add_argument("--log-level", default="INFO")


def _device(name: str) -> str:
    if name != "auto":
        return name
    try:
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"
    except Exception:
        return "cpu"


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if min(args.max_sessions, args.client_sessions, args.session_queue) < 1 or args.client_rate <= 0:
        print("error: --max-sessions, --client-sessions, --session-queue and --client-rate must be positive",
              file=sys.stderr)
        return 2
    from .capacity import parse_spec, resolve

    try:
        parse_spec(args.capacity)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "ray", None) and args.replicas < 1:
        print("error: --replicas must be positive", file=sys.stderr)
        return 2
    from .memory import limit_arenas
    from .security import ServePolicyError, serve_policy

    limit_arenas()     # before any thread allocates: freed session memory can then go back to the OS

    try:   # before the model loads: a refused option costs nothing
        policy = serve_policy(args.host, args.keys, args.insecure)
    except ServePolicyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    serving = threading.Event()
    if getattr(args, "exit_with_stdin", False):
        from .parent_watch import watch_stdin

        # Loading the model cannot be interrupted: a launcher gone by then ends the process at once.
        watch_stdin(lambda: stop.set() if serving.is_set() else os._exit(0))
    from engine_core.engine import Engine

    from .server import Daemon, DaemonConfig

    try:
        extra = {"random_weights": True} if args.random_weights else {}
        load_kw = dict(thinker_weights=args.thinker_weights, glm4voice=getattr(args, "glm4voice", None),
                       actor_tokens=None if getattr(args, "actor_tokens", None) is None else args.actor_tokens == "on",
                       max_batch=args.max_sessions, **extra)
        if getattr(args, "ray", None):
            from .ray_replicas import RemoteEngine

            engine = RemoteEngine(args.ray, args.model, replicas=args.replicas, device=_device(args.device),
                                  replica_cpus=args.replica_cpus, load_kw=load_kw)
        else:
            engine = Engine.load(model=args.model, device=_device(args.device), devices=args.devices, **load_kw)
    except Exception as exc:
        print(f"error: could not load model {args.model!r}: {exc}", file=sys.stderr)
        return 1
    try:
        capacity = resolve(args.capacity, engine, args.model, getattr(engine, "device", _device(args.device)),
                           args.max_sessions, replicas=int(getattr(engine, "live_replicas", lambda: 1)()))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("xstreamer.daemon").info("capacity: %d sessions in real time (%s: %s)", capacity.sessions,
                                               capacity.source, capacity.detail)
    cfg = DaemonConfig(host=args.host, control_port=args.control_port, media_port=args.media_port,
                       model_name=args.model, max_sessions=args.max_sessions,
                       session_timeout_s=args.session_timeout, lead_ms=args.lead_ms,
                       sndhwm=args.sndhwm, client_sessions=args.client_sessions,
                       client_rate=args.client_rate, client_burst=int(max(1, 2 * args.client_rate)),
                       session_queue=args.session_queue, capacity=capacity)
    daemon = Daemon(engine, cfg, keys=policy.keys)
    try:
        daemon.start()
    except Exception as exc:
        print(f"error: could not bind the daemon's sockets: {exc}", file=sys.stderr)
        return 1

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    serving.set()
    sys.stdout.write(daemon.ready_line() + "\n")
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    daemon.stop()
    if hasattr(engine, "shutdown"):
        engine.shutdown()
    return 0
