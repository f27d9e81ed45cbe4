"""Micro-benchmark of one Actor pass at a preset's shape (random weights):

    python -m engine_core.bench.actor_pass [--preset paper] [--device cuda] [--passes 20] [--profile]

With a full KV cache and 1 to steps + 1 chunks in the pass (each writing the clean chunk before it, as a
stream's passes do, except the one-chunk pass): ms per pass eagerly, replayed from the CUDA graph
(engine_core/actor/graphs.py), and replayed with the blocks' pointwise regions fused (engine_core/fusion.py; the
default on CUDA), next to the floors the weights' bytes and the pass's FLOPs set. `--profile` adds the CUDA
kernels that take a two-chunk pass's time with the fused regions, grouped by name. `xstreamer bench`
times the same passes inside the engine; this isolates them.
"""

from __future__ import annotations

import argparse

import torch

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


@torch.no_grad()
def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--passes", type=int, default=20)
    ap.add_argument("--profile", action="store_true")
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
    n_bytes = sum(p.numel() * p.element_size() for p in actor.parameters())
    n_matmul = sum(p.numel() for n, p in actor.blocks.named_parameters() if n.endswith("weight") and p.ndim == 2)
    rows = {}
    for m in range(1, cfg.steps + 2):
        x, sig, cond = _inputs(cfg, m, dev, dtype)
        write = 1 if m > 1 else 0

        def one() -> None:
            actor(x, sig, cond, first, cache=cache, write_chunks=write)
        row = {}
        for name, graphs, fuse in (("eager", False, False), ("graph", True, False), ("fused", True, None)):
            actor.cuda_graphs, actor.fuse = graphs, fuse
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
    print(f"{'chunks':>6} {'tokens':>7} {'eager ms':>9} {'graph ms':>9} {'graph+fused ms':>15} {'FLOP floor ms':>14}")
    for m, row in rows.items():
        print(f"{m:>6} {row['tokens']:>7} {row['eager']:>9} {row['graph']:>9} {row['fused']:>15} "
              f"{row['flop_floor_ms_700T']:>14}")
    if args.profile and cuda:
        from torch.profiler import ProfilerActivity, profile

        x, sig, cond = _inputs(cfg, 2, dev, dtype)
        actor.cuda_graphs, actor.fuse = False, None          # the fused kernels, launched one by one
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(5):
                actor(x, sig, cond, first, cache=cache, write_chunks=1)
            torch.cuda.synchronize()
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=18, max_name_column_width=60))
    return result


if __name__ == "__main__":
    main()
