"""Several streams' passes as one batched pass of the Actor (`Actor.forward_many`).

Each stream (a session) has its own KV cache, its own chunk indices and position origin, so its pass has its own
RoPE angles, masks and Thinker context; only the weights are shared. A batch of B passes with the same number of
chunks (and written chunks) stacks those inputs along the batch axis — RoPE angles and masks become per-row
([B, L, Dh/2], [B, L, Lk]) — and reads the past keys of row b from stream b's cache:

  - eagerly (the CPU), `CacheRows` concatenates the caches' keys per layer and hands each row's new keys back to
    its own cache;
  - on CUDA, `GatheredKV` copies the caches' windows and sinks into rows of one preallocated buffer before the
    pass (a few MB per stream at the paper's shape, ~0.1 ms), so that the graph captured for batch size B
    (engine_core/actor/graphs.py) reads fixed addresses whatever streams make up the batch; `warm` captures the
    shapes a stream meets in its steady state for every batch size up to `max_batch`.

A pass computes the same numbers for its stream batched or alone (tests/test_actor_batch.py), up to the float
rounding of a wider matrix product.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import torch

from engine_core.actor.cond import blank_pass
from engine_core.actor.graphs import BlockStack, PassInputs, run_blocks
from engine_core.actor.kv_cache import KVCache
from engine_core.actor.masks import ChunkSpans


class StreamPass(Protocol):
    """One stream's pass (schedule.PassPlan): inputs x [1,m,Fl,C,h,w], sigma [1,m], cond, its first chunk's index,
    its cache and how many chunks it writes (0 or 1)."""

    x: torch.Tensor
    sigma: torch.Tensor
    cond: object
    first: int
    cache: KVCache
    write: int


def stack_inputs(inputs: Sequence[PassInputs]) -> PassInputs:
    """B one-row passes' inputs -> one pass of B rows: per-row RoPE angles and masks (a shared ChunkSpans stays)."""
    first = inputs[0]
    if any(not torch.equal(i.token_group, first.token_group) for i in inputs[1:]):
        raise ValueError("stack_inputs: the passes' token layouts differ")

    def rows(ts: list[torch.Tensor]) -> torch.Tensor:          # [L, ...] each -> [B, L, ...]
        return torch.stack(ts) if ts[0].ndim == 2 else torch.cat(ts)

    spans = [i.self_mask for i in inputs]
    if all(isinstance(s, ChunkSpans) for s in spans) and len(set(spans)) == 1:
        self_mask: torch.Tensor | ChunkSpans = spans[0]
    else:
        dev = first.x.device
        self_mask = rows([s.mask(dev) if isinstance(s, ChunkSpans) else s for s in spans])
    return PassInputs(
        x=torch.cat([i.x for i in inputs]),
        mod=torch.cat([i.mod for i in inputs], dim=1 if first.mod.dim() == 4 else 0),
        token_group=first.token_group,
        cos=rows([i.cos for i in inputs]), sin=rows([i.sin for i in inputs]),
        self_mask=self_mask,
        ctx=torch.cat([i.ctx for i in inputs]),
        ctx_cos=rows([i.ctx_cos for i in inputs]), ctx_sin=rows([i.ctx_sin for i in inputs]),
        cross_mask=torch.cat([i.cross_mask for i in inputs]))


class CacheRows:
    """Several caches read as one batch (row b = cache b): what a block asks of a cache during an eager pass."""

    def __init__(self, caches: Sequence[KVCache]) -> None:
        self.caches = list(caches)
        self.has_sink = all(c.has_sink for c in caches)

    def keys(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        kv = [c.keys(layer) for c in self.caches]
        return torch.cat([k for k, _ in kv]), torch.cat([v for _, v in kv])

    def stage(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Row b's new keys/values go to cache b (committed by the caller)."""
        for b, c in enumerate(self.caches):
            c.append(layer, k[b:b + 1], v[b:b + 1])


class GatheredKV:
    """Fixed buffers [layers, max_batch, kv_heads, window*Lc + P, Dh] that a batch's caches are copied into (rows
    0..B-1) before a graph replay: the graph of batch size B reads rows :B, whichever streams they hold."""

    def __init__(self, like: KVCache, max_batch: int) -> None:
        layers, _, heads, win, dh = like.win_k.shape
        self.win = win
        shape = (layers, max_batch, heads, win + like.sink_k.shape[3], dh)
        self.k = torch.zeros(shape, device=like.win_k.device, dtype=like.win_k.dtype)
        self.v = torch.zeros_like(self.k)
        self.max_batch = max_batch
        self.rows = 0
        self.has_sink = True
        self.caches: list[KVCache] = []

    def gather(self, caches: Sequence[KVCache]) -> None:
        for b, c in enumerate(caches):
            self.k[:, b, :, :self.win].copy_(c.win_k[:, 0])
            self.k[:, b, :, self.win:].copy_(c.sink_k[:, 0])
            self.v[:, b, :, :self.win].copy_(c.win_v[:, 0])
            self.v[:, b, :, self.win:].copy_(c.sink_v[:, 0])
        self.rows, self.caches = len(caches), list(caches)

    def keys(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.k[layer, :self.rows], self.v[layer, :self.rows]

    def stage(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        for b, c in enumerate(self.caches):
            c.append(layer, k[b:b + 1], v[b:b + 1])


class BatchRunner:
    """The block stack over a batch of streams: eager on the CPU (any shape), from graphs per batch size on CUDA
    (the shapes `warm` captured; `can_run` says which)."""

    def __init__(self) -> None:
        self._stack = BlockStack()
        self._kv: GatheredKV | None = None
        self._warmed: set[tuple[int, int, int, bool]] = set()    # (batch, chunks, written, spans)
        self.enabled = True

    def disable(self) -> None:
        """No more batched passes (after a failure): `can_run` says no."""
        self.enabled = False

    @property
    def max_batch(self) -> int:
        return self._kv.max_batch if self._kv is not None else 0

    def can_run(self, device: torch.device, batch: int, chunks: int, write: int, spans: bool, graphs: bool) -> bool:
        if not self.enabled:
            return False
        if device.type != "cuda" or not graphs:
            return True
        return (batch, chunks, write, spans) in self._warmed

    def run(self, blocks, inp: PassInputs, caches: Sequence[KVCache], impl: str, write_tokens: int, ops,
            graphs: bool = True) -> torch.Tensor:
        if not (graphs and inp.x.is_cuda):
            rows = CacheRows(caches)
            return run_blocks(blocks, inp, rows, impl, write_tokens, rows.stage, ops)
        assert self._kv is not None
        self._kv.gather(caches)
        return self._stack.run(blocks, inp, self._kv, impl, write_tokens, self._kv.stage, True, ops)

    def warm(self, actor, max_batch: int, shapes: Sequence[tuple[int, int, bool]]) -> int:
        """Capture the graphs of `shapes` ((chunks, written, spans) each) for every batch size 2..max_batch (CUDA,
        graphs on; else a no-op). Returns how many batch shapes have a graph."""
        p = next(actor.parameters())
        if not (actor.cuda_graphs and p.is_cuda) or max_batch < 2:
            return 0
        cfg = actor.cfg
        cache = actor.new_cache()
        if self._kv is None or self._kv.max_batch < max_batch:
            self._kv = GatheredKV(cache, max_batch)
        cache.has_sink = True
        first = cfg.window + 1
        ops = actor.block_ops(p.device)
        for m, write, spans in shapes:
            cache.chunks = list(range(first - cfg.window, first)) if spans else []
            x, sig, cond = blank_pass(cfg, m, p.device, p.dtype)
            q = actor._prepare(x, sig, cond, first, cache, None)
            one = actor._pass_inputs(q.tokens, q.pos, q.q_chunk, q.group_sigma, q.token_group, cond, first, cache,
                                     q.q_slot)
            if isinstance(one.self_mask, ChunkSpans) != spans:
                continue                                  # (this Actor never attends without a mask)
            for b in range(2, max_batch + 1):
                self._kv.gather([cache] * b)
                self._stack.run(actor.blocks, stack_inputs([one] * b), self._kv, actor.attn_impl,
                                write * cfg.chunk_tokens, None, True, ops)
                cache._staged.clear()
                self._warmed.add((b, m, write, spans))
        return len(self._warmed)


__all__ = ["BatchRunner", "CacheRows", "GatheredKV", "StreamPass", "stack_inputs"]
