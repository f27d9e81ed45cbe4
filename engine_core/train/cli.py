"""`xstreamer train`: train the Actor (diffusion forcing) or the VAE on a dataset directory.

    xstreamer train --what actor|vae --data DIR --preset P --out DIR [--resume] [--max-minutes M]
    xstreamer train --what actor --data BANK.npz --preset default --out DIR [--clips N]   # the motion Actor
                    [--steps N] [--device cuda] [--batch B] [--lr LR] [--vae PATH] [--no-progress]
                    [--init ACTOR] [--mouth-weight W] [--sampler-levels P]

Prints one JSON line with the result and writes OUT/loss.png. `--max-minutes` ends the run with its state
saved; run again with `--resume` to continue (how long trainings are split into <= 8-minute pieces).
"""

from __future__ import annotations

import argparse
import json


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `xstreamer train`."""
    parser.add_argument("--what", choices=("actor", "vae"), default="actor", help="which model to train")
    parser.add_argument("--data", required=True, help="corpus directory with manifest.json; for a motion-space "
                        "preset (default) a speech bank file (xstreamer data bank)")
    parser.add_argument("--clips", type=int, default=None,
                        help="motion Actor: clips drawn from the bank's utterances (default 3000)")
    parser.add_argument("--preset", default="default",
                        help="model preset: tiny | tiny-motion | default | pixel (| paper for actor)")
    parser.add_argument("--out", required=True, help="output directory (weights, state, loss.jsonl, loss.png)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt")
    parser.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget of this run")
    parser.add_argument("--steps", type=int, default=None, help="total optimiser steps")
    parser.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--vae", default=None, help="actor: frozen VAE weights (vae.safetensors or its dir)")
    parser.add_argument("--init", default=None, help="actor: start from these weights (fine-tune; same config)")
    parser.add_argument("--mouth-weight", type=float, default=None,
                        help="actor: extra loss weight on the mouth's latent cells (default 0)")
    parser.add_argument("--sampler-levels", type=float, default=None,
                        help="actor: share of chunks trained at the inference sampler's noise levels (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Run the training; returns 0 (errors propagate as typed exceptions)."""
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.what == "vae":
        from engine_core.train.vae import train_vae

        kw = {k: v for k, v in (("steps", args.steps), ("batch", args.batch)) if v is not None}
        res = train_vae(args.data, args.out, args.preset, device, args.max_minutes, resume=args.resume,
                        progress=not args.no_progress, **kw)
    else:
        from engine_core.train.actor import ActorTrainOptions, train_actor
        from engine_core.train.plot import plot_loss

        opt = ActorTrainOptions()
        for name in ("steps", "batch", "lr", "mouth_weight", "sampler_levels", "clips"):
            if getattr(args, name) is not None:
                setattr(opt, name, getattr(args, name))
        res = train_actor(args.data, args.out, args.preset, device, args.max_minutes, resume=args.resume,
                          vae_path=args.vae, options=opt, progress=not args.no_progress, init=args.init)
        try:
            res["plot"] = str(plot_loss(f"{args.out}/loss.jsonl"))
        except ValueError:
            pass
    print(json.dumps(res))
    return 0
