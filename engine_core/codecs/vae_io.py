"""Save/load SmallVAE weights: one safetensors file, the config JSON in its metadata.

Metadata keys: "format" = "xstreamer.small_vae", "config" = SmallVAEConfig.to_dict() as JSON.
A directory path means `<dir>/vae.safetensors`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from engine_core.errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from engine_core.codecs.vae import SmallVAE

FORMAT = "xstreamer.small_vae"
FILENAME = "vae.safetensors"


def _resolve(path: str | Path) -> Path:
    p = Path(path)
    return p / FILENAME if p.is_dir() or p.suffix != ".safetensors" else p


def save_small_vae(vae: SmallVAE, path: str | Path) -> Path:
    """Write `vae` to `path` (a .safetensors file, or a directory that gets vae.safetensors)."""
    p = _resolve(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in vae.state_dict().items()}
    meta = {"format": FORMAT, "config": json.dumps(vae.cfg.to_dict())}
    save_file(state, str(p), metadata=meta)
    return p


def read_small_vae_config(path: str | Path):
    """The SmallVAEConfig stored in a file (CheckpointError when missing or not a SmallVAE file)."""
    from engine_core.codecs.vae import SmallVAEConfig

    p = _resolve(path)
    if not p.is_file():
        raise CheckpointError(f"no SmallVAE checkpoint at {p}")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types for garbage files
        raise CheckpointError(f"{p} is not a readable safetensors file: {e}") from e
    if meta.get("format") != FORMAT or "config" not in meta:
        raise CheckpointError(f"{p} is not a SmallVAE checkpoint (metadata format={meta.get('format')!r})")
    try:
        return SmallVAEConfig.from_dict(json.loads(meta["config"]))
    except (ValueError, TypeError, ConfigError) as e:
        raise CheckpointError(f"{p}: bad SmallVAE config: {e}") from e


def load_small_vae(path: str | Path, device: str | torch.device = "cpu") -> SmallVAE:
    """Build the SmallVAE described by the file's config and load its weights (strict shapes)."""
    from safetensors.torch import load_file

    from engine_core.codecs.vae import SmallVAE

    cfg = read_small_vae_config(path)
    p = _resolve(path)
    vae = SmallVAE(cfg)
    state = load_file(str(p))
    try:
        vae.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{p}: weights do not match their config: {e}") from e
    return vae.to(device).eval()
