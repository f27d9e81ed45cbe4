"""Flow-matching noise, chunk-wise diffusion forcing (training) and the pyramid schedule (inference).

Rectified flow: x_sigma = (1 - sigma) * x0 + sigma * noise, the Actor predicts v = noise - x0, and a step
from sigma_j to sigma_{j+1} is x <- x + (sigma_{j+1} - sigma_j) * v.

Diffusion forcing (training): every chunk of a sample gets its own noise level.

Pyramid (inference, paper): chunk c enters at pass c with noise 1 and moves one step per pass, so in-flight
chunks sit at rising noise levels and one forward pass advances all of them: c chunks and N steps take
exactly c + N - 1 passes instead of c * N. Once a chunk is clean, the *next* pass also carries it at
noise 0 and writes its keys/values to the KV cache (the clean pass, fused with the next step).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from engine_core.actor.kv_cache import KVCache
from engine_core.actor.model import Actor, ChunkCond


def shift_sigma(sigma: torch.Tensor, shift: float) -> torch.Tensor:
    """SD3 time shift: shift > 1 spends more of the schedule at high noise."""
    return shift * sigma / (1 + (shift - 1) * sigma)


def sigma_schedule(steps: int, shift: float = 1.0) -> torch.Tensor:
    """[steps + 1] noise levels from 1 down to 0."""
    return shift_sigma(torch.linspace(1.0, 0.0, steps + 1), shift)


def add_noise(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """x0, noise [B,m,...]; sigma [B,m] -> x_sigma [B,m,...]."""
    s = sigma.view(*sigma.shape, *([1] * (x0.ndim - sigma.ndim)))
    return (1 - s) * x0 + s * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The flow-matching regression target v = noise - x0."""
    return noise - x0


def sample_train_sigmas(batch: int, chunks: int, generator: torch.Generator | None = None,
                        shift: float = 1.0, p_clean: float = 0.1, p_pyramid: float = 0.3,
                        levels: torch.Tensor | None = None, p_levels: float = 0.0) -> torch.Tensor:
    """Diffusion forcing: an independent noise level per chunk -> [B, K].

    Levels mix a uniform and a logit-normal draw (SD3 style), then the time shift. A fraction `p_levels` of
    chunks instead takes one of `levels` (the inference sampler's noise levels: training where the pyramid
    actually evaluates the model). A fraction `p_clean` of chunks is clean (context, as the cache holds at
    inference); in a fraction `p_pyramid` of the samples the levels are sorted to rise along the chunks, the
    shape the pyramid schedule presents at inference.
    """
    u = torch.rand(batch, chunks, generator=generator)
    ln = torch.sigmoid(torch.randn(batch, chunks, generator=generator))
    sig = shift_sigma(0.5 * u + 0.5 * ln, shift)
    if levels is not None and p_levels > 0:
        pick = levels[torch.randint(0, len(levels), (batch, chunks), generator=generator)]
        sig = torch.where(torch.rand(batch, chunks, generator=generator) < p_levels, pick, sig)
    clean = torch.rand(batch, chunks, generator=generator) < p_clean
    sig = torch.where(clean, torch.zeros_like(sig), sig)
    rising = torch.rand(batch, 1, generator=generator) < p_pyramid
    return torch.where(rising, sig.sort(dim=1).values, sig)


def pyramid_plan(num_chunks: int, steps: int) -> list[list[tuple[int, int]]]:
    """The passes of the pyramid schedule: pass p holds (chunk, step) for every chunk in flight."""
    passes = []
    for p in range(num_chunks + steps - 1):
        passes.append([(c, p - c) for c in range(num_chunks) if 0 <= p - c < steps])
    return passes


@dataclass
class InFlight:
    """One chunk on its way through the pyramid (batch B = 1 chunk per entry).

    x [B,1,Fl,C,h,w] latents at noise level sigmas[step]; speech [B,1,F,S]; hidden [B,1,M,Dth];
    hidden_frames [B,1,M] (absolute frames); hidden_mask [B,1,M]; meta: whatever the caller carries along;
    tokens [B,1,T]: the token slots' inputs (`actor.token_stream`, else None).
    """

    index: int
    x: torch.Tensor
    speech: torch.Tensor
    hidden: torch.Tensor
    hidden_frames: torch.Tensor
    hidden_mask: torch.Tensor
    step: int = 0
    meta: Any = None
    tokens: torch.Tensor | None = None


@dataclass
class PassPlan:
    """One streaming pass laid out by `PyramidDenoiser.plan`: its chunks ([pending clean] + in flight), whether it
    writes the first one's keys/values (`write` = 1 or 0), the inputs x [B,m,Fl,C,h,w], sigma [B,m], cond, the
    index of its first chunk, and the stream's KV cache."""

    chunks: list[InFlight]
    write: int
    x: torch.Tensor
    sigma: torch.Tensor
    cond: ChunkCond
    first: int
    cache: KVCache

    def args(self) -> tuple[torch.Tensor, torch.Tensor, ChunkCond, int]:
        """(x, sigma, cond, first chunk): `Actor.forward`'s positional arguments."""
        return self.x, self.sigma, self.cond, self.first


@dataclass
class PyramidDenoiser:
    """Streaming pyramid: each `advance` is exactly one Actor forward pass (see the module docstring)."""

    actor: Actor
    cache: KVCache
    sigmas: torch.Tensor
    in_flight: list[InFlight] = field(default_factory=list)
    pending_clean: InFlight | None = None
    passes: int = 0
    _hidden: dict[int, InFlight] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return len(self.sigmas) - 1

    def next_index(self) -> int:
        """Chunk index the next entering chunk must have."""
        if self.in_flight:
            return self.in_flight[-1].index + 1
        return self.pending_clean.index + 1 if self.pending_clean is not None else (
            self.cache.chunks[-1] + 1 if self.cache.chunks else 0)

    def flush(self) -> list[InFlight]:
        """Drop every chunk still in flight (interrupt); returns them. The pending clean chunk stays."""
        dropped, self.in_flight = self.in_flight, []
        return dropped

    def _cond(self, chunks: list[InFlight]) -> ChunkCond:
        """ChunkCond of consecutive chunks, with the Thinker states of the `cross_chunks` before them."""
        r = self.actor.cfg.cross_chunks
        first = chunks[0]
        hid, frm, msk = [], [], []
        for idx in range(first.index - r, first.index):
            src = self._hidden.get(idx)
            if src is None:
                hid.append(torch.zeros_like(first.hidden))
                frm.append(torch.zeros_like(first.hidden_frames))
                msk.append(torch.zeros_like(first.hidden_mask))
            else:
                hid.append(src.hidden), frm.append(src.hidden_frames), msk.append(src.hidden_mask)
        for c in chunks:
            hid.append(c.hidden), frm.append(c.hidden_frames), msk.append(c.hidden_mask)
        toks = None if any(c.tokens is None for c in chunks) else torch.cat([c.tokens for c in chunks], 1)
        return ChunkCond(torch.cat([c.speech for c in chunks], 1), torch.cat(hid, 1), torch.cat(frm, 1),
                         torch.cat(msk, 1), toks)

    def plan(self, new: InFlight | None) -> PassPlan | None:
        """The first half of `advance`: `new` enters (at noise 1) and the pass over [pending clean chunk at noise 0]
        + the chunks in flight is laid out; None when nothing is in flight (no pass). The pass itself is the
        caller's (`actor(*plan.args(), cache=...)`, or one batched with other streams' passes:
        engine_core/engine/stepper.py); `finish` takes its velocity."""
        if new is not None:
            if new.index != self.next_index():
                raise ValueError(f"chunk {new.index} entered, expected {self.next_index()}")
            new.step = 0
            self.in_flight.append(new)
            self._hidden[new.index] = new
        chunks = ([self.pending_clean] if self.pending_clean is not None else []) + self.in_flight
        if not chunks:
            return None
        write = 1 if self.pending_clean is not None else 0
        sig = torch.stack([self.sigmas[c.step] if c is not self.pending_clean else self.sigmas[-1]
                           for c in chunks]).view(1, -1).expand(chunks[0].x.shape[0], -1)
        x = torch.cat([c.x for c in chunks], dim=1)
        return PassPlan(chunks, write, x, sig.to(x.device, x.dtype), self._cond(chunks), chunks[0].index, self.cache)

    def finish(self, plan: PassPlan | None, velocity: torch.Tensor | None) -> InFlight | None:
        """The second half of `advance`: each chunk of the pass steps along its velocity [B, m, ...]; returns the chunk
        that became clean (its x holds the clean latents), or None."""
        if plan is None:
            return None
        self.passes += 1
        self.pending_clean = None
        finished = None
        for i, c in enumerate(plan.chunks[plan.write:], start=plan.write):
            ds = self.sigmas[c.step + 1] - self.sigmas[c.step]
            c.x = c.x + ds * velocity[:, i:i + 1]
            c.step += 1
        if self.in_flight and self.in_flight[0].step >= self.steps:
            finished = self.in_flight.pop(0)
            self.pending_clean = finished
        live = ([self.pending_clean] if self.pending_clean is not None else []) + self.in_flight
        keep = (live[0].index if live else self.next_index()) - self.actor.cfg.cross_chunks
        self._hidden = {k: v for k, v in self._hidden.items() if k >= keep}
        return finished

    @torch.no_grad()
    def advance(self, new: InFlight | None) -> InFlight | None:
        """One pass: [pending clean chunk at noise 0 (writes the cache)] + in-flight chunks + `new` at noise 1.

        Returns the chunk that became clean in this pass (its x holds the clean latents), or None.
        """
        plan = self.plan(new)
        if plan is None:
            return None
        out = self.actor(*plan.args(), cache=self.cache, write_chunks=plan.write)
        return self.finish(plan, out.velocity)

    @torch.no_grad()
    def write_pending(self) -> None:
        """A standalone clean pass for the pending chunk (when no next pass will carry it)."""
        if self.pending_clean is not None:
            c = self.pending_clean
            sig = torch.zeros(c.x.shape[0], 1, device=c.x.device, dtype=c.x.dtype)
            self.actor(c.x, sig, self._cond([c]), c.index, cache=self.cache, write_chunks=1)
            self.passes += 1
            self.pending_clean = None


def pyramid_generate(actor: Actor, cache: KVCache, chunks: list[InFlight], steps: int,
                     shift: float = 1.0) -> tuple[list[torch.Tensor], int]:
    """Denoise `chunks` (x = pure noise) with the pyramid -> (clean latents [B,1,Fl,C,h,w] each, passes)."""
    den = PyramidDenoiser(actor, cache, sigma_schedule(steps, shift))
    done: list[torch.Tensor] = []
    for c in chunks:
        f = den.advance(c)
        if f is not None:
            done.append(f.x)
    while len(done) < len(chunks):
        f = den.advance(None)
        if f is not None:
            done.append(f.x)
    return done, den.passes
