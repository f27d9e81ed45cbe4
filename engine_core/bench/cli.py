"""`xstreamer bench`: speed of the engine on the daemon's own code path (Engine.load -> Session.next_chunk).

    xstreamer bench --preset default --device cpu
    xstreamer bench --preset paper --device cuda --seconds 60 --json docs/perf/paper-h100.json

Measures: load time; time from the end of the user's turn (the `chat`/`speak` call) to the first A/V chunk of
the reply; sustained generated fps over `--seconds` of stream with replies kept queued; Thinker ms/token
(decode steps of its language model); Actor ms per pass and per chunk; VAE decode ms per chunk; peak GPU
memory. Prints a table (and writes JSON with --json). Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from typing import Any

import torch

from .probes import Probes

DEFAULT_TEXT = "Hello! It is good to see you. Let me tell you about the weather today, it is sunny and warm."


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", "--model", dest="preset", default="default",
                        help="model preset or checkpoint dir (tiny | default | paper)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--devices", default=None, help="two devices for the Thinker/Actor split, e.g. cuda:0,cuda:1")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of stream to generate for fps")
    parser.add_argument("--mode", choices=["speak", "chat"], default=None,
                        help="speak (verbatim text) or chat (the Thinker writes the reply); default: chat on paper, "
                             "speak elsewhere")
    parser.add_argument("--text", default=DEFAULT_TEXT)
    parser.add_argument("--trials", type=int, default=3, help="first-packet latency trials")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", dest="json_path", default=None, help="write the results as JSON here")


def _largest_module(obj: Any) -> torch.nn.Module | None:
    """The Thinker's language model: the largest nn.Module reachable as an attribute of the Thinker."""
    best, best_n = None, 0
    seen: set[int] = set()
    stack = [obj]
    while stack:
        cur = stack.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, torch.nn.Module):
            n = sum(p.numel() for p in cur.parameters())
            if n > best_n:
                best, best_n = cur, n
            continue
        for value in list(vars(cur).values()) if hasattr(cur, "__dict__") else []:
            if isinstance(value, torch.nn.Module) or (hasattr(value, "__dict__") and not isinstance(value, type)
                                                        and type(value).__module__.startswith("engine_core")):
                stack.append(value)
    return best


def _tokens_of(args: tuple, kwargs: dict) -> int:
    ids = kwargs.get("input_ids", args[0] if args else None)
    if isinstance(ids, torch.Tensor):
        return int(ids.shape[-1])
    emb = kwargs.get("inputs_embeds")
    return int(emb.shape[-2]) if isinstance(emb, torch.Tensor) else 0


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _median(xs: list[float]) -> float | None:
    return round(statistics.median(xs), 3) if xs else None


def run_bench(args: argparse.Namespace) -> dict:
    from engine_core.engine import Engine  # heavy import: only when benchmarking

    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    mode = args.mode or ("chat" if args.preset == "paper" else "speak")
    t0 = time.perf_counter()
    load_kwargs = {"devices": args.devices} if args.devices else {}
    engine = Engine.load(args.preset, device=args.device, **load_kwargs)
    session = engine.open_session()
    load_s = time.perf_counter() - t0

    probes = Probes(cuda)
    lm = _largest_module(getattr(engine, "thinker", None))
    if lm is not None:
        probes.hook_module(lm, "thinker.forward", _tokens_of)
    actor = getattr(engine, "actor", None)
    if isinstance(actor, torch.nn.Module):
        probes.hook_module(actor, "actor.pass")
    vae = getattr(engine, "vae", None)
    if vae is not None and hasattr(vae, "decode"):
        probes.wrap_method(vae, "decode", "vae.decode")

    def say() -> int:
        return session.chat(args.text) if mode == "chat" else session.speak(args.text)

    # Warm-up: idle chunks and one short reply (compilation, allocator, caches).
    for _ in range(2):
        session.next_chunk()
    utt = say()
    for _ in range(400):
        chunk = session.next_chunk()
        if any(e.event == "utterance_end" and e.utt == utt for e in chunk.events):
            break
    _sync(args.device)
    probes.reset()
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    # 1. Time to first A/V packet: end of the user's turn -> the reply's first chunk is ready to publish.
    first_ms: list[float] = []
    for _ in range(args.trials):
        session.interrupt()
        session.next_chunk()
        _sync(args.device)
        start = time.perf_counter()
        utt = say()
        while True:
            chunk = session.next_chunk()
            if chunk.utt == utt:
                _sync(args.device)
                first_ms.append((time.perf_counter() - start) * 1e3)
                break
            if (time.perf_counter() - start) > 120:
                break

    # 2. Sustained generation: keep replies queued, count frames per wall-clock second.
    session.interrupt()
    session.next_chunk()
    probes.reset()
    _sync(args.device)
    frames = chunks = 0
    target_frames = int(args.seconds * 25)
    utt = say()
    start = time.perf_counter()
    while frames < target_frames:
        chunk = session.next_chunk()
        frames += chunk.num_frames
        chunks += 1
        if any(e.event == "utterance_end" and e.utt == utt for e in chunk.events):
            utt = say()
    _sync(args.device)
    wall = time.perf_counter() - start

    thinker = probes.get("thinker.forward")
    t_ms = thinker.durations_ms()
    decode_ms = [d for d, n in zip(t_ms, thinker.tokens) if n == 1]
    actor_ms = probes.get("actor.pass").durations_ms()
    vae_ms = probes.get("vae.decode").durations_ms()
    result = {
        "preset": args.preset,
        "device": torch.cuda.get_device_name() if cuda else f"cpu ({platform.processor() or platform.machine()}, "
                                                            f"{torch.get_num_threads()} threads)",
        "mode": mode,
        "load_s": round(load_s, 2),
        "stream_seconds": round(frames / 25, 2),
        "wall_seconds": round(wall, 2),
        "fps": round(frames / wall, 2),
        "realtime_factor": round(frames / 25 / wall, 3),
        "first_packet_ms": _median(first_ms),
        "first_packet_ms_all": [round(x, 1) for x in first_ms],
        "thinker_ms_per_token": _median(decode_ms),
        "thinker_decode_steps": len(decode_ms),
        "actor_ms_per_pass": _median(actor_ms),
        "actor_passes": len(actor_ms),
        "actor_ms_per_chunk": round(sum(actor_ms) / chunks, 3) if chunks and actor_ms else None,
        "vae_decode_ms_per_chunk": _median(vae_ms),
        "chunks": chunks,
        "chunk_frames": session.chunk_frames,
        "peak_gpu_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
    }
    probes.detach()
    session.close()
    return result


def print_table(result: dict) -> None:
    width = max(len(k) for k in result)
    print("-" * (width + 24))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print("-" * (width + 24))


def run(args: argparse.Namespace) -> int:
    result = run_bench(args)
    print_table(result)
    if args.json_path:
        with open(args.json_path, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0
