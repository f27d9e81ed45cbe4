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
    from .base import Thinker

# A builder's `cfg` is an engine_core.config.ModelConfig. It is not named as a type here: the config imports this
# table to check its backend's name, and the two modules must not import each other.
AnyModelConfig = Any


@dataclass(frozen=True)
class Backend:
    """How to build one Thinker backend: from keyword arguments, and from a model config."""

    name: str
    build: Callable[..., "Thinker"]                                  # build(**kw)
    from_config: Callable[[AnyModelConfig, str, bool], "Thinker"]   # (cfg, device, random_weights)


BACKENDS: dict[str, Backend] = {}


def _register(name: str, build: Callable[..., "Thinker"],
              from_config: Callable[[AnyModelConfig, str, bool], "Thinker"]) -> None:
    if name in BACKENDS:
        raise ValueError(f"thinker backend {name!r} registered twice")
    BACKENDS[name] = Backend(name, build, from_config)


# ---- toy: deterministic, for tests
def _toy(**kw: Any) -> "Thinker":
    from .toy import ToyThinker

    return ToyThinker(**kw)


def _toy_from_config(cfg: AnyModelConfig, device: str, random_weights: bool) -> "Thinker":
    # with the Actor's token stream: audio tokens too, and a voice for them
    return _toy(hidden_size=cfg.thinker.hidden_size, vocab=cfg.thinker.text_vocab, seed=cfg.seed,
                audio_vocab=cfg.thinker.audio_vocab if cfg.actor.token_stream else 0)


# ---- cascade: SmolLM2 + Piper + Whisper (the embedded default)
def _cascade(**kw: Any) -> "Thinker":
    from .cascade import CascadeThinker

    return CascadeThinker(**kw)


# ---- glm4voice: GLM-4-Voice-9B (the paper preset)
BATCH_SLOTS = 8      # on CUDA, rows of the batched decode step (thinker/glm_batch.py): replies decoded as one batch
def _glm4voice(**kw: Any) -> "Thinker":
    """Glm4VoiceThinker.from_pretrained(model_dir, ...) when `model_dir` is given, else
    from_config(cfg=None, ...) (random weights)."""
    from .glm4voice import Glm4VoiceThinker

    model_dir = kw.pop("model_dir", None)
    if model_dir is not None:
        return Glm4VoiceThinker.from_pretrained(model_dir, **kw)
    return Glm4VoiceThinker.from_config(kw.pop("cfg", None), **kw)


def _glm4voice_from_config(cfg: AnyModelConfig, device: str, random_weights: bool) -> "Thinker":
    """The published GLM-4-Voice parts under `thinker.path` (or XSTREAMER_GLM4VOICE_DIR; glm4voice_files), or with
    random weights the same shapes, the speech decoder's too (timing only). With the Actor's token stream the Thinker
    decodes no speech of its own (the Actor's tokens are decoded)."""
    t = cfg.thinker
    decode_audio = not cfg.actor.token_stream
    batch_slots = BATCH_SLOTS if str(device).startswith("cuda") else 0   # every session's replies as one batch
    if random_weights:   # full shape, random weights: timing only (the benchmark says so); the published speech
        # decoder's shapes with random weights (its speech is noise); each text block full, as a trained model's
        # (13 text tokens before a reply's first audio)
        import torch

        from engine_core.codecs.glm4voice_decoder import Glm4VoiceDecoder

        dtype = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
        return _glm4voice(device=device, dtype=dtype, speech_decoder=Glm4VoiceDecoder.random(device),
                          full_text_blocks=True, step_weights=t.step_weights, decode_audio=decode_audio,
                          batch_slots=batch_slots)
    path = t.path or os.environ.get("XSTREAMER_GLM4VOICE_DIR")
    if not path:
        raise BackendUnavailableError("the glm4voice Thinker needs GLM-4-Voice's published files: --glm4voice DIR "
                                      "(or XSTREAMER_GLM4VOICE_DIR, or thinker.path in the model config)")
    from .glm4voice_files import find_parts

    parts = find_parts(path)
    return _glm4voice(model_dir=parts.lm, decoder_dir=parts.decoder, speech_tokenizer_dir=parts.speech_tokenizer,
                      device=device, step_weights=t.step_weights, decode_audio=decode_audio, batch_slots=batch_slots)


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
               speech_tokenizer_dir=..., allow_silent_audio=False, ...) when `model_dir` is
               given, else Glm4VoiceThinker.from_config(cfg=None, device=..., dtype=..., ...) (random weights).
    """
    return _backend(name).build(**kw)


def thinker_from_config(cfg: AnyModelConfig, device: str, random_weights: bool = False) -> "Thinker":
    """The Thinker a model config names (`cfg.thinker.backend`), on `device`."""
    return _backend(cfg.thinker.backend).from_config(cfg, device, random_weights)
