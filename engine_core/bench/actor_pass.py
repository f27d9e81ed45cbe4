"""Micro-benchmark of one Actor pass at a preset's shape (random weights):

    python -m engine_core.bench.actor_pass [--preset paper] [--device cuda] [--passes 20] [--profile] [--attention]

With a full KV cache and 1 to steps + 1 chunks in the pass (each writing the clean chunk before it, as a
stream's passes do, except the one-chunk pass): ms per pass eagerly, replayed from the CUDA graph
(engine_core/actor/graphs.py), replayed with the blocks' pointwise regions fused (engine_core/fusion.py), and
with, in addition, the self-attention without a mask (masks.ChunkSpans; the default on CUDA), next to the floors
the weights' bytes and the pass's FLOPs set. `--profile` adds the CUDA kernels that take a one-chunk pass's time
(the default path), grouped by name; `--attention` times one layer's self- and cross-attention at each pass's
shape, several ways (µs a call, 40 calls replayed from a CUDA graph). `xstreamer bench` times the same passes
inside the engine; this isolates them.
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from typing import Callable

import torch

from engine_core.actor.layers import additive_mask, attention, span_attention
from engine_core.actor.masks import IDENTITY, ChunkSpans, cross_attention_mask, self_attention_mask
from engine_core.actor.model import Actor, blank_pass
from engine_core.config import ModelConfig

from .probes import mean_ms_per_call


def _inputs(cfg: ModelConfig, m: int, dev, dtype):
    """Random inputs of a pass over m chunks, every Thinker slot filled."""
    x, sigma, cond = blank_pass(cfg, m, dev, dtype)
    for t in (x, cond.speech, cond.hidden):
        t.normal_()
    cond.hidden_mask.fill_(True)
    return x, sigma.uniform_(), cond


def _us_per_call(fn: Callable[[], object], calls: int = 40, replays: int = 10) -> float:
    """µs per call of `fn`, `calls` calls captured in one CUDA graph (no launch gaps, as inside a pass)."""
    for _ in range(3):
        fn()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            fn()
    graph.replay()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(replays):
        graph.replay()
    stop.record()
    stop.synchronize()
    return round(start.elapsed_time(stop) * 1e3 / (replays * calls), 1)


def _attention_rows(cfg: ModelConfig, dev, dtype) -> dict:
    """One layer's attention at each pass's shape (a full cache), several ways: µs a call."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    a, lc, w, p = cfg.actor, cfg.chunk_tokens, cfg.window, cfg.tokens_per_frame
    r, mm = cfg.cross_chunks, cfg.max_hidden_tokens
    rows = {}
    for m in range(1, cfg.steps + 2):
        first = 2 * w
        q_chunk = torch.arange(first, first + m).repeat_interleave(lc)
        k_chunk = torch.cat([torch.arange(first - w, first).repeat_interleave(lc), torch.full((p,), IDENTITY),
                             q_chunk])
        self_mask = additive_mask(self_attention_mask(q_chunk, k_chunk, w).to(dev), dtype)
        spans = ChunkSpans.after_full_cache(m, lc, w, p)
        q = torch.randn(1, a.heads, m * lc, a.head_dim, device=dev, dtype=dtype)
        k, v = (torch.randn(1, a.kv_heads, k_chunk.numel(), a.head_dim, device=dev, dtype=dtype) for _ in range(2))
        ctx_chunk = torch.cat([torch.full((1,), IDENTITY), (first - r + torch.arange(r + m)).repeat_interleave(mm)])
        valid = torch.rand(1, ctx_chunk.numel()) < 0.7
        cross = cross_attention_mask(q_chunk, ctx_chunk, valid, r)
        cross[:, :, 0] = True
        cross = additive_mask(cross.to(dev), dtype)
        xk, xv = (torch.randn(1, a.kv_heads, ctx_chunk.numel(), a.head_dim, device=dev, dtype=dtype)
                  for _ in range(2))

        def ways(backend):
            return sdpa_kernel([backend]) if backend is not None else nullcontext()
        row = {}
        for name, fn, backend in (
                ("self, mask", lambda: attention(q, k, v, self_mask), None),
                ("self, spans", lambda: span_attention(q, k, v, spans), None),
                ("self, spans, flash", lambda: span_attention(q, k, v, spans), SDPBackend.FLASH_ATTENTION),
                ("self, spans, cudnn", lambda: span_attention(q, k, v, spans), SDPBackend.CUDNN_ATTENTION),
                ("cross, mask", lambda: attention(q, xk, xv, cross), None),
                ("cross, efficient", lambda: attention(q, xk, xv, cross), SDPBackend.EFFICIENT_ATTENTION),
                ("cross, math", lambda: attention(q, xk, xv, cross), SDPBackend.MATH)):
            try:
                with ways(backend):
                    row[name] = _us_per_call(fn)
            except RuntimeError as exc:                     # a backend that refuses the shape
                row[name] = f"n/a ({str(exc).splitlines()[0][:60]})"
        rows[m] = row
    return rows


@torch.no_grad()
def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--passes", type=int, default=20)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--attention", action="store_true")
    args = ap.parse_args(argv)
    cfg = ModelConfig.from_name(args.preset)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    dtype = torch.bfloat16 if cuda else torch.float32
    actor = Actor.build(cfg, dev, dtype).eval()
    cache = actor.new_cache()
    actor.prefill_identity(cache, torch.zeros(1, cfg.vae.latent_channels, cfg.latent_hw, cfg.latent_hw,
                                              device=dev, dtype=dtype))
    first = cfg.window
    for i in range(cfg.window):                                        # a full cache, as a running stream has
        x, sig, cond = _inputs(cfg, 1, dev, dtype)
        actor(x, sig, cond, i, cache=cache, write_chunks=1)
    full = list(cache.chunks)
    n_bytes = sum(p.numel() * p.element_size() for p in actor.parameters())
    n_matmul = sum(p.numel() for n, p in actor.blocks.named_parameters() if n.endswith("weight") and p.ndim == 2)
    rows = {}
    for m in range(1, cfg.steps + 2):
        x, sig, cond = _inputs(cfg, m, dev, dtype)
        write = 1 if m > 1 else 0

        def one() -> None:
            cache.chunks = list(full)                  # a write's commit undone: the cache stays full before `first`
            actor(x, sig, cond, first, cache=cache, write_chunks=write)
        row = {}
        for name, graphs, fuse, spans in (("eager", False, False, False), ("graph", True, False, False),
                                          ("fused", True, None, False), ("spans", True, None, True)):
            actor.cuda_graphs, actor.fuse, actor.spans = graphs, fuse, spans
            row[name] = round(mean_ms_per_call(one, args.passes, cuda), 2)
        tokens = m * cfg.chunk_tokens
        row["tokens"] = tokens
        row["flop_floor_ms_700T"] = round(2 * n_matmul * tokens / 700e12 * 1e3, 2)
        rows[m] = row
    result = {"preset": args.preset, "device": torch.cuda.get_device_name() if cuda else "cpu",
              "weights_gb": round(n_bytes / 1e9, 2), "weight_read_floor_ms_4.8TBps": round(n_bytes / 4.8e12 * 1e3, 2),
              "passes": rows}
    print(f"{args.preset} Actor: {n_bytes / 1e9:.2f} GB of weights -> reading them takes "
          f"{n_bytes / 4.8e12 * 1e3:.2f} ms at 4.8 TB/s")
    print(f"{'chunks':>6} {'tokens':>7} {'eager ms':>9} {'graph ms':>9} {'graph+fused ms':>15} "
          f"{'+ no mask ms':>13} {'FLOP floor ms':>14}")
    for m, row in rows.items():
        print(f"{m:>6} {row['tokens']:>7} {row['eager']:>9} {row['graph']:>9} {row['fused']:>15} {row['spans']:>13} "
              f"{row['flop_floor_ms_700T']:>14}")
    if args.attention and cuda:
        result["attention_us"] = _attention_rows(cfg, dev, dtype)
        names = list(result["attention_us"][1])
        print("one layer's attention, µs a call (a full cache):")
        print(f"{'chunks':>6} " + " ".join(f"{n:>20}" for n in names))
        for m, row in result["attention_us"].items():
            print(f"{m:>6} " + " ".join(f"{str(row[n])[:20]:>20}" for n in names))
    if args.profile and cuda:
        from torch.profiler import ProfilerActivity, profile

        x, sig, cond = _inputs(cfg, 1, dev, dtype)
        actor.cuda_graphs, actor.fuse, actor.spans = False, None, True   # the default's kernels, one by one
        cache.chunks = list(full)
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(5):
                actor(x, sig, cond, first, cache=cache)
            torch.cuda.synchronize()
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=18, max_name_column_width=60))
    return result


if __name__ == "__main__":
    main()
