"""The Actor's streaming passes through CUDA graphs (engine_core/actor/graphs.py) compute what the eager block
stack computes: over a stream long enough to fill the cache, evict and rebase, with two sessions' caches
interleaved; shapes once seen are replayed, not captured again. On the CPU the graphs are off by nature."""

from __future__ import annotations

import pytest
import torch

from engine_core.actor.graphs import BlockStack
from engine_core.actor.layers import EAGER
from engine_core.actor.model import Actor
from engine_core.actor.schedule import InFlight, PyramidDenoiser, sigma_schedule
from engine_core.config import ModelConfig

CFG = ModelConfig.from_name("tiny")
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def chunk(i: int, device, seed: int) -> InFlight:
    """Chunk i of a stream: noise, speech features and a few Thinker tokens aligned to its frames."""
    g = torch.Generator().manual_seed(seed * 100_000 + i)
    f, m = CFG.chunk_frames, CFG.max_hidden_tokens
    x = torch.randn(1, 1, CFG.latent_frames, CFG.vae.latent_channels, CFG.latent_hw, CFG.latent_hw, generator=g)
    speech = torch.randn(1, 1, f, CFG.thinker.speech_feature_size, generator=g)
    hidden = torch.randn(1, 1, m, CFG.thinker.hidden_size, generator=g)
    frames = (i * f + torch.arange(m) % f)[None, None]
    mask = (torch.arange(m) < 1 + i % 5)[None, None]
    return InFlight(index=i, x=x.to(device), speech=speech.to(device), hidden=hidden.to(device),
                    hidden_frames=frames.to(device), hidden_mask=mask.to(device))


def open_stream(actor: Actor, seed: int, device) -> PyramidDenoiser:
    ident = torch.randn(1, CFG.vae.latent_channels, CFG.latent_hw, CFG.latent_hw,
                        generator=torch.Generator().manual_seed(seed)).to(device)
    cache = actor.new_cache()
    actor.prefill_identity(cache, ident)
    return PyramidDenoiser(actor, cache, sigma_schedule(CFG.steps, CFG.inference_shift).to(device))


@torch.no_grad()
def advance(den: PyramidDenoiser, chunks: int, seed: int, device, gaps=frozenset(), passes: int = 0):
    """One pass of `den` (a new chunk enters unless the pass number is in `gaps`: a late Thinker, so passes of
    every width from 1 to steps + 1 chunks occur) -> the chunk that became clean, or None."""
    new = None
    if passes not in gaps and den.next_index() < chunks:
        new = chunk(den.next_index(), device, seed)
    return den.advance(new)


def stream(actor: Actor, chunks: int, seed: int, device, gaps=frozenset(), den=None) -> list[torch.Tensor]:
    """Clean latents of the first `chunks` chunks of a pyramid stream (its denoiser, `den` or a new one, is
    left in `stream.last`)."""
    den, out, p = den if den is not None else open_stream(actor, seed, device), [], 0
    while len(out) < chunks:
        done = advance(den, chunks, seed, device, gaps, p)
        if done is not None:
            out.append(done.x.clone())
        p += 1
    stream.last = den
    return out


def gpu_actor() -> Actor:
    torch.manual_seed(0)
    return Actor(CFG).eval().cuda()


def test_on_the_cpu_the_block_stack_runs_eagerly_and_captures_nothing():
    torch.manual_seed(0)
    actor = Actor(CFG).eval()
    assert actor.cuda_graphs
    a = stream(actor, 6, seed=1, device="cpu")
    actor.cuda_graphs = False
    b = stream(actor, 6, seed=1, device="cpu")
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert all(s.captured == 0 for s in actor._stacks.values())
    cache = actor.new_cache()
    assert actor.graph_shapes(cache) == 0 and actor.warm_graphs(cache) == 0 and cache.chunks == []
    assert not BlockStack().captured


@pytest.mark.engine
def test_fused_regions_compute_what_the_eager_ones_do():
    """The blocks' pointwise regions compiled by inductor (its CPU code here; on CUDA they are the default) give
    the eager stream's clean latents; training passes keep the eager regions."""
    torch.manual_seed(0)
    actor = Actor(CFG).eval()
    cpu = torch.device("cpu")
    assert actor.block_ops(cpu) is EAGER                  # off CUDA: eager unless asked
    ref = stream(actor, 6, seed=3, device="cpu", gaps={2})
    actor.fuse = True
    with torch.no_grad():
        assert actor.block_ops(cpu) is not EAGER
    got = stream(actor, 6, seed=3, device="cpu", gaps={2})
    for i, (g, r) in enumerate(zip(got, ref)):
        assert torch.allclose(g, r, atol=1e-4, rtol=1e-4), f"chunk {i}: {(g - r).abs().max().item()}"
    assert actor.block_ops(cpu) is EAGER                  # grad enabled: a training pass


@pytest.mark.gpu
@gpu
def test_graphed_stream_equals_the_eager_stream_through_eviction_and_rebasing():
    actor = gpu_actor()
    n = CFG.window + CFG.actor.position_span + 6          # fills the window, evicts, and moves the origin
    gaps = {3, 9, 10, 17}
    actor.cuda_graphs, actor.fuse = False, False          # the reference: eager kernels, launched one by one
    ref = stream(actor, n, seed=2, device="cuda", gaps=gaps)
    actor.cuda_graphs, actor.fuse = True, None            # CUDA's defaults: fused regions, replayed graphs
    with torch.no_grad():
        assert actor.block_ops(torch.device("cuda")) is not EAGER
    got = stream(actor, n, seed=2, device="cuda", gaps=gaps)
    assert len(got) == len(ref) == n
    for i, (g, r) in enumerate(zip(got, ref)):
        assert torch.allclose(g, r, atol=2e-3, rtol=2e-3), f"chunk {i}: {(g - r).abs().max().item()}"
    # a handful of pass shapes, far fewer than passes: 1..steps+1 chunks, writing or not, with the cache filling
    # (masked) or full (masks.ChunkSpans)
    assert 0 < actor.graph_shapes(stream.last.cache) <= 2 * (2 * CFG.steps + 1)


@pytest.mark.gpu
@gpu
def test_two_sessions_interleaved_keep_their_own_graphs_and_caches():
    actor = gpu_actor()
    actor.cuda_graphs = False
    ref = {seed: stream(actor, 12, seed, "cuda") for seed in (3, 4)}
    actor.cuda_graphs = True
    dens = {seed: open_stream(actor, seed, "cuda") for seed in (3, 4)}
    outs = {seed: [] for seed in dens}
    while min(len(v) for v in outs.values()) < 12:      # pass by pass, in turn: each cache's graphs read its own
        for seed, den in dens.items():
            done = advance(den, 12, seed, "cuda")
            if done is not None and len(outs[seed]) < 12:
                outs[seed].append(done.x.clone())
    for seed in dens:
        assert all(torch.allclose(g, r, atol=1e-4, rtol=1e-4) for g, r in zip(outs[seed], ref[seed]))
    assert len([s for s in actor._stacks.values() if s.captured]) == 2


@pytest.mark.gpu
@gpu
def test_warmed_graphs_serve_a_whole_stream_and_leave_the_cache_as_it_was():
    actor = gpu_actor()
    actor.cuda_graphs = False
    ref = stream(actor, CFG.window + 6, seed=5, device="cuda", gaps={2, 7, 8})
    actor.cuda_graphs = True
    den = open_stream(actor, 5, "cuda")
    sink = den.cache.sink_k.clone()
    shapes = actor.warm_graphs(den.cache)
    assert shapes == 2 * (2 * CFG.steps + 1)                 # 1..steps+1 chunks, writing or not (steps+1 writes),
                                                             # with the cache filling and full
    assert den.cache.chunks == [] and den.cache.origin == 0 and torch.equal(den.cache.sink_k, sink)
    out = stream(actor, CFG.window + 6, 5, "cuda", gaps={2, 7, 8}, den=den)   # filling, full, evicting, late
    assert actor.graph_shapes(den.cache) == shapes           # nothing captured while streaming
    assert all(torch.allclose(g, r, atol=1e-4, rtol=1e-4) for g, r in zip(out, ref))
