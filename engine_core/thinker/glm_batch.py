"""GLM-4-Voice's decode step for every reply in flight at once: continuous batching over a static KV cache of
`slots` rows (one reply per row), one CUDA graph per attention span at that batch.

Why: the paper-shape Thinker's step reads its 19 GB of weights once per token (6.4 ms at the H100's bandwidth,
7.6 ms measured), whatever the batch; four sessions decoding one by one take four times that, one step over
the four replies about the same as one (docs/performance.md, "Many sessions"). Each reply keeps its own row:
its positions, its cached prompt (a session's next turn reuses the prefix its row holds, as `GlmFastDecoder.resume`
does), its length.

  - A step (`GlmSlot.step`) is asked for from the reply's own thread (engine/feed.py) and batched with the other
    replies' through a `StepBatcher` (thinker/batch_steps.py): ONE forward over all `slots` rows, each row writing its
    key/value at its own position and attending to its own row up to it (rows without a reply write a scratch
    position, the cache's last, and are ignored). On CUDA the forward replays the graph of the span (the next
    multiple of `span_block` past the longest reply), captured at `warm`.
  - A prompt (`GlmSlot.resume`) is prefilled by one shared single-row `GlmFastDecoder` (its padded-prefill graphs):
    the row's reusable prefix is copied in, the rest prefilled, the result copied back into the row (40 KB a
    position at the paper's shape: microseconds).
The forward is `glm_fast`'s regions (fused on CUDA) with per-row positions; tests/test_glm_batch.py checks a batch of
replies against each one's own `GlmFastDecoder`.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Callable

import torch
import torch.nn.functional as F

from .batch_steps import StepBatcher
from .glm_fast import EAGER, DecodeOps, GlmFastDecoder, StepWeights, _all_spans, _product, _span
from .prefix import shared_prefix


class GlmSlot:
    """One reply's row: the interface `glm4voice_decode.Decoding.fast` uses of a `GlmFastDecoder`."""

    def __init__(self, owner: GlmBatchDecoder, row: int) -> None:
        self.owner, self.row = owner, row
        self.length = 0
        self.known: list[int] | None = []
        self.reused = 0
        self.max_len = owner.max_len

    def cached_prefix(self, prompt: list[int]) -> int:
        """How many of `prompt`'s first ids the cache holds at their positions."""
        return shared_prefix(self.known, prompt)

    def truncate(self, n: int) -> None:
        self.length = n
        if self.known is not None:
            del self.known[n:]
        elif n == 0:
            self.known = []

    def tell(self, tokens: list[int] | None) -> None:
        if tokens is None:
            self.known = None
        elif self.known is not None:
            self.known.extend(tokens)

    def resume(self, prompt: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Prefill what the row does not already hold of `prompt` -> (logits [1, V] of its last token, hidden)."""
        keep = min(self.cached_prefix(prompt), len(prompt) - 1)
        self.reused = keep
        out = self.owner._prefill(self, keep, prompt)
        self.length, self.known = len(prompt), list(prompt)
        return out

    def step(self, ids: torch.Tensor, token: int | None = None, told: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """ids [1, 1] (on the device) at the row's next position, batched with the other replies' steps ->
        (logits [1, V], hidden [1, D])."""
        if self.length + 1 > self.max_len:
            raise ValueError("the static cache is full")
        ready = None
        if ids.is_cuda:
            ready = torch.cuda.Event()
            ready.record()
        logits, hidden, done = self.owner.batcher.step(self, (ids, ready))
        if done is not None:                          # (made on the decoder's stream, read on this one)
            here = torch.cuda.current_stream()
            here.wait_event(done)
            logits.record_stream(here)
            hidden.record_stream(here)
        self.length += 1
        if told:
            self.tell(None if token is None else [token])
        return logits, hidden


class GlmBatchDecoder:
    """`slots` rows of static cache over a `GlmForCausalLM`'s weights; `take(prompt)` a row for a reply, `give_back`
    after (module docstring)."""

    def __init__(self, hf_model: torch.nn.Module, slots: int = 8, max_len: int = 8192, span_block: int | None = 512,
                 use_cuda_graph: bool | None = None, fuse: bool | None = None,
                 step_weights: StepWeights | None = None, gather_s: float = 0.003,
                 stage: GlmFastDecoder | None = None) -> None:
        self.stage = stage or GlmFastDecoder(hf_model, max_len=max_len, use_cuda_graph=use_cuda_graph,
                                             span_block=span_block, fuse=fuse, step_weights=step_weights)
        st = self.stage
        s = st.shape
        self.shape, self.device, self.dtype = s, st.device, st.dtype
        self.slots, self.max_len, self.span_block = slots, max_len, span_block
        self.scratch = max_len                 # the position rows without a reply write (never read by a reply)
        self.cache = torch.zeros(s.layers, 2, slots, s.kv_heads, max_len + 1, s.head_dim, device=self.device,
                                 dtype=self.dtype)
        self.cos, self.sin = st.cos, st.sin
        self.embed, self.layers, self.norm, self.final_eps = st.embed, st.layers, st.norm, st.final_eps
        self.weights, self.compiled_int8, self.ops = st.step_weights, st.compiled_int8, st.step_ops
        self.use_graph = st.use_graph
        self.stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        self._ids = torch.zeros(slots, 1, dtype=torch.long, device=self.device)
        self._pos = torch.full((slots,), self.scratch, dtype=torch.long, device=self.device)
        self._rows = torch.arange(slots, device=self.device)
        self._graphs: dict[int, tuple[torch.cuda.CUDAGraph, tuple[torch.Tensor, torch.Tensor]]] = {}
        self._free = [GlmSlot(self, r) for r in range(slots)]
        self._lock = threading.Lock()
        self._stage_lock = threading.Lock()
        self.broken = False                   # a batched step failed: the Thinker stops taking rows (glm4voice.py)
        self.batcher: StepBatcher[GlmSlot] = StepBatcher(self._run, gather_s)

    # -- rows ----------------------------------------------------------------------------------------------------
    def take(self, prompt: list[int] | None = None) -> GlmSlot | None:
        """A free row for a reply (the one holding most of `prompt` already), or None when every row is taken."""
        with self._lock:
            if not self._free:
                return None
            best = max(self._free, key=lambda r: r.cached_prefix(prompt or []))
            self._free.remove(best)
        self.batcher.open(best)
        return best

    def give_back(self, slot: GlmSlot) -> None:
        self.batcher.close(slot)
        with self._lock:
            self._free.append(slot)

    @property
    def spans(self) -> list[int]:
        return _all_spans(self.span_block, self.max_len)

    # -- prefill (one reply at a time, through the stage decoder) ---------------------------------------------
    def _prefill(self, slot: GlmSlot, keep: int, prompt: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        st, r = self.stage, slot.row
        with self._stage_lock:
            if keep:
                st.cache[:, :, 0, :, :keep].copy_(self.cache[:, :, r, :, :keep])
            st.known = list(prompt[:keep])
            st.truncate(keep)
            logits, hidden = st.prefill(torch.tensor([prompt[keep:]], device=self.device), tokens=prompt[keep:])
            self.cache[:, :, r, :, keep:len(prompt)].copy_(st.cache[:, :, 0, :, keep:len(prompt)])
        return logits, hidden

    # -- the batched step ----------------------------------------------------------------------------------------
    def _forward(self, ids: torch.Tensor, pos: torch.Tensor, span: int,
                 ops: DecodeOps = EAGER) -> tuple[torch.Tensor, torch.Tensor]:
        """ids [S, 1] at per-row positions pos [S] -> (logits [S, V], hidden [S, D]); row b attends to its own cache
        row up to pos[b], within the first `span` slots."""
        s, w = self.shape, self.weights
        b = ids.shape[0]

        def product(x: torch.Tensor, weight: tuple) -> torch.Tensor:
            return _product(x, weight, self.compiled_int8)
        x = self.embed(ids)                                                        # [S, 1, D]
        at = pos.clamp(max=self.max_len - 1)                                       # (the scratch row's angle: any)
        cos, sin = self.cos[at].view(b, 1, 1, -1), self.sin[at].view(b, 1, 1, -1)
        keys = torch.arange(span, device=self.device)
        mask = torch.zeros(b, 1, 1, span, device=self.device, dtype=self.dtype).masked_fill_(
            keys.view(1, 1, 1, -1) > pos.view(-1, 1, 1, 1), float("-inf"))
        delta = None
        for i, layer in enumerate(self.layers):
            lw = w.layers[i]
            if delta is None:
                h = ops.rms(x, layer.input_layernorm.weight, s.eps)
            else:
                x, h = ops.add_rms(x, delta, layer.input_layernorm.weight, s.eps)
            q, k, v = ops.qkv_heads(product(h, lw.qkv), cos, sin, s.heads, s.kv_heads, s.rotary_dim)
            self.cache[i, 0][self._rows, :, pos] = k[:, :, 0]
            self.cache[i, 1][self._rows, :, pos] = v[:, :, 0]
            o = F.scaled_dot_product_attention(q, self.cache[i, 0, :, :, :span], self.cache[i, 1, :, :, :span],
                                               attn_mask=mask, enable_gqa=True)
            x, h = ops.add_rms(x, product(o.transpose(1, 2).reshape(b, 1, s.heads * s.head_dim), lw.o),
                               layer.post_attention_layernorm.weight, s.eps)
            delta = product(ops.swiglu(product(h, lw.gate_up)), lw.down)
        hidden = ops.add_rms(x, delta, self.norm.weight, self.final_eps)[1]
        return product(hidden[:, -1], w.head), hidden[:, -1]

    def _run(self, rows: list[tuple[GlmSlot, tuple[torch.Tensor, torch.cuda.Event | None]]]) -> list[tuple]:
        """One batched step for the rows that asked (StepBatcher's `run`); a failure marks the decoder `broken`."""
        try:
            return self._step(rows)
        except Exception:
            self.broken = True
            raise

    def _step(self, rows: list[tuple[GlmSlot, tuple[torch.Tensor, torch.cuda.Event | None]]]) -> list[tuple]:
        pos = [self.scratch] * self.slots
        for slot, _ in rows:
            pos[slot.row] = slot.length
        span = _span(max(pos[slot.row] for slot, _ in rows) + 1, self.span_block, self.max_len)
        with self._own_stream(rows):
            for slot, (ids, _) in rows:
                self._ids[slot.row].copy_(ids.view(-1))
            self._pos.copy_(torch.tensor(pos), non_blocking=True)
            if self.use_graph:
                if not self._graphs:
                    self._capture()
                graph, out = self._graphs[span]
                graph.replay()
                logits, hidden = (t.clone() for t in out)
            else:
                logits, hidden = self._forward(self._ids, self._pos, span, self.ops)
            self._pos.fill_(self.scratch)     # (rows that do not ask next time write the scratch position)
            done = None
            if self.stream is not None:
                done = torch.cuda.Event()
                done.record()
        return [(logits[slot.row:slot.row + 1], hidden[slot.row:slot.row + 1], done) for slot, _ in rows]

    @contextlib.contextmanager
    def _own_stream(self, rows):
        """Run on the decoder's stream, after each asking thread's work up to its ask (its token is drawn there)."""
        if self.stream is None:
            yield
            return
        for _, (_, ready) in rows:
            if ready is not None:
                self.stream.wait_event(ready)
        with torch.cuda.stream(self.stream):
            yield

    @torch.inference_mode()
    def warm(self) -> None:
        """Capture the step graph of every span (and the stage decoder's prefill graphs) now; no-op without graphs."""
        self.stage.warm()
        if self.use_graph and not self._graphs:
            with torch.cuda.stream(self.stream):
                self._capture()
            torch.cuda.current_stream().wait_stream(self.stream)

    def _capture(self) -> None:
        pool = torch.cuda.graph_pool_handle()
        self._pos.fill_(self.scratch)                       # warm-ups and captures write only the scratch position

        def capture(forward: Callable[[], tuple[torch.Tensor, torch.Tensor]]):
            for _ in range(2):
                forward()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool, stream=self.stream, capture_error_mode="thread_local"):
                out = forward()
            return graph, out

        for span in self.spans:
            self._graphs[span] = capture(lambda span=span: self._forward(self._ids, self._pos, span, self.ops))


__all__ = ["GlmBatchDecoder", "GlmSlot"]
