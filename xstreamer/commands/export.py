"""`xstreamer export RUN_DIR --out DIR`: a training run's Actor (+ its VAE) as a shippable model directory.

The Actor's floating tensors are cast to --dtype (float16 by default: half the size, what the embedded default
ships in engine_core/weights/default); the config and step stay in the metadata. `Engine.load(DIR)` loads it.
--frame-speech-gain, --sample-shift and --noise-scale set the exported config's inference-only settings (how the
trained weights are sampled; see docs/engine.md); each left out keeps the run's.
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="a training run's output directory (actor.safetensors [+ vae.safetensors])")
    parser.add_argument("--out", required=True, help="model directory to write")
    parser.add_argument("--dtype", choices=("float16", "bfloat16", "float32"), default="float16")
    parser.add_argument("--frame-speech-gain", type=float, default=None,
                        help="inference-only gain of the frame-speech path (default: keep the run's)")
    parser.add_argument("--sample-shift", type=float, default=None,
                        help="inference-only time shift of the denoising noise levels (default: keep the run's)")
    parser.add_argument("--noise-scale", type=float, default=None,
                        help="inference-only std of the starting noise, a sampling temperature (default: keep the run's)")


def run(args: argparse.Namespace) -> int:
    import torch

    from engine_core.checkpoint import export_model
    from engine_core.config import INFERENCE_ONLY

    settings = {name: getattr(args, name) for name in INFERENCE_ONLY}     # each option's dest is its name
    for path in export_model(args.run, args.out, getattr(torch, args.dtype), **settings):
        print(f"{path}  {path.stat().st_size / 1e6:.1f} MB")
    return 0
