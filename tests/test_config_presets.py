"""Presets have the shapes the spec names; derived token counts follow from them."""

from __future__ import annotations

import torch

from engine_core.actor.model import Actor
from engine_core.config import ModelConfig


def test_paper_preset_shapes():
    p = ModelConfig.from_name("paper")
    t, a, v = p.thinker, p.actor, p.vae
    assert (t.hidden_size, t.num_layers, t.num_heads, t.kv_groups, t.head_dim, t.ffn_size) == (4096, 40, 32, 2, 128, 13696)
    assert (a.width, a.layers, a.heads, a.kv_heads, a.head_dim, a.ffn_size) == (4096, 40, 32, 2, 128, 13696)
    assert (v.spatial_factor, v.temporal_factor, v.latent_channels) == (32, 8, 128)
    assert p.tokens_per_frame == 64 and p.chunk_frames == 25 and p.latent_frames == 4
    assert (p.latent_frames - 1) * p.vae.temporal_factor + 1 == p.chunk_frames   # LTX decodes exactly 1+8k frames
    assert t.backend == "glm4voice" and t.text_vocab == 151552 and t.audio_vocab == 16384


def test_default_and_tiny_presets():
    d = ModelConfig.from_name("default")
    assert d.thinker.backend == "cascade" and d.thinker.hidden_size == 576 and d.thinker.speech_feature_size == 80
    assert 256 <= d.actor.width <= 384 and 4 <= d.actor.layers <= 6 and 2 <= d.steps <= 4
    assert d.chunk_frames * 40 <= 400                                       # low-latency chunks
    tiny = ModelConfig.from_name("tiny")
    assert tiny.thinker.backend == "toy"
    assert ModelConfig.from_dict(tiny.to_dict()) == tiny


def test_paper_actor_builds_on_meta_device():
    """The paper-shape Actor (without allocating its ~10 B parameters) has the GLM-4-9B body per layer."""
    cfg = ModelConfig.from_name("paper")
    with torch.device("meta"):
        actor = Actor(cfg)
    blk = actor.blocks[0]
    assert blk.q.weight.shape == (4096, 4096) and blk.kv.weight.shape == (2 * 2 * 128, 4096)
    assert blk.mlp[0].weight.shape == (13696, 4096)
    assert len(actor.blocks) == 40
    n = sum(p.numel() for p in actor.parameters())
    assert 8e9 < n < 2e10
