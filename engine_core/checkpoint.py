"""Actor checkpoints: one safetensors file with the model config JSON in its metadata.

A model directory holds `actor.safetensors` (this module) and optionally `vae.safetensors`
(engine_core.codecs.vae_io). Metadata keys: "format" = FORMAT (or VAE_FORMAT), "config" = the config's
to_dict() as JSON; the config carries its "version" (none = version 0, a pre-release file).
`upgrade_checkpoint` is the one function that brings older checkpoints of either kind up to the current
version (CONFIG_VERSION for the Actor, VAE_VERSION for the SmallVAE) and refuses newer ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from engine_core.config import CONFIG_VERSION, ModelConfig
from engine_core.errors import CheckpointError, ConfigError

FORMAT = "xstreamer.actor"
VAE_FORMAT = "xstreamer.small_vae"      # engine_core.codecs.vae_io.FORMAT
VAE_VERSION = 1                         # SmallVAE config version (engine_core.codecs.vae.SmallVAEConfig)
ACTOR_FILE = "actor.safetensors"
VAE_FILE = "vae.safetensors"


def _resolve(path: str | Path) -> Path:
    p = Path(path)
    return p / ACTOR_FILE if p.is_dir() or p.suffix != ".safetensors" else p


def save_actor(actor: torch.nn.Module, cfg: ModelConfig, path: str | Path,
               extra: dict[str, str] | None = None) -> Path:
    """Write the Actor's weights + `cfg` to `path` (a .safetensors file or a directory)."""
    p = _resolve(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in actor.state_dict().items()}
    meta = {"format": FORMAT, "config": json.dumps(cfg.to_dict()), **(extra or {})}
    save_file(state, str(p), metadata=meta)
    return p


def export_model(run_dir: str | Path, out_dir: str | Path, dtype: torch.dtype = torch.float16,
                 **inference: float | None) -> list[Path]:
    """Write a training run's Actor (and its VAE, when the run has one) to `out_dir` as a shippable model
    directory: the Actor's tensors cast to `dtype` (floating tensors only), its config and step kept, with the
    `inference` settings given (config.INFERENCE_ONLY: frame_speech_gain, sample_shift, noise_scale; None keeps
    the run's) written into that config; the VAE file copied unchanged. Returns the files written."""
    import shutil

    run, out = Path(run_dir), Path(out_dir)
    cfg, tensors, meta = read_actor_checkpoint(run)
    cfg = cfg.with_inference(**inference)
    out.mkdir(parents=True, exist_ok=True)
    cast = {k: (v.to(dtype) if v.is_floating_point() else v).contiguous() for k, v in tensors.items()}
    extra = {k: v for k, v in meta.items() if k not in ("format", "config")}
    save_file(cast, str(out / ACTOR_FILE), metadata={"format": FORMAT, "config": json.dumps(cfg.to_dict()), **extra})
    written = [out / ACTOR_FILE]
    if (run / VAE_FILE).is_file() and (run / VAE_FILE).resolve() != (out / VAE_FILE).resolve():
        shutil.copyfile(run / VAE_FILE, out / VAE_FILE)
        written.append(out / VAE_FILE)
    return written


def upgrade_checkpoint(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) \
        -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Bring a stored (metadata, tensors) up to the current version. The one place old layouts are handled.

    meta["config"] is the parsed config dict; meta["format"] says whose it is (FORMAT, the default when
    absent, or VAE_FORMAT). The version is meta["config"]["version"] (missing = 0). Version history:
      Actor:    0 (pre-release, no "version" key): same layout as 1.  1: current.
      SmallVAE: 0 (no "version" key, the first trained default VAE): same layout as 1.  1: current.
    A version newer than this code is refused (CheckpointError).
    """
    cfg = dict(meta["config"])
    is_vae = meta.get("format") == VAE_FORMAT
    kind, current = ("SmallVAE", VAE_VERSION) if is_vae else ("Actor", CONFIG_VERSION)
    raw = cfg.get("version", 0)
    if not isinstance(raw, int) or isinstance(raw, bool) or raw < 0:
        raise CheckpointError(f"{kind} checkpoint has an invalid config version {raw!r}")
    if raw > current:
        raise CheckpointError(f"{kind} checkpoint config version {raw} is newer than this code ({current})")
    if raw < 1:
        cfg["version"] = 1          # 0 -> 1: no layout change (Actor and SmallVAE alike)
    return {**meta, "config": cfg}, tensors


def read_actor_checkpoint(path: str | Path) -> tuple[ModelConfig, dict[str, torch.Tensor], dict[str, str]]:
    """(config, tensors, raw metadata) of an Actor checkpoint (CheckpointError on anything wrong)."""
    p = _resolve(path)
    if not p.is_file():
        raise CheckpointError(f"no Actor checkpoint at {p}")
    try:
        with safe_open(str(p), framework="pt") as f:
            raw = dict(f.metadata() or {})
        tensors = load_file(str(p))
    except Exception as e:          # safetensors raises its own types for garbage files
        raise CheckpointError(f"{p} is not a readable safetensors file: {e}") from e
    if raw.get("format") != FORMAT or "config" not in raw:
        raise CheckpointError(f"{p} is not an xstreamer Actor checkpoint (format={raw.get('format')!r})")
    try:
        meta, tensors = upgrade_checkpoint({**raw, "config": json.loads(raw["config"])}, tensors)
        cfg = ModelConfig.from_dict(meta["config"])
    except (ValueError, TypeError, ConfigError) as e:
        raise CheckpointError(f"{p}: bad config in checkpoint: {e}") from e
    return cfg, tensors, raw


def load_state_checked(module: torch.nn.Module, tensors: dict[str, torch.Tensor], where: str) -> None:
    """Load tensors into `module`, raising CheckpointError that names every missing/extra/mis-shaped tensor."""
    own = module.state_dict()
    missing = sorted(set(own) - set(tensors))
    extra = sorted(set(tensors) - set(own))
    wrong = [f"{k}: checkpoint {tuple(tensors[k].shape)} vs model {tuple(own[k].shape)}"
             for k in own if k in tensors and tensors[k].shape != own[k].shape]
    if missing or extra or wrong:
        parts = []
        if wrong:
            parts.append(f"{len(wrong)} tensors of the wrong shape (e.g. {'; '.join(wrong[:3])})")
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if extra:
            parts.append(f"{len(extra)} unexpected (e.g. {', '.join(extra[:3])})")
        raise CheckpointError(f"{where}: checkpoint does not match its config: " + "; ".join(parts))
    module.load_state_dict(tensors, strict=True)


def load_actor(path: str | Path, device: str | torch.device = "cpu", attn_impl: str = "sdpa"):
    """Build the Actor described by a checkpoint and load its weights -> (actor, config)."""
    from engine_core.actor.model import Actor

    cfg, tensors, _ = read_actor_checkpoint(path)
    actor = Actor(cfg, attn_impl=attn_impl)
    load_state_checked(actor, tensors, str(_resolve(path)))
    return actor.to(device).eval(), cfg
