"""The Actor's mechanisms on the tiny preset: block causality, cache == recompute, bounded cache with an
identity sink, time-aligned RoPE ids, pyramid pass count, sdpa == reference attention."""

from __future__ import annotations

import pytest
import torch

from engine_core.actor.masks import IDENTITY
from engine_core.actor.model import Actor, ChunkCond
from engine_core.actor.rope import (cond_position_ids, identity_position_ids, text_position_ids, time_id,
                                    video_position_ids)
from engine_core.actor.schedule import InFlight, pyramid_generate, pyramid_plan
from engine_core.config import ModelConfig

CFG = ModelConfig.from_name("tiny")



@pytest.fixture(scope="module")
def actor() -> Actor:
    torch.manual_seed(0)
    return Actor(CFG).eval()


def make_inputs(k: int, seed: int = 0):
    """Latents [1,k,...], sigma [1,k], ChunkCond covering chunks -R..k-1, identity [1,C,h,w]."""
    g = torch.Generator().manual_seed(seed)
    f, r, m = CFG.chunk_frames, CFG.cross_chunks, CFG.max_hidden_tokens
    x = torch.randn(1, k, CFG.latent_frames, CFG.vae.latent_channels, CFG.latent_hw, CFG.latent_hw, generator=g)
    sigma = torch.rand(1, k, generator=g)
    speech = torch.randn(1, k, f, CFG.thinker.speech_feature_size, generator=g)
    hidden = torch.randn(1, r + k, m, CFG.thinker.hidden_size, generator=g)
    frames = ((torch.arange(r + k) - r)[:, None] * f + torch.arange(m)[None] % f)[None].clone()
    mask = (frames >= 0) & (torch.arange(m) < 4)
    ident = torch.randn(1, CFG.vae.latent_channels, CFG.latent_hw, CFG.latent_hw, generator=g)
    return x, sigma, ChunkCond(speech, hidden, frames, mask), ident


def slice_cond(cond: ChunkCond, k: int, m: int = 1) -> ChunkCond:
    r = CFG.cross_chunks
    return ChunkCond(cond.speech[:, k:k + m], cond.hidden[:, k:k + r + m], cond.hidden_frames[:, k:k + r + m],
                     cond.hidden_mask[:, k:k + r + m])


@torch.no_grad()
def test_later_chunks_never_change_earlier_outputs(actor):
    x, sig, cond, ident = make_inputs(4)
    base = actor(x, sig, cond, 0, identity=ident, heads=True)
    k = 2
    x2, cond2 = x.clone(), ChunkCond(cond.speech.clone(), cond.hidden.clone(), cond.hidden_frames, cond.hidden_mask)
    x2[:, k] += 1.0
    cond2.speech[:, k] += 1.0
    cond2.hidden[:, CFG.cross_chunks + k] += 1.0
    sig2 = sig.clone()
    sig2[:, k] = 0.9 if sig[0, k] < 0.5 else 0.1
    out = actor(x2, sig2, cond2, 0, identity=ident, heads=True)
    assert torch.equal(out.velocity[:, :k], base.velocity[:, :k])
    assert torch.equal(out.text_logits[:, :k], base.text_logits[:, :k])
    assert (out.velocity[:, k] - base.velocity[:, k]).abs().max() > 1e-3
    assert (out.velocity[:, k + 1] - base.velocity[:, k + 1]).abs().max() > 1e-3   # later chunks do see it


@torch.no_grad()
def test_video_tokens_inside_a_chunk_see_each_other(actor):
    x, sig, cond, ident = make_inputs(2)
    base = actor(x, sig, cond, 0, identity=ident).velocity
    x2 = x.clone()
    x2[0, 1, -1, :, -4:, -4:] += 2.0          # the last token of the last latent frame of chunk 1
    out = actor(x2, sig, cond, 0, identity=ident).velocity
    # the first token (top-left patch) of the first latent frame of chunk 1 changes: bidirectional in-chunk
    p = CFG.actor.patch
    assert (out[0, 1, 0, :, :p, :p] - base[0, 1, 0, :, :p, :p]).abs().max() > 1e-4
    assert torch.equal(out[0, 0], base[0, 0])


@torch.no_grad()
@pytest.mark.parametrize("impl", ["sdpa", "reference"])
def test_cached_generation_equals_full_recompute(actor, impl):
    actor.attn_impl = impl
    try:
        k = CFG.window + 3                      # beyond the window: eviction must match the windowed mask
        x, sig, cond, ident = make_inputs(k, seed=1)
        full = actor(x, sig, cond, 0, identity=ident).velocity
        cache = actor.new_cache()
        actor.prefill_identity(cache, ident)
        outs = [actor(x[:, i:i + 1], sig[:, i:i + 1], slice_cond(cond, i), i, cache=cache, write_chunks=1).velocity
                for i in range(k)]
        assert torch.allclose(torch.cat(outs, 1), full, atol=1e-4, rtol=1e-4)
        # two chunks in one pass (the pyramid's shape) equal the recompute too
        cache = actor.new_cache()
        actor.prefill_identity(cache, ident)
        for i in range(3):
            actor(x[:, i:i + 1], sig[:, i:i + 1], slice_cond(cond, i), i, cache=cache, write_chunks=1)
        two = actor(x[:, 3:5], sig[:, 3:5], slice_cond(cond, 3, 2), 3, cache=cache).velocity
        assert torch.allclose(two, full[:, 3:5], atol=1e-4, rtol=1e-4)
    finally:
        actor.attn_impl = "sdpa"


@torch.no_grad()
def test_sdpa_matches_reference_attention(actor):
    x, sig, cond, ident = make_inputs(3, seed=2)
    a = actor(x, sig, cond, 0, identity=ident).velocity
    actor.attn_impl = "reference"
    try:
        b = actor(x, sig, cond, 0, identity=ident).velocity
    finally:
        actor.attn_impl = "sdpa"
    assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


@torch.no_grad()
def test_cache_memory_is_bounded_and_identity_stays_visible(actor):
    n = 105
    x, sig, cond, ident = make_inputs(1, seed=3)
    # batch row 0 and row 1 differ only in their portrait
    idents = torch.cat([ident, ident.flip(-1) + 1.0])
    x, sig = x.expand(2, *x.shape[1:]), sig.expand(2, -1)
    cond = ChunkCond(*(t.expand(2, *t.shape[1:]) for t in (cond.speech, cond.hidden, cond.hidden_frames,
                                                              cond.hidden_mask)))
    cache = actor.new_cache(batch=2)
    actor.prefill_identity(cache, idents)
    mem0 = cache.memory_bytes()
    f = CFG.chunk_frames
    for i in range(n):
        c_i = ChunkCond(cond.speech, cond.hidden, cond.hidden_frames + i * f, cond.hidden_mask)
        actor(x, sig, c_i, i, cache=cache, write_chunks=1)
        assert cache.memory_bytes() == mem0
        assert len(cache.chunks) == min(i + 1, CFG.window)
    keys = cache.key_chunks()
    assert int((keys == IDENTITY).sum()) == CFG.tokens_per_frame
    assert cache.chunks == list(range(n - CFG.window, n))
    c_n = ChunkCond(cond.speech, cond.hidden, cond.hidden_frames + n * f, cond.hidden_mask)
    out = actor(x, sig, c_n, n, cache=cache).velocity
    assert (out[0] - out[1]).abs().max() > 1e-4            # the portrait still steers chunk 105


def test_equal_timestamps_get_equal_time_ids():
    f = CFG.chunk_frames
    chunk, frame_in_chunk = 3, 2
    t = chunk * f + frame_in_chunk
    cond_ids = cond_position_ids(CFG, chunk, 1)[0, frame_in_chunk]          # (t, t, t)
    text_ids = text_position_ids(torch.tensor([t]))[0]
    vid = video_position_ids(CFG, chunk, 1)[0].view(CFG.latent_frames, CFG.tokens_per_frame, 3)
    assert cond_ids.tolist() == [t, t, t] == text_ids.tolist()
    assert (vid[frame_in_chunk, :, 0] == t).all()                            # every video token of that frame
    assert vid[frame_in_chunk, :, 1:].unique(dim=0).shape[0] == CFG.tokens_per_frame   # distinct (h, w)
    assert time_id(t / 25.0) == t                                            # 25 ids per second
    assert (identity_position_ids(CFG)[:, 0] < 0).all()                      # identity: a slot before t=0


@torch.no_grad()
@pytest.mark.parametrize("chunks,steps", [(5, 3), (1, 4), (4, 1)])
def test_pyramid_makes_chunks_plus_steps_minus_one_passes(chunks, steps):
    cfg = ModelConfig.from_name("tiny")
    torch.manual_seed(0)
    actor = Actor(cfg).eval()
    calls = []
    actor.register_forward_hook(lambda mod, args, out: calls.append(args[0].shape[1]))
    x, sig, cond, ident = make_inputs(chunks, seed=4)
    cache = actor.new_cache()
    actor.prefill_identity(cache, ident)
    items = [InFlight(index=i, x=torch.randn_like(x[:, i:i + 1]), speech=cond.speech[:, i:i + 1],
                      hidden=cond.hidden[:, cfg.cross_chunks + i:cfg.cross_chunks + i + 1],
                      hidden_frames=cond.hidden_frames[:, cfg.cross_chunks + i:cfg.cross_chunks + i + 1],
                      hidden_mask=cond.hidden_mask[:, cfg.cross_chunks + i:cfg.cross_chunks + i + 1])
             for i in range(chunks)]
    done, passes = pyramid_generate(actor, cache, items, steps)
    assert len(calls) == passes == chunks + steps - 1 == len(pyramid_plan(chunks, steps))
    assert len(done) == chunks
    assert max(calls) <= steps + 1                    # one pass carries at most N in-flight + 1 clean chunk
    assert cache.chunks == list(range(max(0, chunks - 1 - cfg.window), chunks - 1))[-cfg.window:]


@torch.no_grad()
def test_pyramid_clean_pass_writes_the_same_cache_as_separate_clean_passes(actor):
    steps, chunks = 3, 4
    _, _, cond, ident = make_inputs(chunks, seed=5)
    r = CFG.cross_chunks
    items = [InFlight(index=i, x=torch.randn(1, 1, CFG.latent_frames, CFG.vae.latent_channels, CFG.latent_hw,
                                             CFG.latent_hw, generator=torch.Generator().manual_seed(i)),
                      speech=cond.speech[:, i:i + 1], hidden=cond.hidden[:, r + i:r + i + 1],
                      hidden_frames=cond.hidden_frames[:, r + i:r + i + 1],
                      hidden_mask=cond.hidden_mask[:, r + i:r + i + 1]) for i in range(chunks)]
    cache = actor.new_cache()
    actor.prefill_identity(cache, ident)
    done, _ = pyramid_generate(actor, cache, items, steps)
    assert cache.chunks == [0, 1, 2]                       # the last chunk's clean pass has not run yet
    ref = actor.new_cache()
    actor.prefill_identity(ref, ident)
    for i in range(chunks - 1):                            # explicit clean passes at noise 0, one per chunk
        actor(done[i], torch.zeros(1, 1), slice_cond(cond, i), i, cache=ref, write_chunks=1)
    assert torch.allclose(cache.win_k, ref.win_k, atol=1e-5) and torch.allclose(cache.win_v, ref.win_v, atol=1e-5)
    assert all(torch.isfinite(d).all() for d in done)


@torch.no_grad()
def test_positions_follow_a_long_stream_and_rebasing_is_exact(actor):
    span, f, w = CFG.actor.position_span, CFG.chunk_frames, CFG.window
    x, sig, cond, ident = make_inputs(1, seed=5)

    def cond_at(i):
        return ChunkCond(cond.speech, cond.hidden, cond.hidden_frames + i * f, cond.hidden_mask)

    # 1. rebasing rotates the cached keys into exactly the keys written at the new origin (layer 0, whose keys
    #    depend on the tokens and their positions only; deeper layers' keys also carry what their tokens saw)
    a, b = actor.new_cache(), actor.new_cache()
    actor.prefill_identity(a, ident)
    actor.prefill_identity(b, ident)
    b.origin = 2
    for i in range(w):
        actor(x, sig, cond_at(i), i, cache=a, write_chunks=1)
        actor(x, sig, cond_at(i), i, cache=b, write_chunks=1)
    actor.rebase(a, 2)
    assert a.origin == 2 and torch.allclose(a.win_k[0], b.win_k[0], atol=1e-5)
    assert torch.allclose(a.win_v[0], b.win_v[0], atol=1e-6) and torch.equal(a.sink_k, b.sink_k)
    assert not torch.allclose(a.win_k[0], actor.new_cache().win_k[0])          # (the window is not empty)

    # 2. over a long stream the positions stay inside the span, and the stream is stationary: the same inputs
    #    give the same outputs wherever the stream is (here from chunk 1000 and from chunk 50000)
    outs = []
    for start in (1000, 50000):
        cache = actor.new_cache()
        actor.prefill_identity(cache, ident)
        row = []
        for i in range(start, start + span + 10):
            row.append(actor(x, sig, cond_at(i), i, cache=cache, write_chunks=1).velocity)
            assert 0 < i + 1 - cache.origin <= span
        outs.append(torch.cat(row, 1))
    assert torch.allclose(outs[0], outs[1], atol=1e-4)
