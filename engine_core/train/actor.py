"""Diffusion-forcing training of the Actor: the training step and a resumable loop over a corpus directory.

Data: a corpus directory (pixel codecs: clips encoded by the frozen VAE) or, for a motion-space preset, a speech
bank file from which clips of procedural motion are made (engine_core/train/motion_data.py).

Step: sample windows of K chunks, give every chunk its own noise level (diffusion forcing), predict the
flow-matching velocity for all chunks in one full-sequence pass (block-causal mask), MSE on the video
latents (+ a small cross-entropy on the text head where word targets exist; with `actor.token_stream`, the token
loss instead: cross-entropy of the token slots' text and audio heads on the chunk's tokens, beside the MSE). The MSE can weigh the latent
cells of the mouth more (`mouth_weight`): the mouth is ~2 % of the frame but all of the lip-sync.

Output directory (also a loadable model directory for `Engine.load(out)`):
    actor.safetensors   latest weights + config        vae.safetensors   the frozen VAE used
    train_state.pt      model + optimizer + step + RNG  loss.jsonl        one JSON line per logged step
    loss.png            loss curve (engine_core.train.plot)
`max_minutes` stops the run cleanly (state saved) so long trainings run as resumable <= 8-minute pieces.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from engine_core.actor.model import Actor, ChunkCond
from engine_core.actor.schedule import add_noise, sample_train_sigmas, sigma_schedule, velocity_target
from engine_core.checkpoint import VAE_FILE, save_actor
from engine_core.codecs.vae import SmallVAE
from engine_core.codecs.vae_io import save_small_vae
from engine_core.config import ModelConfig
from engine_core.errors import ConfigError
from engine_core.motion.channels import INDEX as MOTION_INDEX, WEIGHT_OFFSET, WEIGHT_SCALE
from engine_core.thinker.toy import ToyThinker
from engine_core.train.data import WindowSampler, list_clips, load_clip_tensors

log = logging.getLogger(__name__)

MOUTH_CLOSE = MOTION_INDEX["mouthClose"]
TOY_WORD_TABLE = 512          # word-embedding rows for clips without hidden states when text_vocab == 0


@dataclass
class ActorTrainOptions:
    """Hyper-parameters of `train_actor`."""

    steps: int = 20000
    batch: int = 8
    lr: float = 3e-4
    warmup: int = 200
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    text_loss_weight: float = 0.05
    token_loss_weight: float = 1.0      # the token stream's cross-entropy (actor.token_stream)
    hidden_dropout: float = 0.25        # drop a chunk's Thinker states this often (the null context: speech
                                        # alone must drive the Actor, so any Thinker can)
    log_every: int = 10
    save_every: int = 500
    seed: int = 0
    fixed_noise: bool = False           # reuse one noise/sigma draw (overfitting sanity checks)
    mouth_weight: float = 0.0           # extra MSE weight on the mouth's latent cells (motion: on frames as far as
                                        # their lips are closed by mouthClose); 0 = plain MSE
    sampler_levels: float = 0.0         # share of chunks trained at the inference sampler's noise levels
    clips: int = 3000                   # motion-space presets: clips drawn from the speech bank's utterances


def training_loss(actor: Actor, b: dict, gen: torch.Generator, opt: ActorTrainOptions,
                  device: torch.device) -> tuple[torch.Tensor, dict[str, float]]:
    """Diffusion-forcing loss of one batch from `WindowSampler.sample` -> (loss, parts)."""
    cfg = actor.cfg
    x0 = b["x0"].to(device).float()                                          # [B,K,Fl,C,h,w]
    bsz, k = x0.shape[:2]
    levels = sigma_schedule(cfg.steps, cfg.inference_shift)[:-1] if opt.sampler_levels > 0 else None
    sigma = sample_train_sigmas(bsz, k, gen, cfg.time_shift, levels=levels,
                                p_levels=opt.sampler_levels).to(device)     # [B,K] independent per chunk
    noise = torch.randn(x0.shape, generator=gen).to(device)
    x_t = add_noise(x0, noise, sigma)
    mask = b["hidden_mask"].to(device)
    if opt.hidden_dropout > 0:
        keep = torch.rand(bsz, mask.shape[1], 1, generator=gen).to(device) >= opt.hidden_dropout
        mask = mask & keep
    tokens = b["token_inputs"].to(device) if cfg.actor.token_stream else None
    cond = ChunkCond(b["speech"].to(device), b["hidden"].to(device), b["hidden_frames"].to(device), mask, tokens)
    out = actor(x_t, sigma, cond, int(b["first_chunk"]), identity=b["identity"].to(device), heads=True)
    # clean chunks (sigma = 0) are context only, as the cache is at inference: no velocity target there
    sq = (out.velocity.float() - velocity_target(x0, noise).float()).pow(2)                  # [B,K,Fl,C,h,w]
    if cfg.vae.kind == "motion":    # motion: weigh the frames whose lips meet (p/b/m: short, and all of "closes")
        close = ((x0[:, :, :, MOUTH_CLOSE] - WEIGHT_OFFSET) / WEIGHT_SCALE).clamp(0.0, 1.0)   # [B,K,Fl,1,1]
        w = (1.0 + opt.mouth_weight * close)[:, :, :, None].expand_as(sq)
    else:
        w = (1.0 + opt.mouth_weight * b["mouth"].to(device))[:, None, None, None].expand_as(sq)   # 1 = plain MSE
    err = (sq * w).flatten(2).sum(-1) / w.flatten(2).sum(-1)                                  # [B,K]
    noisy = (sigma > 0).float()
    mse = (err * noisy).sum() / noisy.sum().clamp_min(1.0)
    loss = mse
    parts = {"mse": float(mse.detach())}
    if cfg.actor.token_stream:
        ce = token_loss(out, b["token_targets"].to(device), cfg.thinker.text_vocab)
        if ce is not None:
            loss = loss + opt.token_loss_weight * ce
            parts["token_ce"] = float(ce.detach())
        return loss, parts
    tgt = b["text_targets"].to(device)
    if out.text_logits is not None and opt.text_loss_weight > 0 and (tgt >= 0).any():
        ce = F.cross_entropy(out.text_logits.flatten(0, 2).float(), tgt.flatten(), ignore_index=-100)
        loss = loss + opt.text_loss_weight * ce
        parts["text_ce"] = float(ce.detach())
    return loss, parts


def token_loss(out, targets: torch.Tensor, text_vocab: int) -> torch.Tensor | None:
    """Cross-entropy of the token slots on `targets` [B,K,T] (joint ids, -100: no token): a text id through the text
    head, an audio code through the audio head, averaged over the slots that have a token (None when none has)."""
    have = targets >= 0
    if not have.any():
        return None
    audio = targets >= text_vocab
    total = torch.zeros((), device=targets.device)
    for logits, sel, ids in ((out.text_logits, have & ~audio, targets), (out.audio_logits, have & audio,
                                                                          targets - text_vocab)):
        if logits is not None and sel.any():
            total = total + F.cross_entropy(logits[sel].float(), ids[sel], reduction="sum")
    return total / have.sum()


def _load_vae(cfg: ModelConfig, vae_path: str | Path | None, device: str):
    from engine_core.engine.engine import build_vae

    warnings: list[str] = []
    cfg = ModelConfig.from_dict(cfg.to_dict())          # a copy: the saved config keeps no machine paths
    if vae_path is not None:
        cfg.vae.path = str(vae_path)
    vae = build_vae(cfg, None, device, warnings)
    for w in warnings:
        log.warning(w)
    return vae


def train_actor(data_dir: str | Path, out_dir: str | Path, preset: str | ModelConfig = "tiny",
                device: str = "cpu", max_minutes: float | None = None, resume: bool = False,
                vae_path: str | Path | None = None, options: ActorTrainOptions | None = None,
                progress: bool = True, split: str | None = "train", init: str | Path | None = None) -> dict:
    """Train the Actor on a corpus; returns {"step", "loss", "first_loss", "minutes", "out"}.

    A resumed run (resume=True and out_dir/train_state.pt present) continues up to `options.steps`.
    `init` (an Actor checkpoint of the same config) starts a new run from its weights (fine-tuning).
    """
    opt = options or ActorTrainOptions()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = ModelConfig.from_name(preset) if isinstance(preset, str) else preset
    dev = torch.device(device)
    torch.manual_seed(opt.seed)
    vae = _load_vae(cfg, vae_path, device)
    if cfg.vae.kind == "motion":      # motion space: clips made straight from a speech bank (no pixels)
        from engine_core.train.motion_data import motion_clips

        sampler = WindowSampler(motion_clips(data_dir, cfg, opt.clips, opt.seed), cfg)
    else:
        # clips without hidden.npz: one seeded embedding per word (a model without a text head still needs a table)
        words = ToyThinker(cfg.thinker.hidden_size, cfg.thinker.text_vocab or TOY_WORD_TABLE, cfg.seed)
        sampler = WindowSampler([load_clip_tensors(p, cfg, vae, words) for p in list_clips(data_dir, split)], cfg)
    actor = Actor(cfg)
    if init is not None:
        _init_from(actor, init)
    actor = actor.to(dev).train()
    optim = torch.optim.AdamW(actor.parameters(), lr=opt.lr, weight_decay=opt.weight_decay, betas=(0.9, 0.98))
    gen = torch.Generator().manual_seed(opt.seed)
    step, first_loss = 0, None
    state_path = out / "train_state.pt"
    if resume and state_path.is_file():
        st = torch.load(state_path, map_location=dev, weights_only=False)
        actor.load_state_dict(st["model"])
        optim.load_state_dict(st["optim"])
        step, first_loss = int(st["step"]), st.get("first_loss")
        gen.set_state(st["gen"].cpu())
    elif not resume:
        (out / "loss.jsonl").unlink(missing_ok=True)
    if isinstance(vae, SmallVAE) and not (out / VAE_FILE).is_file():
        src = Path(vae_path) if vae_path else None
        if src is not None and src.is_dir():
            src = src / VAE_FILE
        if src is not None and src.is_file():
            shutil.copyfile(src, out / VAE_FILE)
        else:
            save_small_vae(vae, out / VAE_FILE)
    sched = lambda s: opt.lr * min(1.0, (s + 1) / max(1, opt.warmup))  # noqa: E731
    t0 = time.monotonic()
    fixed = None
    loss_val = float("nan")
    bar = tqdm(total=opt.steps, initial=step, desc="actor", disable=not progress, dynamic_ncols=True)
    with (out / "loss.jsonl").open("a", encoding="utf-8") as logf:
        while step < opt.steps:
            if max_minutes is not None and time.monotonic() - t0 > max_minutes * 60:
                break
            if opt.fixed_noise:
                fixed = fixed or (sampler.sample(opt.batch, gen), gen.get_state())
                batch = fixed[0]
                gen.set_state(fixed[1])
            else:
                batch = sampler.sample(opt.batch, gen)
            for g in optim.param_groups:
                g["lr"] = sched(step)
            loss, parts = training_loss(actor, batch, gen, opt, dev)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(actor.parameters(), opt.grad_clip)
            optim.step()
            step += 1
            loss_val = float(loss.detach())
            first_loss = first_loss if first_loss is not None else loss_val
            bar.update(1)
            bar.set_postfix(loss=f"{loss_val:.4f}")
            if step % opt.log_every == 0 or step == 1:
                logf.write(json.dumps({"step": step, "loss": loss_val, **parts, "lr": sched(step - 1),
                                       "time": round(time.monotonic() - t0, 2)}) + "\n")
                logf.flush()
            if step % opt.save_every == 0:
                _save(out, actor, optim, step, first_loss, gen, opt)
    bar.close()
    _save(out, actor, optim, step, first_loss, gen, opt)
    return {"step": step, "loss": loss_val, "first_loss": first_loss, "out": str(out),
            "minutes": round((time.monotonic() - t0) / 60, 3), "done": step >= opt.steps}


def _init_from(actor: Actor, init: str | Path) -> None:
    """Load the weights of Actor checkpoint `init` into `actor` (fine-tuning); its config must equal the
    actor's, except that it may lack the `frame_speech` path: that path then starts at zero (its
    initialisation), so the run starts from exactly the checkpoint's model. The inference-only settings
    (config.INFERENCE_ONLY) shape no weight, so the run keeps its own."""
    from engine_core.checkpoint import load_state_checked, read_actor_checkpoint

    cfg = actor.cfg
    init_cfg, tensors, _ = read_actor_checkpoint(init)
    tensors = {k: v.float() for k, v in tensors.items()}
    if cfg.actor.frame_speech and not init_cfg.actor.frame_speech:
        init_cfg.actor.frame_speech = True
        tensors.update({k: v for k, v in actor.state_dict().items() if k.startswith("frame_speech_in.")})
    if init_cfg.trained_dict() | {"name": cfg.name} != cfg.trained_dict():
        raise ConfigError(f"--init {init}: its config differs from preset {cfg.name!r}")
    load_state_checked(actor, tensors, str(init))


def _save(out: Path, actor: Actor, optim: torch.optim.Optimizer, step: int, first_loss: float | None,
          gen: torch.Generator, opt: ActorTrainOptions) -> None:
    """Weights (loadable model dir) + resumable state, written atomically."""
    save_actor(actor, actor.cfg, out, extra={"step": str(step)})
    tmp = out / "train_state.pt.tmp"
    torch.save({"model": actor.state_dict(), "optim": optim.state_dict(), "step": step, "first_loss": first_loss,
                "gen": gen.get_state(), "options": asdict(opt)}, tmp)
    tmp.replace(out / "train_state.pt")
