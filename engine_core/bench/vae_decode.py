"""Micro-benchmark of the VAE decode of one chunk at a preset's shape (random weights):

    python -m engine_core.bench.vae_decode [--preset paper] [--device cuda] [--calls 20] [--profile]

Times `decode_frames` (the engine's call: latents -> uint8 frames on the host) and `decode` (on the device: on CUDA
replayed from a CUDA graph, codecs/ltx.py), then, on CUDA, `decode` eagerly, and eagerly with cuDNN's benchmark mode
(its convolution kernels chosen by timing them). `--profile` adds the CUDA kernels of one eager decode, by name.
`xstreamer bench` times the same decode inside the engine; this isolates it.
"""

from __future__ import annotations

import argparse

import torch

from engine_core.config import ModelConfig
from engine_core.engine.engine import build_vae

from .probes import mean_ms_per_call


@torch.inference_mode()
def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)
    cfg = ModelConfig.from_name(args.preset)
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    vae = build_vae(cfg, None, str(dev), warnings=[], random_weights=True)
    latents = torch.randn(cfg.latent_frames, cfg.vae.latent_channels, cfg.latent_hw, cfg.latent_hw, device=dev)
    rows = {"decode_frames (the engine's call)": mean_ms_per_call(lambda: vae.decode_frames(latents), args.calls,
                                                                  cuda)}
    rows["decode (CUDA graph on CUDA: the default)"] = mean_ms_per_call(lambda: vae.decode(latents), args.calls, cuda)
    if cuda:
        vae.cuda_graphs = False
        rows["decode, eager"] = mean_ms_per_call(lambda: vae.decode(latents), args.calls, cuda)
        with torch.backends.cudnn.flags(enabled=True, benchmark=True):
            rows["decode, eager, cuDNN benchmark mode"] = mean_ms_per_call(lambda: vae.decode(latents), args.calls,
                                                                           cuda)
    print(f"{args.preset} VAE decode of one chunk ({cfg.latent_frames} latent frames -> {cfg.chunk_frames} frames "
          f"of {cfg.vae.image_size}x{cfg.vae.image_size}):")
    for name, ms in rows.items():
        print(f"  {name:<42} {ms:8.2f} ms")
    if args.profile and cuda:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(5):
                vae.decode(latents)
            torch.cuda.synchronize()
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=16, max_name_column_width=60))
    return rows


if __name__ == "__main__":
    main()
