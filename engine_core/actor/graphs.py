"""CUDA graphs of the Actor's block stack for streaming passes: one graph per pass shape, per KV cache.

Why: at the paper shape one eager pass launches ~2,400 kernels from Python, and the host, not the GPU, set its
time (host = device time, 68 ms idle). With the Thinker's thread decoding on the same interpreter the two took
turns at the GIL and a pass took ~575 ms (measured on an H200). A replayed graph is one launch.

What a graph holds: the 40 blocks of one pass, from the block stack's input tokens to its output, reading the
past keys/values straight from the cache's buffers (fixed addresses: the cache writes and rotates them in
place) and producing the keys/values of the chunks the pass writes. The inputs (tokens, sigma embeddings,
RoPE angles, masks, Thinker context) are copied into the graph's own buffers before each replay; everything
that depends on Python values (positions, masks, which chunks are cached) is computed outside, eagerly.

A pass shape is everything that fixes the kernels: the tensor shapes, whether the identity sink is there and
how many tokens the pass writes (the cache is read whole however full it is; its empty slots are masked). A
stream sees at most 2 (N + 1) of them (1 to N + 1 chunks in flight, writing a clean chunk or not), and
`Actor.warm_graphs` captures them all when a session opens, so no reply waits for a capture (one eager warm-up
and the capture each). The graphs of one cache share one memory pool: they are
replayed one after another on the session's thread, and their outputs are consumed before the next replay.

`BlockStack.run` computes the same numbers eagerly where graphs are off (CPU, or `Actor.cuda_graphs = False`);
tests compare the two paths (tests/test_actor_graphs.py).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable, Sequence

import torch
import torch.nn as nn

from engine_core.actor.layers import EAGER, BlockOps, additive_mask
from engine_core.actor.masks import ChunkSpans

Stage = Callable[[int, torch.Tensor, torch.Tensor], None]


@dataclass
class PassInputs:
    """The block stack's inputs of one pass (see Actor._run)."""

    x: torch.Tensor                 # [B, L, D] tokens
    mod: torch.Tensor               # [B, G, D] sigma embedding per noise group
    token_group: torch.Tensor       # [L] long
    cos: torch.Tensor               # RoPE of the pass's tokens
    sin: torch.Tensor
    self_mask: torch.Tensor | ChunkSpans   # [L, Lk] bool, or the key spans of a pass after a full cache
    ctx: torch.Tensor               # [B, Lx, D] Thinker context (+ null key)
    ctx_cos: torch.Tensor
    ctx_sin: torch.Tensor
    cross_mask: torch.Tensor        # [B, L, Lx] bool

    def _fields(self) -> tuple:
        return tuple(getattr(self, f.name) for f in fields(self))

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return tuple(t for t in self._fields() if isinstance(t, torch.Tensor))

    def cloned(self) -> PassInputs:
        """A copy with tensors of its own (a graph's input buffers)."""
        return PassInputs(*(t.clone() if isinstance(t, torch.Tensor) else t for t in self._fields()))


def run_blocks(blocks: Sequence[nn.Module], inp: PassInputs, cache, impl: str, write_tokens: int,
               stage: Stage | None, ops: BlockOps = EAGER) -> torch.Tensor:
    """The block stack, eagerly: each block reads its past keys from `cache` (or none) and `stage`s the keys/
    values of the first `write_tokens` tokens of the pass; `ops` are its pointwise regions (eager or fused)."""
    hook = None
    if write_tokens and stage is not None:
        hook = lambda i, k, v: stage(i, k[:, :, :write_tokens], v[:, :, :write_tokens])  # noqa: E731
    x = inp.x
    self_mask = inp.self_mask if isinstance(inp.self_mask, ChunkSpans) else additive_mask(inp.self_mask, x.dtype)
    cross_mask = additive_mask(inp.cross_mask, x.dtype)
    for blk in blocks:
        past = cache.keys(blk.index) if cache is not None else None
        x = blk(x, inp.mod, inp.token_group, (inp.cos, inp.sin), past, self_mask, inp.ctx,
                (inp.ctx_cos, inp.ctx_sin), cross_mask, impl, hook, ops)
    return x


class _Graph:
    """One captured pass shape: its input buffers, the graph, its output and the keys/values it writes."""

    def __init__(self, blocks: Sequence[nn.Module], inp: PassInputs, cache, impl: str, write_tokens: int,
                 ops: BlockOps, pool, capture_stream: torch.cuda.Stream) -> None:
        self.inputs = inp.cloned()
        self.written: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

        def record(i: int, k: torch.Tensor, v: torch.Tensor) -> None:   # graph-owned copies of the written slice
            self.written[i] = (k.clone(), v.clone())

        capture_stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(capture_stream):
            run_blocks(blocks, self.inputs, cache, impl, write_tokens, record, ops)  # warm-up (lazy inits)
            self.graph = torch.cuda.CUDAGraph()
            self.graph.capture_begin(pool=pool, capture_error_mode="thread_local")
            try:
                self.out = run_blocks(blocks, self.inputs, cache, impl, write_tokens, record, ops)
            finally:
                self.graph.capture_end()
        torch.cuda.current_stream().wait_stream(capture_stream)

    def replay(self, inp: PassInputs, stage: Stage | None) -> torch.Tensor:
        for dst, src in zip(self.inputs.tensors(), inp.tensors()):
            dst.copy_(src)
        self.graph.replay()
        if stage is not None:
            for i, (k, v) in self.written.items():
                stage(i, k, v)
        return self.out


class BlockStack:
    """The Actor's streaming passes over one KV cache, through CUDA graphs when `run(graphs=True)` on CUDA
    (module docstring)."""

    def __init__(self) -> None:
        self._captured: dict[tuple, _Graph] = {}
        self._pool = None
        self._stream: torch.cuda.Stream | None = None

    @property
    def captured(self) -> int:
        """How many pass shapes have a graph."""
        return len(self._captured)

    def run(self, blocks: Sequence[nn.Module], inp: PassInputs, cache, impl: str, write_tokens: int,
            stage: Stage | None, graphs: bool = True, ops: BlockOps = EAGER) -> torch.Tensor:
        if not (graphs and inp.x.is_cuda) or torch.is_grad_enabled():      # (training passes stay eager)
            return run_blocks(blocks, inp, cache, impl, write_tokens, stage, ops)
        spans = inp.self_mask if isinstance(inp.self_mask, ChunkSpans) else None
        key = (tuple(tuple(t.shape) for t in inp.tensors()), inp.x.dtype, cache.has_sink, write_tokens, impl,
               ops is EAGER, spans)
        graph = self._captured.get(key)
        if graph is None:
            if self._pool is None:
                self._pool = torch.cuda.graph_pool_handle()
                self._stream = torch.cuda.Stream(inp.x.device)
            graph = self._captured[key] = _Graph(blocks, inp, cache, impl, write_tokens, ops, self._pool,
                                                 self._stream)
        return graph.replay(inp, stage)


__all__ = ["BlockStack", "PassInputs", "run_blocks"]
