"""GLM-4-Voice's three published parts on disk, as `--glm4voice DIR` names them, and the language model from its
published (ChatGLM) files.

DIR holds the published repositories as they are downloaded (any names; each part is recognised by its files):
    glm-4-voice-9b/          config.json (model_type "chatglm"), model-0000N-of-0000M.safetensors, tokenizer.model,
                             tokenizer_config.json (and the remote-code .py files, never run)
    glm-4-voice-tokenizer/   config.json (a Whisper config with quantize_vocab_size), model.safetensors,
                             preprocessor_config.json
    glm-4-voice-decoder/     config.yaml, flow.pt, hift.pt
DIR may also be the language model's own directory (ChatGLM or native GLM); then no decoder or speech tokenizer.

The ChatGLM checkpoint is read in memory into transformers' native `GlmForCausalLM` (the tensor mapping of
glm4voice_convert: fused q/k/v split, names renamed), so no converted copy is written and no code from the
directory runs. Its tiktoken tokenizer is rebuilt once as a `tokenizers` file (needs the `tiktoken` package) and kept
in the user cache (`$XSTREAMER_CACHE` or the platform's); a directory with a tokenizer.json uses that.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from engine_core.errors import BackendUnavailableError, CheckpointError


@dataclass
class Glm4VoiceFiles:
    """Where each part is (None: absent)."""

    lm: Path
    speech_tokenizer: Path | None = None
    decoder: Path | None = None


def _config(d: Path) -> dict:
    try:
        return json.loads((d / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def find_parts(root: str | Path) -> Glm4VoiceFiles:
    """The parts under `root` (module docstring); BackendUnavailableError when there is no language model."""
    root = Path(root)
    if not root.is_dir():
        raise BackendUnavailableError(f"--glm4voice: {root} is not a directory")
    if _config(root).get("model_type") in ("chatglm", "glm"):
        return Glm4VoiceFiles(lm=root)
    lm = tok = dec = None
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        cfg = _config(d)
        if cfg.get("model_type") in ("chatglm", "glm") and lm is None:
            lm = d
        elif cfg.get("quantize_vocab_size") and tok is None:
            tok = d
        elif (d / "config.yaml").is_file() and (d / "flow.pt").is_file() and dec is None:
            dec = d
    if lm is None:
        raise BackendUnavailableError(f"--glm4voice: no GLM-4-Voice-9B (config.json with model_type chatglm) under "
                                      f"{root}; expected glm-4-voice-9b/, glm-4-voice-tokenizer/, glm-4-voice-decoder/")
    return Glm4VoiceFiles(lm=lm, speech_tokenizer=tok, decoder=dec)


def _cache_dir() -> Path:
    base = os.environ.get("XSTREAMER_CACHE")
    if base:
        return Path(base)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("xstreamer"))


def chatglm_tokenizer(src: Path):
    """The tokenizer of a ChatGLM directory: its tokenizer.json, else its tiktoken files rebuilt (once, cached)."""
    from transformers import AutoTokenizer

    from .glm4voice_convert import convert_chatglm_tokenizer

    if (src / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(src)
    key = hashlib.sha256((src / "tokenizer.model").read_bytes()[:1 << 20]).hexdigest()[:16] if (
        src / "tokenizer.model").is_file() else "missing"
    dst = _cache_dir() / "glm4voice-tokenizer" / key
    if not (dst / "tokenizer.json").is_file():
        convert_chatglm_tokenizer(src, dst)
    return AutoTokenizer.from_pretrained(dst)


def load_chatglm(src: str | Path, device: str = "cpu", dtype: torch.dtype = torch.bfloat16):
    """(GlmForCausalLM, tokenizer) from a published ChatGLM (GLM-4-Voice-9B) directory, converted in memory."""
    from transformers import GlmForCausalLM

    from .glm4voice_convert import _read_state_dict, chatglm_config_to_native, convert_chatglm_state_dict

    src = Path(src)
    config = chatglm_config_to_native(_config(src))
    state = convert_chatglm_state_dict(_read_state_dict(src), config)
    with torch.device("meta"):
        model = GlmForCausalLM(config)
    missing, unexpected = model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=False, assign=True)
    if missing or unexpected:
        raise CheckpointError(f"{src}: tensors missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.model.rotary_emb = type(model.model.rotary_emb)(config=config)      # its buffers were on the meta device
    return model.to(device).eval(), chatglm_tokenizer(src)


__all__ = ["Glm4VoiceFiles", "chatglm_tokenizer", "find_parts", "load_chatglm"]
