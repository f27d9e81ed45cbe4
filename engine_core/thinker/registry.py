"""Thinker registry: `load_thinker(name, **kw)` for "toy" | "cascade" | "glm4voice" (backends imported lazily)."""

from __future__ import annotations

from engine_core.errors import ConfigError

from .base import Thinker

THINKERS = ("toy", "cascade", "glm4voice")


def load_thinker(name: str, **kw) -> Thinker:
    """Build a Thinker by name.

    toy:       engine_core.thinker.toy.ToyThinker(**kw)
    cascade:   CascadeThinker(max_new_tokens=72, repetition_penalty=1.15, temperature=0.0, seed=0, voice=None)
    glm4voice: Glm4VoiceThinker.from_pretrained(model_dir, device=..., dtype=..., decoder_dir=...,
               speech_tokenizer_dir=..., code_dir=..., allow_silent_audio=False, ...) when `model_dir` is
               given, else Glm4VoiceThinker.from_config(cfg=None, device=..., dtype=..., ...) (random weights).
    """
    if name == "toy":
        from .toy import ToyThinker

        return ToyThinker(**kw)
    if name == "cascade":
        from .cascade import CascadeThinker

        return CascadeThinker(**kw)
    if name == "glm4voice":
        from .glm4voice import Glm4VoiceThinker

        model_dir = kw.pop("model_dir", None)
        if model_dir is not None:
            return Glm4VoiceThinker.from_pretrained(model_dir, **kw)
        return Glm4VoiceThinker.from_config(kw.pop("cfg", None), **kw)
    raise ConfigError(f"unknown thinker {name!r}; choose one of {', '.join(THINKERS)}")
