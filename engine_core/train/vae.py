"""Train SmallVAE on the frames of a corpus directory; precompute latents for Actor training.

Corpus layout (written by engine_core.data.synth): DIR/manifest.json = {"version", "size", "clips": [{"id",
"dir", "split", "frames", ...}]}, each DIR/<dir>/frames.npz holding uint8 [T,256,256,3] under key "frames".

Loss = L1 + 0.5 * L1 of image gradients + 0.2 * (1 - SSIM): pixel-exact flat colours, sharp outlines, local
structure, no perceptual network (none is available offline, and cartoons do not need one). The latents get
Gaussian noise (`latent_noise` x their std) and a small L2 penalty while training, so the decoder tolerates
imperfect latents from the Actor and the latent scale stays bounded.

Outputs in out_dir: `train_state.pt` (model + optimiser + step, for resuming), `loss.jsonl` (one JSON object
per line: step, loss, l1, ssim, lr, time), and `vae.safetensors` (weights + config + latent statistics, what
the presets load) written at the end of every run.

CLI: `python -m engine_core.train.vae --data DIR --out DIR [--preset default] [--steps N] [--max-minutes M]`
(also exposed as configure(parser)/run(args) for an `xstreamer train vae` subcommand).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from engine_core.codecs.vae import SmallVAE, SmallVAEConfig, frames_to_tensor
from engine_core.codecs.vae_io import load_small_vae, save_small_vae
from engine_core.codecs.vae_losses import gradient_l1, ssim
from engine_core.errors import CheckpointError

STATE_FILE = "train_state.pt"
LOG_FILE = "loss.jsonl"


@dataclass
class VAETrainOptions:
    """Optimisation knobs (the model shape is SmallVAEConfig)."""

    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup: int = 200
    latent_noise: float = 0.1
    latent_l2: float = 1e-4
    w_grad: float = 0.5
    w_ssim: float = 0.2
    frame_stride: int = 3  # keep every k-th frame of a clip (neighbouring frames are near-duplicates)
    max_frames: int = 30000  # frames held in RAM (30k x 196 KB = 5.9 GB)
    splits: tuple[str, ...] = ("train",)
    log_every: int = 10
    save_every: int = 500
    seed: int = 0


def load_frames(
    data_dir: str | Path,
    splits: tuple[str, ...] = ("train",),
    frame_stride: int = 3,
    max_frames: int = 30000,
    progress: bool = True,
) -> np.ndarray:
    """uint8 [N,H,W,3]: every `frame_stride`-th frame of the clips of `splits`, at most `max_frames`."""
    data_dir = Path(data_dir)
    man_path = data_dir / "manifest.json"
    if not man_path.is_file():
        raise FileNotFoundError(f"no manifest.json in {data_dir} (make one with `xstreamer data synth`)")
    clips = [c for c in json.loads(man_path.read_text(encoding="utf-8"))["clips"] if c.get("split") in splits]
    if not clips:
        raise ValueError(f"{man_path}: no clips in splits {splits}")
    out: list[np.ndarray] = []
    n = 0
    for c in tqdm(clips, desc="loading frames", disable=not progress):
        with np.load(data_dir / c["dir"] / "frames.npz") as z:
            f = z["frames"][::frame_stride]  # [t,H,W,3]
        out.append(f[: max_frames - n])
        n += len(out[-1])
        if n >= max_frames:
            break
    return np.concatenate(out)


def vae_loss(vae: SmallVAE, x: torch.Tensor, opt: VAETrainOptions) -> tuple[torch.Tensor, dict[str, float]]:
    """Training loss on float frames x [B,3,H,W] in [-1,1]; returns (loss, parts for the log)."""
    z = vae.encode_raw(x)  # [B,C,h,w]
    noisy = z + opt.latent_noise * z.detach().std() * torch.randn_like(z)
    y = vae.decode_raw(noisy)  # [B,3,H,W]
    l1 = (y - x).abs().mean()
    s = ssim(y.float(), x.float())
    loss = l1 + opt.w_grad * gradient_l1(y, x) + opt.w_ssim * (1 - s) + opt.latent_l2 * z.pow(2).mean()
    return loss, {"l1": l1.item(), "ssim": s.item()}


def _save_state(
    path: Path, vae: SmallVAE, optim: torch.optim.Optimizer, step: int, opt: VAETrainOptions
) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": vae.state_dict(),
            "optim": optim.state_dict(),
            "step": step,
            "config": vae.cfg.to_dict(),
            "options": {k: v for k, v in vars(opt).items()},
        },
        tmp,
    )
    tmp.replace(path)


@torch.no_grad()
def fit_stats_and_export(
    vae: SmallVAE,
    frames: np.ndarray,
    out_dir: Path,
    device: torch.device,
    batch: int = 64,
    sample: int = 2048,
) -> Path:
    """Fit the latent mean/std on up to `sample` frames and write out_dir/vae.safetensors."""
    vae.eval()
    idx = np.random.default_rng(0).permutation(len(frames))[:sample]
    raw = [
        vae.encode_raw(frames_to_tensor(frames[np.sort(idx[i : i + batch])], device)).float().cpu()
        for i in range(0, len(idx), batch)
    ]
    vae.fit_latent_stats(torch.cat(raw))
    return save_small_vae(vae, out_dir / "vae.safetensors")


def train_vae(
    data_dir: str | Path | None,
    out_dir: str | Path,
    cfg: SmallVAEConfig | str = "default",
    device: str = "cpu",
    max_minutes: float | None = None,
    steps: int = 10000,
    batch: int = 16,
    resume: bool = True,
    options: VAETrainOptions | None = None,
    frames: np.ndarray | None = None,
    progress: bool = True,
) -> dict:
    """Train (or continue training) a SmallVAE; returns {"step", "loss", "ssim", "vae", "minutes"}.

    data_dir: corpus directory (or None when `frames` uint8 [N,H,W,3] is given directly).
    steps: total optimiser steps (a resumed run continues up to this number).
    max_minutes: wall-clock budget of this run; the state is saved when it runs out.
    """
    opt = options or VAETrainOptions()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(device)
    torch.manual_seed(opt.seed)
    if frames is None:
        if data_dir is None:
            raise ValueError("train_vae needs data_dir or frames")
        frames = load_frames(data_dir, opt.splits, opt.frame_stride, opt.max_frames, progress)
    state_path = out / STATE_FILE
    state = None
    if resume and state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        cfg = SmallVAEConfig.from_dict(state["config"])
    elif isinstance(cfg, str):
        cfg = SmallVAEConfig.from_name(cfg)
    vae = SmallVAE(cfg).to(dev)
    optim = torch.optim.AdamW(vae.parameters(), lr=opt.lr, weight_decay=opt.weight_decay, betas=(0.9, 0.99))
    step = 0
    if state is not None:
        try:
            vae.load_state_dict(state["model"])
        except RuntimeError as e:
            raise CheckpointError(f"{state_path}: does not match its config: {e}") from e
        optim.load_state_dict(state["optim"])
        step = int(state["step"])
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    rng = np.random.default_rng([opt.seed, step])
    start, last = time.time(), {"loss": float("nan"), "ssim": float("nan")}
    vae.train()
    with (
        open(out / LOG_FILE, "a", encoding="utf-8") as log,
        tqdm(total=steps, initial=step, desc="vae", disable=not progress) as bar,
    ):
        while step < steps:
            if max_minutes is not None and time.time() - start > 60 * max_minutes:
                break
            idx = np.sort(rng.integers(0, len(frames), batch))
            x = frames_to_tensor(frames[idx], dev)  # [B,3,H,W]
            if rng.random() < 0.5:
                x = x.flip(-1)
            lr = opt.lr * min(1.0, (step + 1) / max(1, opt.warmup))
            for g in optim.param_groups:
                g["lr"] = lr
            loss, parts = vae_loss(vae, x, opt)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
            optim.step()
            step += 1
            bar.update(1)
            last = {"loss": loss.item(), "ssim": parts["ssim"]}
            if step % opt.log_every == 0 or step == steps:
                log.write(
                    json.dumps(
                        {
                            "step": step,
                            "loss": last["loss"],
                            **parts,
                            "lr": lr,
                            "time": round(time.time() - start, 3),
                        }
                    )
                    + "\n"
                )
                log.flush()
                bar.set_postfix(loss=f"{last['loss']:.4f}", ssim=f"{parts['ssim']:.3f}")
            if step % opt.save_every == 0:
                _save_state(state_path, vae, optim, step, opt)
    _save_state(state_path, vae, optim, step, opt)
    path = fit_stats_and_export(vae, frames, out, dev)
    return {"step": step, **last, "vae": str(path), "minutes": (time.time() - start) / 60}


@torch.no_grad()
def encode_dataset(
    data_dir: str | Path,
    vae_path: str | Path,
    out_dir: str | Path,
    device: str = "cpu",
    splits: tuple[str, ...] | None = None,
    batch: int = 64,
    progress: bool = True,
) -> Path:
    """Write out_dir/<clip dir>/latents.npy (float16 [T,C,h,w], normalised) for every clip of the manifest
    (or of `splits`), plus out_dir/latents.json naming the VAE and its config. Returns that JSON's path."""
    data_dir, out = Path(data_dir), Path(out_dir)
    vae = load_small_vae(vae_path, device)
    clips = json.loads((data_dir / "manifest.json").read_text(encoding="utf-8"))["clips"]
    clips = [c for c in clips if splits is None or c.get("split") in splits]
    for c in tqdm(clips, desc="encode", disable=not progress):
        with np.load(data_dir / c["dir"] / "frames.npz") as z:
            frames = z["frames"]
        lat = torch.cat([vae.encode(frames[i : i + batch]).cpu() for i in range(0, len(frames), batch)])
        dst = out / c["dir"]
        dst.mkdir(parents=True, exist_ok=True)
        np.save(dst / "latents.npy", lat.numpy().astype(np.float16))
    meta = out / "latents.json"
    meta.write_text(
        json.dumps(
            {
                "vae": str(Path(vae_path).resolve()),
                "config": vae.cfg.to_dict(),
                "clips": len(clips),
                "dtype": "float16",
                "normalised": True,
            },
            indent=1,
        )
    )
    return meta


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of the VAE training command."""
    parser.add_argument("--data", required=True, help="corpus directory with manifest.json")
    parser.add_argument(
        "--out", required=True, help="output directory (checkpoints, loss.jsonl, vae.safetensors)"
    )
    parser.add_argument("--preset", default="default", choices=("tiny", "default"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--max-frames", type=int, default=30000)
    parser.add_argument("--no-resume", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Run training from parsed arguments; prints the result as JSON."""
    opt = VAETrainOptions(lr=args.lr, max_frames=args.max_frames)
    res = train_vae(
        args.data,
        args.out,
        args.preset,
        args.device,
        args.max_minutes,
        args.steps,
        args.batch,
        resume=not args.no_resume,
        options=opt,
    )
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    configure(ap)
    raise SystemExit(run(ap.parse_args()))
