"""Save/load SmallVAE weights: one safetensors file, the config JSON in its metadata.

Metadata keys: "format" = "xstreamer.small_vae", "config" = SmallVAEConfig.to_dict() as JSON, which carries
the checkpoint's "version" (engine_core.checkpoint.VAE_VERSION; a config without one is version 0). Reading
goes through `engine_core.checkpoint.upgrade_checkpoint`, the one upgrade function of Actor and VAE files.
A directory path means `<dir>/vae.safetensors`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from engine_core.checkpoint import VAE_FORMAT, VAE_VERSION, upgrade_checkpoint
from engine_core.errors import CheckpointError, ConfigError

if TYPE_CHECKING:
    from engine_core.codecs.vae import SmallVAE, SmallVAEConfig

FORMAT = VAE_FORMAT
FILENAME = "vae.safetensors"


def _resolve(path: str | Path) -> Path:
    p = Path(path)
    return p / FILENAME if p.is_dir() or p.suffix != ".safetensors" else p


def save_small_vae(vae: SmallVAE, path: str | Path) -> Path:
    """Write `vae` to `path` (a .safetensors file, or a directory that gets vae.safetensors)."""
    p = _resolve(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in vae.state_dict().items()}
    config = {**vae.cfg.to_dict(), "version": VAE_VERSION}
    meta = {"format": FORMAT, "config": json.dumps(config)}
    save_file(state, str(p), metadata=meta)
    return p


def _read_meta(p: Path) -> dict[str, str]:
    if not p.is_file():
        raise CheckpointError(f"no SmallVAE checkpoint at {p}")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = dict(f.metadata() or {})
    except Exception as e:  # safetensors raises its own error types for garbage files
        raise CheckpointError(f"{p} is not a readable safetensors file: {e}") from e
    if meta.get("format") != FORMAT or "config" not in meta:
        raise CheckpointError(f"{p} is not a SmallVAE checkpoint (metadata format={meta.get('format')!r})")
    return meta


def _upgraded_config(p: Path, meta: dict[str, str], tensors: dict[str, torch.Tensor]) \
        -> tuple[SmallVAEConfig, dict[str, torch.Tensor]]:
    from engine_core.codecs.vae import SmallVAEConfig

    try:
        config: Any = json.loads(meta["config"])
    except ValueError as e:
        raise CheckpointError(f"{p}: the SmallVAE config is not JSON: {e}") from e
    if not isinstance(config, dict):
        raise CheckpointError(f"{p}: the SmallVAE config is not a JSON object")
    upgraded, tensors = upgrade_checkpoint({**meta, "config": config}, tensors)   # CheckpointError if newer
    try:
        return SmallVAEConfig.from_dict(upgraded["config"]), tensors
    except (ValueError, TypeError, ConfigError) as e:
        raise CheckpointError(f"{p}: bad SmallVAE config: {e}") from e


def read_small_vae_config(path: str | Path) -> SmallVAEConfig:
    """The (upgraded) SmallVAEConfig stored in a file (CheckpointError when missing, not a SmallVAE file,
    or of a newer version than this code)."""
    p = _resolve(path)
    return _upgraded_config(p, _read_meta(p), {})[0]


def load_small_vae(path: str | Path, device: str | torch.device = "cpu") -> SmallVAE:
    """Build the SmallVAE described by the file's (upgraded) config and load its weights (strict shapes)."""
    from safetensors.torch import load_file

    from engine_core.codecs.vae import SmallVAE

    p = _resolve(path)
    meta = _read_meta(p)
    try:
        state = load_file(str(p))
    except Exception as e:  # noqa: BLE001 - a truncated file
        raise CheckpointError(f"{p} is not a readable safetensors file: {e}") from e
    cfg, state = _upgraded_config(p, meta, state)
    vae = SmallVAE(cfg)
    try:
        vae.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{p}: weights do not match their config: {e}") from e
    return vae.to(device).eval()
