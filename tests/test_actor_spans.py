"""A streaming pass after a full cache attends without a mask (masks.ChunkSpans, layers.span_attention): the key
spans are exactly what the block-causal mask allows, attention over them equals masked attention, and a whole
stream through filling, eviction, rebasing and late chunks gives the masked stream's latents."""

from __future__ import annotations

import pytest
import torch

from engine_core.actor import layers
from engine_core.actor.layers import attention, span_attention
from engine_core.actor.masks import IDENTITY, ChunkSpans, self_attention_mask
from engine_core.actor.model import Actor
from engine_core.config import ModelConfig
from tests.test_actor_graphs import CFG, gpu, stream


def full_cache_key_chunks(first: int, window: int, lc: int, sink: int, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(query chunk ids, key chunk ids) of a pass over chunks first..first+m-1 after a full cache, keys laid out
    as KVCache.keys + the pass's own: [window chunks, oldest first | sink | the pass's chunks]."""
    cached = torch.arange(first - window, first).repeat_interleave(lc)
    q = torch.arange(first, first + m).repeat_interleave(lc)
    return q, torch.cat([cached, torch.full((sink,), IDENTITY), q])


@pytest.mark.parametrize("preset", ["tiny", "paper"])
def test_spans_are_the_block_causal_mask_of_a_pass_after_a_full_cache(preset):
    cfg = ModelConfig.from_name(preset)
    lc, w, p = cfg.chunk_tokens, cfg.window, cfg.tokens_per_frame
    for m in range(1, cfg.steps + 2):
        q, k = full_cache_key_chunks(20, w, lc, p, m)
        spans = ChunkSpans.after_full_cache(m, lc, w, p)
        expected = self_attention_mask(q, k, w)
        assert torch.equal(spans.mask(), expected), f"{m} chunks"
        assert spans.span == w * lc + p + lc
    # a cache that is not full (its oldest chunk missing) is not what the spans describe
    q, k = full_cache_key_chunks(20, w, lc, p, 2)
    k[:lc] = -(2 ** 40)
    assert not torch.equal(ChunkSpans.after_full_cache(2, lc, w, p).mask(), self_attention_mask(q, k, w))


@pytest.mark.parametrize("m", [1, 2, 3])
def test_span_attention_equals_masked_attention(m):
    g = torch.Generator().manual_seed(m)
    lc, w, p, heads, kv_heads, d = 7, 3, 4, 4, 2, 16
    spans = ChunkSpans.after_full_cache(m, lc, w, p)
    keys = w * lc + p + m * lc
    q = torch.randn(1, heads, m * lc, d, generator=g)
    k, v = (torch.randn(1, kv_heads, keys, d, generator=g) for _ in range(2))
    ref = attention(q, k, v, spans.mask(), impl="reference")
    got = span_attention(q, k, v, spans)
    assert torch.allclose(got, ref, atol=1e-5), (got - ref).abs().max().item()
    assert torch.allclose(span_attention(q, k, v, spans, impl="reference"), ref, atol=1e-6)
    if m > 1:                                              # (one chunk after a full cache sees every key)
        everything = attention(q, k, v, torch.ones(m * lc, keys, dtype=torch.bool), "reference")
        assert not torch.allclose(everything, ref, atol=1e-3)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, gpu])])
def test_a_stream_without_masks_once_full_gives_the_masked_streams_latents(monkeypatch, device):
    """On CUDA both streams replay their CUDA graphs (fused regions), the masked one's and the spans' own."""
    calls = []

    def counted(*args, **kwargs):
        calls.append(args[3].chunks)
        return span_attention(*args, **kwargs)

    monkeypatch.setattr(layers, "span_attention", counted)
    torch.manual_seed(0)
    actor = Actor(CFG).eval().to(device)
    n = CFG.window + CFG.actor.position_span + 4           # fills the window, evicts, and moves the origin
    gaps = {3, 9, 10, 17}                                  # late chunks: passes of 1 to steps + 1 chunks
    actor.spans = False
    ref = stream(actor, n, seed=7, device=device, gaps=gaps)
    assert calls == []
    actor.spans = True
    got = stream(actor, n, seed=7, device=device, gaps=gaps)
    assert len(got) == len(ref) == n
    tol = 1e-5 if device == "cpu" else 2e-3
    for i, (a, b) in enumerate(zip(got, ref)):
        assert torch.allclose(a, b, atol=tol, rtol=tol), f"chunk {i}: {(a - b).abs().max().item()}"
    if device == "cuda":                                   # a graph's calls happen at its capture only
        assert stream.last.cache in actor._stacks and calls
        return
    per_pass = len(calls) // CFG.actor.layers
    assert per_pass > n // 2                               # most passes, once the cache is full
    assert set(calls) == set(range(1, CFG.steps + 2))      # passes of every width went without a mask
