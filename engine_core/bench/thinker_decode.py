"""Micro-benchmark of one Thinker decode step at the paper's shape (random weights, CUDA):

    python -m engine_core.bench.thinker_decode [--steps 64] [--context 512]

Times, per token: transformers' forward with a DynamicCache (the reference path), the fast decoder
(engine_core/thinker/glm_fast.py) eager, from its CUDA graph over the whole static cache, with attention
spans, with fused regions, and with both (the default), and the default on weight-only int8 (`--thinker-weights
int8`), then a new turn's prefill (141 tokens, and as many as the
context) eager and padded to a width replayed from a graph (the default), and the token sampler over the
168,960-entry vocabulary (its device time: the decode loop does not wait for it). The same decoder is what
`xstreamer bench` runs inside the engine; this isolates its parts.
"""

from __future__ import annotations

import argparse

import torch

from .probes import mean_ms_per_call


def main() -> None:
    from transformers import DynamicCache

    from engine_core.thinker.glm4voice import Glm4VoiceThinker
    from engine_core.thinker.glm4voice_decode import decode_step, draw_token
    from engine_core.thinker.glm_fast import GlmFastDecoder, int8_step_weights

    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--max-len", type=int, default=8192, help="static cache of the fast decoder (the engine's)")
    ap.add_argument("--profile", action="store_true",
                    help="the CUDA kernels of the default step and of a padded prefill, by name")
    args = ap.parse_args()
    thinker = Glm4VoiceThinker.from_config(device="cuda", allow_silent_audio=True)
    model, dev = thinker.model, thinker.device
    prompt = torch.randint(0, 150000, (1, args.context), device=dev)
    rows = {}
    cache = DynamicCache()
    with torch.inference_mode():
        decode_step(model, prompt, cache, torch.arange(args.context, device=dev))
        pos = [args.context]

        def hf() -> None:
            decode_step(model, prompt[:, :1], cache, torch.tensor([pos[0]], device=dev))
            pos[0] += 1
        rows["hf DynamicCache (reference)"] = mean_ms_per_call(hf, args.steps, cuda=True)
    variants = {   # name -> GlmFastDecoder options; the last is the engine's default on CUDA
        "fast, eager": dict(use_cuda_graph=False, span_block=None, fuse=False),
        "fast, CUDA graph, whole cache": dict(use_cuda_graph=True, span_block=None, fuse=False),
        "fast, graph + spans of 512": dict(use_cuda_graph=True, span_block=512, fuse=False),
        "fast, graph + fused regions": dict(use_cuda_graph=True, span_block=None, fuse=True),
        "fast, graph + spans + fused (default)": dict(use_cuda_graph=True),
        "fast, default on int8 weights (weight_int8)": dict(use_cuda_graph=True, step_weights=int8_step_weights(model)),
    }
    for name, options in variants.items():
        fast = GlmFastDecoder(model, max_len=max(args.max_len, args.context + args.steps + 16), **options)
        fast.warm()
        fast.prefill(prompt)
        rows[name] = mean_ms_per_call(lambda: fast.step(prompt[:, :1]), args.steps, cuda=True)
        del fast
    del variants                        # the int8 weights
    torch.cuda.empty_cache()

    for pad in (False, True):           # a new turn's prefill, after the context: eager, then padded from graphs
        default = GlmFastDecoder(model, max_len=args.max_len, pad_prefill=pad)
        default.warm()
        default.prefill(prompt)
        for n in (141, args.context):

            def prefill(n: int = n) -> None:
                default.truncate(args.context)
                default.prefill(prompt[:, :n])
            how = "padded, graph (default)" if pad else "eager"
            rows[f"prefill of {n} tokens at {args.context}, {how} (ms, once)"] = mean_ms_per_call(prefill, 5, cuda=True)
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        default.use_graph = False           # the same kernels as the graph's, seen one by one
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(5):
                default.step(prompt[:, :1])
            torch.cuda.synchronize()
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=16, max_name_column_width=60))
        padded = GlmFastDecoder(model, max_len=args.max_len, use_cuda_graph=False, pad_prefill=True)
        padded.prefill(prompt)                    # the same kernels as a padded prefill's graph, seen one by one
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(5):
                padded.truncate(args.context)
                padded.prefill(prompt[:, :141])
            torch.cuda.synchronize()
        print("a padded prefill of 141 tokens (width 192) at", args.context)
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=16, max_name_column_width=60))
        del padded
    del default
    logits = torch.randn(model.config.vocab_size, device=dev)
    mask = thinker._masks["audio"]
    rows["sampler (top-p 0.8, on the device)"] = mean_ms_per_call(lambda: draw_token(logits, mask, 0.2, 0.8, 0.5),
                                                                    args.steps, cuda=True)
    n_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    print(f"weights {n_bytes / 1e9:.2f} GB -> floor {n_bytes / 3.0e12 * 1e3:.2f} ms/token at 3.0 TB/s")
    for name, ms in rows.items():
        print(f"{name:<58} {ms:8.2f} ms" + ("" if "prefill" in name else "/token"))


if __name__ == "__main__":
    main()
