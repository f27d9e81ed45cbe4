"""Thinker registry: every backend is registered once here, as a name and its builders; the model config's
validation (`engine_core.config`) and the Engine (`engine.build_thinker`) read this table.

    load_thinker("cascade", max_new_tokens=28)             # a backend from keyword arguments (tests, benches)
    thinker_from_config(model_config, device="cuda")       # the backend a model config names (the Engine)

A backend is imported only when it is built (cascade and glm4voice pull in big packages). Adding one: write
its module, then one `_register(...)` call below with its two builders.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from engine_core.errors import BackendUnavailableError, ConfigError

if TYPE_CHECKING:   # (no torch at import: engine_core.config reads the table)
    from engine_core.config import ModelConfig

    from .base import Thinker


@dataclass(frozen=True)
class Backend:
    """How to build one Thinker backend: from keyword arguments, and from a model config."""

    name: str
    build: Callable[..., "Thinker"]                                  # build(**kw)
    from_config: Callable[["ModelConfig", str, bool], "Thinker"]   # (cfg, device, random_weights)


BACKENDS: dict[str, Backend] = {}


def _register(name: str, build: Callable[..., "Thinker"],
              from_config: Callable[["ModelConfig", str, bool], "Thinker"]) -> None:
    if name in BACKENDS:
        raise ValueError(f"thinker backend {name!r} registered twice")
    BACKENDS[name] = Backend(name, build, from_config)


# ---- toy: deterministic, for tests
def _toy(**kw: Any) -> "Thinker":
    from .toy import ToyThinker

    return ToyThinker(**kw)


def _toy_from_config(cfg: "ModelConfig", device: str, random_weights: bool) -> "Thinker":
    # with the Actor's token stream: audio tokens too, and a voice for them
    return _toy(hidden_size=cfg.thinker.hidden_size, vocab=cfg.thinker.text_vocab, seed=cfg.seed,
                audio_vocab=cfg.thinker.audio_vocab if cfg.actor.token_stream else 0)


# ---- cascade: SmolLM2 + Piper + Whisper (the embedded default)
def _cascade(**kw: Any) -> "Thinker":
    from .cascade import CascadeThinker

    return CascadeThinker(**kw)


# ---- glm4voice: GLM-4-Voice-9B (the paper preset)
def _glm4voice(**kw: Any) -> "Thinker":
    """Glm4VoiceThinker.from_pretrained(model_dir, ...) when `model_dir` is given, else
    from_config(cfg=None, ...) (random weights)."""
    from .glm4voice import Glm4VoiceThinker

    model_dir = kw.pop("model_dir", None)
    if model_dir is not None:
        return Glm4VoiceThinker.from_pretrained(model_dir, **kw)
    return Glm4VoiceThinker.from_config(kw.pop("cfg", None), **kw)


def _glm4voice_from_config(cfg: "ModelConfig", device: str, random_weights: bool) -> "Thinker":
    t = cfg.thinker
    if random_weights:   # full shape, random weights, SILENT audio: timing only (the benchmark says so);
        # each text block full, as a trained model's (13 text tokens before a reply's first audio)
        import torch

        dtype = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
        return _glm4voice(device=device, dtype=dtype, allow_silent_audio=True, full_text_blocks=True,
                          step_weights=t.step_weights)
    path = t.path or os.environ.get("XSTREAMER_GLM4VOICE_DIR")
    if not path:
        raise BackendUnavailableError("the glm4voice Thinker needs its checkpoint directory: set "
                                      "XSTREAMER_GLM4VOICE_DIR or thinker.path in the model config")
    return _glm4voice(model_dir=path, device=device, step_weights=t.step_weights)


_register("toy", _toy, _toy_from_config)
_register("cascade", _cascade, lambda cfg, device, random_weights: _cascade())
_register("glm4voice", _glm4voice, _glm4voice_from_config)

THINKERS = tuple(BACKENDS)


def _backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise ConfigError(f"unknown thinker {name!r}; choose one of {', '.join(THINKERS)}")
    return BACKENDS[name]


def load_thinker(name: str, **kw: Any) -> "Thinker":
    """Build a Thinker by name from keyword arguments (ConfigError for an unknown name).

    toy:       engine_core.thinker.toy.ToyThinker(**kw)
    cascade:   CascadeThinker(max_new_tokens=72, repetition_penalty=1.15, temperature=0.0, seed=0, voice=None)
    glm4voice: Glm4VoiceThinker.from_pretrained(model_dir, device=..., dtype=..., decoder_dir=...,
               speech_tokenizer_dir=..., code_dir=..., allow_silent_audio=False, ...) when `model_dir` is
               given, else Glm4VoiceThinker.from_config(cfg=None, device=..., dtype=..., ...) (random weights).
    """
    return _backend(name).build(**kw)


def thinker_from_config(cfg: "ModelConfig", device: str, random_weights: bool = False) -> "Thinker":
    """The Thinker a model config names (`cfg.thinker.backend`), on `device`."""
    return _backend(cfg.thinker.backend).from_config(cfg, device, random_weights)
