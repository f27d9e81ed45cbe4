"""Several streams' passes as one batched pass (`Actor.forward_many`, engine_core/actor/batch.py): each stream gets
the velocity and the cache its own pass would give, whatever the other streams' fill, origin or conditioning."""

from __future__ import annotations

import copy

import pytest
import torch

from engine_core.actor.model import Actor, blank_pass
from engine_core.actor.schedule import InFlight, PyramidDenoiser, sigma_schedule
from engine_core.config import ModelConfig

pytestmark = pytest.mark.engine


def _actor(name: str = "tiny") -> Actor:
    cfg = ModelConfig.from_name(name)
    torch.manual_seed(0)
    return Actor(cfg).eval()


def _stream(actor: Actor, seed: int, chunks: int) -> PyramidDenoiser:
    """A stream whose cache has seen `chunks` chunks (random conditioning per chunk)."""
    cfg = actor.cfg
    g = torch.Generator().manual_seed(seed)
    cache = actor.new_cache()
    if cfg.actor.identity_dim:                    # motion: normalised landmarks, one vector per identity token
        ident = torch.randn(1, cfg.tokens_per_frame, cfg.actor.identity_dim, generator=g)
    else:
        ident = torch.randn(1, cfg.vae.latent_channels, cfg.latent_hw, cfg.latent_hw, generator=g)
    actor.prefill_identity(cache, ident)
    den = PyramidDenoiser(actor, cache, sigma_schedule(cfg.steps))
    for _ in range(chunks):
        den.advance(_chunk(cfg, den.next_index(), g))
    return den


def _chunk(cfg: ModelConfig, index: int, g: torch.Generator) -> InFlight:
    x, _, cond = blank_pass(cfg, 1, "cpu", torch.float32)
    return InFlight(index=index, x=torch.randn(x.shape, generator=g), speech=torch.randn(cond.speech.shape, generator=g),
                    hidden=torch.randn(1, 1, *cond.hidden.shape[2:], generator=g),
                    hidden_frames=torch.full((1, 1, cfg.max_hidden_tokens), index * cfg.chunk_frames),
                    hidden_mask=torch.rand(1, 1, cfg.max_hidden_tokens, generator=g) < 0.5)


@pytest.mark.parametrize("fills", [(2, 3), (3, 8), (9, 9), (60, 3)])
def test_batched_passes_equal_each_streams_own(fills):
    """Streams at different fills (a cache still empty, a filling one, a full one, one past a position rebase) and with
    different inputs: one batched pass == each stream's own pass, velocities and the caches it writes."""
    actor = _actor()
    streams = [_stream(actor, 10 + i, n) for i, n in enumerate(fills)]
    g = torch.Generator().manual_seed(3)
    plans, alone = [], []
    for den in streams:
        twin = copy.deepcopy(den)             # (deep copies of the cache and the chunks in flight)
        new = _chunk(actor.cfg, den.next_index(), g)
        plans.append(den.plan(new))
        twin_plan = twin.plan(copy.deepcopy(new))
        alone.append((twin, twin_plan, actor(*twin_plan.args(), cache=twin.cache, write_chunks=twin_plan.write)))
    assert len({actor.batch_key(p) for p in plans}) == 1
    velocities = actor.forward_many(plans)
    for v, p, (twin, _, out) in zip(velocities, plans, alone):
        torch.testing.assert_close(v, out.velocity, rtol=1e-4, atol=1e-5)
        assert p.cache.chunks == twin.cache.chunks and p.cache.origin == twin.cache.origin
        torch.testing.assert_close(p.cache.win_k, twin.cache.win_k, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(p.cache.win_v, twin.cache.win_v, rtol=1e-4, atol=1e-5)


def test_batched_streams_follow_their_own_course_over_many_passes():
    """Two streams advanced together for 12 passes (one of them skipping a chunk once, so their pass widths
    part and meet) give the chunks each gives alone."""
    actor = _actor("tiny-motion")
    a, b = _stream(actor, 1, 0), _stream(actor, 2, 4)
    a2, b2 = copy.deepcopy(a), copy.deepcopy(b)
    g = torch.Generator().manual_seed(5)
    done, done_alone, batched = [], [], 0
    for step in range(12):
        na = _chunk(actor.cfg, a.next_index(), g)
        nb = _chunk(actor.cfg, b.next_index(), g) if step != 5 else None
        na2, nb2 = copy.deepcopy(na), copy.deepcopy(nb)          # (before `finish` steps the chunks along)
        pa, pb = a.plan(na), b.plan(nb)
        if actor.batch_key(pa) == actor.batch_key(pb):
            va, vb = actor.forward_many([pa, pb])
            batched += 1
        else:
            va, vb = (actor.forward_many([p])[0] for p in (pa, pb))
        done += [c.x for c in (a.finish(pa, va), b.finish(pb, vb)) if c is not None]
        fa, fb = a2.advance(na2), b2.advance(nb2)
        done_alone += [c.x for c in (fa, fb) if c is not None]
    assert len(done) == len(done_alone) >= 8 and 4 <= batched < 12
    for x, y in zip(done, done_alone):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5)
