"""A fast decoder for GLM-4-shape language models: static KV cache + CUDA graphs of the decode step.

It runs the *same weights* as transformers' `GlmForCausalLM` (it reads the HF modules' parameters, no copy)
with a functional forward that a CUDA graph can capture: a preallocated KV cache [layers, 2, B, kv_heads,
max_len, head_dim], positions held in a device tensor, the attention mask derived on the device from that
position. `tests/test_glm_fast.py` proves it computes the same logits and hidden states as the HF model on a
tiny random config; `xstreamer bench --preset paper --device cuda` times it at the 9B shape.

GLM specifics kept here: partial rotary embedding (half of each head), interleaved pairs (x[0::2], x[1::2]),
QKV bias, fused gate/up projection with SiLU, RMSNorm before attention and MLP, grouped-query attention.

Fewer kernels per step (a decode step was ~40 kernels a layer): q/k/v are one matrix product (their weights
concatenated once, at construction) and RMSNorm is `F.rms_norm`; on an H200 the CUDA-graph step went 8.96 →
8.10 ms at the paper shape. On CUDA the glue between the matrix products (norms, the
q/k/v split and RoPE, SwiGLU, the residual adds) is compiled into one kernel per region (engine_core/fusion.py),
and a step attends to the cache only up to the next multiple of `span_block` positions (one graph per span)
instead of all `max_len` slots. Attention stays SDPA with `enable_gqa` over the masked
cache: folding each KV head's query heads into its query rows (plain attention on the 2 KV heads, no K/V copy per
query head) was tried and measured 14.05 ms, since 2 heads x 16 rows leave the GPU's SMs idle.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

from engine_core.fusion import fused, wanted
from engine_core.thinker import weight_int8
from engine_core.thinker.weight_int8 import Int8Weight
from .prefix import shared_prefix


@dataclass
class _Shape:
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    rotary_dim: int
    theta: float
    eps: float


def _shape_of(config) -> _Shape:
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    rope = getattr(config, "rope_parameters", None) or {}
    factor = rope.get("partial_rotary_factor", getattr(config, "partial_rotary_factor", 0.5))
    theta = rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))
    return _Shape(config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads, head_dim,
                  int(head_dim * factor), float(theta), float(config.rms_norm_eps))


def _rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """GLM's RMSNorm: normalised in float32, cast back, then scaled."""
    return weight * F.rms_norm(x.float(), (x.shape[-1],), eps=eps).to(x.dtype)


def _add_rms(x: torch.Tensor, delta: torch.Tensor, weight: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The residual add and the next RMSNorm: (x + delta, its norm)."""
    x = x + delta
    return x, _rms(x, weight, eps)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, rotary_dim: int) -> torch.Tensor:
    """Interleaved partial RoPE. x [B, H, T, D]; cos/sin [T, rotary_dim] (pairs repeated)."""
    rot, keep = x[..., :rotary_dim], x[..., rotary_dim:]
    pairs = torch.stack((-rot[..., 1::2], rot[..., 0::2]), dim=-1).flatten(-2)
    return torch.cat((rot * cos + pairs * sin, keep), dim=-1)


def _qkv_heads(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, heads: int, kv_heads: int,
               rotary_dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The fused q/k/v projection's output [B, n, (H + 2 Hkv) D] -> q [B, H, n, D], k and v [B, Hkv, n, D], q and
    k rotated."""
    b, n, width = qkv.shape
    d = width // (heads + 2 * kv_heads)
    q, k, v = qkv.split([heads * d, kv_heads * d, kv_heads * d], dim=-1)
    q = q.view(b, n, heads, d).transpose(1, 2)
    k = k.view(b, n, kv_heads, d).transpose(1, 2)
    v = v.view(b, n, kv_heads, d).transpose(1, 2)
    return _rotate(q, cos, sin, rotary_dim), _rotate(k, cos, sin, rotary_dim), v


def _swiglu(gate_up: torch.Tensor) -> torch.Tensor:
    gate, up = gate_up.chunk(2, dim=-1)
    return up * F.silu(gate)


class DecodeOps(NamedTuple):
    """The pointwise regions of a decode step (engine_core/fusion.py fuses each into one kernel)."""

    rms: Callable
    add_rms: Callable
    qkv_heads: Callable
    swiglu: Callable


EAGER = DecodeOps(_rms, _add_rms, _qkv_heads, _swiglu)


def _fused_qkv(attn: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One (weight, bias) for a layer's q/k/v projections: rows [q; k; v] (a copy, made once)."""
    with torch.no_grad():
        weight = torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight])
        biases = [m.bias for m in (attn.q_proj, attn.k_proj, attn.v_proj)]
        bias = torch.cat(biases) if all(b is not None for b in biases) else None
    return weight, bias


class LayerProducts(NamedTuple):
    """A layer's four matrix products, each the model's own `Linear`, a (weight, bias) pair (q/k/v fused) or an
    `Int8Weight`."""

    qkv: tuple
    o: tuple
    gate_up: tuple
    down: tuple


class StepWeights(NamedTuple):
    """The weights of a forward's matrix products: one `LayerProducts` per layer and the output head's."""

    layers: list[LayerProducts]
    head: tuple


def _layers_of(hf_model: torch.nn.Module):
    return (hf_model.model if hasattr(hf_model, "model") else hf_model).layers


@torch.no_grad()
def int8_step_weights(hf_model: torch.nn.Module) -> StepWeights:
    """A `GlmForCausalLM`'s products as weight-only int8 (engine_core/thinker/weight_int8.py) for the decode step:
    half the bytes a step reads. Made once per model (~10 GB at the paper's shape) and shared by its decoders."""
    def int8(linear: torch.nn.Linear) -> Int8Weight:
        return weight_int8.quantise(linear.weight, linear.bias)

    layers = [LayerProducts(weight_int8.quantise(*_fused_qkv(layer.self_attn)), int8(layer.self_attn.o_proj),
                            int8(layer.mlp.gate_up_proj), int8(layer.mlp.down_proj))
              for layer in _layers_of(hf_model)]
    return StepWeights(layers, int8(hf_model.lm_head))


def _product(x: torch.Tensor, w: tuple, compiled: bool) -> torch.Tensor:
    """x times one product's weight: bf16 (cuBLAS) or int8 (inductor's one-row kernel when `compiled`)."""
    if isinstance(w, Int8Weight):
        return weight_int8.linear(x, w, compiled)
    return w(x) if isinstance(w, torch.nn.Module) else F.linear(x, *w)


def _span(end: int, block: int | None, max_len: int) -> int:
    """Cache slots a forward whose last position is `end - 1` attends to: up to the next multiple of `block`
    (None: the whole cache), at most `max_len`."""
    return max_len if not block else min(max_len, -(-end // block) * block)


def _all_spans(block: int | None, max_len: int) -> list[int]:
    """Every span `_span` gives for a cache of `max_len` slots."""
    block = block or max_len
    return list(range(block, max_len, block)) + [max_len]


class GlmFastDecoder:
    """Static-cache decoding over a `GlmForCausalLM`'s weights.

    prefill(ids [B, T]) -> (logits [B, V] of the last token, hidden [B, T, D] last-layer states)
    step(ids [B, 1]) -> (logits [B, V], hidden [B, D]); on CUDA the step is replayed from a CUDA graph.
    resume(prompt ids) -> prefill of the part of the prompt the cache does not already hold (a new turn).

    span_block: a step attends to the cache up to the next multiple of `span_block` positions at or past its own
                (its "span"; masked beyond the position), not to all `max_len` slots; one graph per span, all
                captured at the first step. None: every step reads the whole cache.
    fuse:       the step's pointwise regions (norms, RoPE, SwiGLU, residual adds) compiled into one kernel each
                (engine_core/fusion.py); None: on CUDA only.
    pad_prefill: a prefill is cut into pieces of at most `prefill_max` tokens, each padded to a multiple of
                `prefill_block` and attending to the cache up to the next multiple of `prefill_span_block` slots
                past its padding (None: the whole cache), so that it has one of a few fixed shapes; with CUDA
                graphs each shape is replayed from a graph captured with the step's (an eager prefill is bound by
                its ~1,000 kernel launches: ~30-50 ms for 141 tokens at the paper shape on an H200). The padding
                writes cache slots past the prompt, which stay masked until a later token overwrites them.
                None: when the step uses CUDA graphs.
    step_weights: the decode step's products (`int8_step_weights`: weight-only int8, shared by a model's decoders);
                None: the model's own bf16 weights. A prefill always uses the model's (int8 pays for one row only).
    """

    def __init__(self, hf_model: torch.nn.Module, max_len: int = 8192, batch: int = 1,
                 use_cuda_graph: bool | None = None, span_block: int | None = 512, fuse: bool | None = None,
                 pad_prefill: bool | None = None, prefill_block: int = 64, prefill_max: int = 512,
                 prefill_span_block: int | None = 2048, step_weights: StepWeights | None = None) -> None:
        self.model = hf_model
        cfg = hf_model.config
        self.shape = s = _shape_of(cfg)
        p = next(hf_model.parameters())
        self.device, self.dtype = p.device, p.dtype
        self.max_len, self.batch = max_len, batch
        self.span_block = span_block
        self.cache = torch.zeros(s.layers, 2, batch, s.kv_heads, max_len, s.head_dim, device=self.device,
                                 dtype=self.dtype)
        inv = 1.0 / (s.theta ** (torch.arange(0, s.rotary_dim, 2, dtype=torch.float32) / s.rotary_dim))
        freqs = torch.arange(max_len, dtype=torch.float32)[:, None] * inv[None, :]   # [max_len, rotary/2]
        self.cos = freqs.cos().repeat_interleave(2, -1).to(self.device, self.dtype)     # [max_len, rotary]
        self.sin = freqs.sin().repeat_interleave(2, -1).to(self.device, self.dtype)
        self.pos = torch.zeros((), dtype=torch.long, device=self.device)  # next write position
        self.length = 0
        self.known: list[int] | None = []    # the token ids at positions [0, length), None if not all were told
        self.reused = 0                      # positions the last `resume` kept
        base = hf_model.model if hasattr(hf_model, "model") else hf_model
        self.embed, self.layers, self.norm = base.embed_tokens, base.layers, base.norm
        self.final_eps = float(getattr(self.norm, "variance_epsilon", s.eps))
        self.weights = StepWeights(   # the model's own; q/k/v fused into one (weight, bias): a copy, made once
            [LayerProducts(_fused_qkv(layer.self_attn), layer.self_attn.o_proj, layer.mlp.gate_up_proj,
                           layer.mlp.down_proj) for layer in self.layers], hf_model.lm_head)
        self.step_weights = step_weights or self.weights
        self.compiled_int8 = self.device.type == "cuda"
        self.step_ops = fused(EAGER) if wanted(fuse, self.device) else EAGER
        self.use_graph = (self.device.type == "cuda") if use_cuda_graph is None else use_cuda_graph
        # span -> the step's graph and its outputs (logits, hidden)
        self._graphs: dict[int, tuple[torch.cuda.CUDAGraph, tuple[torch.Tensor, torch.Tensor]]] = {}
        self._static_ids = torch.zeros(batch, 1, dtype=torch.long, device=self.device)
        self.prefill_block = prefill_block
        self.prefill_max = min(prefill_max, max_len) // prefill_block * prefill_block   # widths: multiples of block
        self.pad_prefill = (self.use_graph if pad_prefill is None else pad_prefill) and self.prefill_max > 0
        self.prefill_span_block = prefill_span_block
        # (padded width, span) -> the prefill's graph and its output (hidden), reading its ids from _prefill_ids
        self._prefill_graphs: dict[tuple[int, int], tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self._prefill_ids = torch.zeros(batch, self.prefill_max, dtype=torch.long, device=self.device)
        self.stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None

    def span(self, end: int) -> int:
        """Cache slots a step or unpadded prefill whose last position is `end - 1` attends to."""
        return _span(end, self.span_block, self.max_len)

    @property
    def spans(self) -> list[int]:
        """Every span a step can use (one CUDA graph each)."""
        return _all_spans(self.span_block, self.max_len)

    @property
    def prefill_widths(self) -> list[int]:
        """The widths a padded prefill's pieces have."""
        return list(range(self.prefill_block, self.prefill_max + 1, self.prefill_block))

    def prefill_span(self, end: int) -> int:
        """Cache slots a padded prefill piece whose padding ends at `end` attends to."""
        return _span(end, self.prefill_span_block, self.max_len)

    @property
    def prefill_shapes(self) -> list[tuple[int, int]]:
        """Every (width, span) a padded piece can have (one CUDA graph each): the 8 widths by the 4 spans of 2,048
        slots at the paper's shape, less those wider than their span."""
        return [(w, s) for s in _all_spans(self.prefill_span_block, self.max_len) for w in self.prefill_widths
                if w <= s]

    # -- the functional forward ------------------------------------------------------------------------
    def _forward(self, ids: torch.Tensor, start: torch.Tensor, n: int, span: int,
                 ops: DecodeOps = EAGER) -> tuple[torch.Tensor, torch.Tensor]:
        """A step's forward with the step's weights: (logits of the last token, hidden); see `_hidden`."""
        w = self.step_weights
        hidden = self._hidden(ids, start, n, span, ops, fixed_shape=True, weights=w)
        return _product(hidden[:, -1], w.head, self.compiled_int8), hidden

    def _hidden(self, ids: torch.Tensor, start: torch.Tensor, n: int, span: int, ops: DecodeOps = EAGER,
                fixed_shape: bool = False, weights: StepWeights | None = None) -> torch.Tensor:
        """ids [B, n] written at cache positions start..start+n-1, attending to cache slots [0, span); returns the
        last layer's normed hidden states [B, n, D]. `fixed_shape`: one of a few shapes run again and again (a step,
        a padded prefill), for which SDPA keeps its own choice of kernel (see `_attention_backends`). `weights`: the
        products' (None: the model's)."""
        s = self.shape
        products = (weights or self.weights).layers

        def product(x: torch.Tensor, w: tuple) -> torch.Tensor:
            return _product(x, w, self.compiled_int8)
        x = self.embed(ids)                                                   # [B, n, D]
        positions = start + torch.arange(n, device=self.device)               # [n]
        cos, sin = self.cos[positions], self.sin[positions]                   # [n, rotary]
        keys = torch.arange(span, device=self.device)
        mask = torch.zeros(n, span, device=self.device, dtype=self.dtype).masked_fill_(   # [n, span] causal
            keys[None, :] > positions[:, None], float("-inf"))                # over the cache, additive: made once
        B = ids.shape[0]
        delta = None                                                          # the last MLP's output
        with self._attention_backends(fixed_shape):
            for i, layer in enumerate(self.layers):
                w = products[i]
                if delta is None:
                    h = ops.rms(x, layer.input_layernorm.weight, s.eps)
                else:
                    x, h = ops.add_rms(x, delta, layer.input_layernorm.weight, s.eps)
                q, k, v = ops.qkv_heads(product(h, w.qkv), cos, sin, s.heads, s.kv_heads, s.rotary_dim)
                self.cache[i, 0].index_copy_(2, positions, k)
                self.cache[i, 1].index_copy_(2, positions, v)
                o = F.scaled_dot_product_attention(q, self.cache[i, 0, :, :, :span], self.cache[i, 1, :, :, :span],
                                                   attn_mask=mask, enable_gqa=True)
                x, h = ops.add_rms(x, product(o.transpose(1, 2).reshape(B, n, s.heads * s.head_dim), w.o),
                                   layer.post_attention_layernorm.weight, s.eps)
                delta = product(ops.swiglu(product(h, w.gate_up)), w.down)
        return ops.add_rms(x, delta, self.norm.weight, self.final_eps)[1]

    def _attention_backends(self, fixed_shape: bool):
        """An unpadded prefill's attention on CUDA: memory-efficient or plain SDPA kernels, not cuDNN's, which
        builds a plan for each new (prompt, span) shape, and a prompt's length changes every turn: measured on an
        H200, a prefill of a shape not seen before took 50-90 ms more. A step and a padded
        prefill have a handful of shapes, all captured at `warm`, and keep SDPA's choice."""
        if fixed_shape or self.device.type != "cuda":
            return contextlib.nullcontext()
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])

    # -- public API ------------------------------------------------------------------------------------
    def reset(self) -> None:
        self.truncate(0)

    def truncate(self, n: int) -> None:
        """Keep the first n positions of the cache (the next token is written at n)."""
        self.length = n
        self.pos.fill_(n)
        if self.known is not None:
            del self.known[n:]
        elif n == 0:
            self.known = []

    def cached_prefix(self, prompt: list[int]) -> int:
        """How many of `prompt`'s first ids the cache holds at their positions."""
        return shared_prefix(self.known, prompt)

    def resume(self, prompt: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """`prefill` of `prompt` that keeps the longest prefix of it the cache already holds (the last prompt and
        reply wrote it: a conversation's next prompt starts with its previous one), computing only the rest.
        Returns the prefill's (logits of the last token, hidden of the positions computed)."""
        keep = min(self.cached_prefix(prompt), len(prompt) - 1)   # at least one token computed, for its logits
        self.truncate(keep)
        self.reused = keep
        return self.prefill(torch.tensor([prompt[keep:]], device=self.device), tokens=prompt[keep:])

    @contextlib.contextmanager
    def _own_stream(self):
        """Run on the decoder's own CUDA stream (the Actor works on another one, so the two overlap); the
        caller's stream waits for the results."""
        if self.stream is None:
            yield
            return
        self.stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.stream):
            yield
        torch.cuda.current_stream().wait_stream(self.stream)

    def tell(self, tokens: list[int] | None) -> None:
        """The ids at the positions last written (None: unknown, and the cache's contents are unknown from here)."""
        if tokens is None:
            self.known = None
        elif self.known is not None:
            self.known.extend(tokens)

    @torch.inference_mode()
    def prefill(self, ids: torch.Tensor, tokens: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """ids [B, n] at the next n positions; `tokens`: the same ids as ints (batch 1), so `resume` can reuse
        them (without them the cache's contents are unknown from here on)."""
        n = ids.shape[1]
        if self.length + n > self.max_len:
            raise ValueError(f"context of {self.length + n} tokens exceeds the static cache ({self.max_len})")
        ids = ids.to(self.device)
        with self._own_stream():
            if self.pad_prefill:
                if self.use_graph and not self._graphs:
                    self._capture()
                pieces = [self._prefill_piece(piece, self.length + i * self.prefill_max)
                          for i, piece in enumerate(ids.split(self.prefill_max, dim=1))]
                hidden = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)
            else:
                hidden = self._hidden(ids, self.pos, n, self.span(self.length + n))
                self.pos += n
            logits = self.weights.head(hidden[:, -1])
        self.length += n
        self.tell(tokens)
        return logits, hidden

    def _prefill_piece(self, ids: torch.Tensor, at: int) -> torch.Tensor:
        """ids [B, m] (m <= prefill_max) at positions at..at+m-1, padded to the next width: replayed from that
        width's graph if captured, else run at that shape; unpadded where the padding would run past the cache.
        Returns hidden [B, m, D]."""
        m = ids.shape[1]
        width = -(-m // self.prefill_block) * self.prefill_block
        if at + width > self.max_len:
            hidden = self._hidden(ids, self.pos, m, self.span(at + m))
        else:
            self._prefill_ids[:, :m].copy_(ids)          # the padding: whatever ids the last prefill left there
            span = self.prefill_span(at + width)
            if (width, span) in self._prefill_graphs:
                graph, out = self._prefill_graphs[width, span]
                graph.replay()
                hidden = out[:, :m].clone()
            else:
                hidden = self._hidden(self._prefill_ids[:, :width], self.pos, width, span, fixed_shape=True)[:, :m]
        self.pos += m
        return hidden

    @torch.inference_mode()
    def step(self, ids: torch.Tensor, token: int | None = None, told: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """ids [B, 1] at the next position (`token`: that id as an int, as for `prefill`; `told=False`: the caller
        `tell`s it once it knows it, e.g. when the id was drawn on the device)."""
        if self.length + 1 > self.max_len:
            raise ValueError("the static cache is full")
        span = self.span(self.length + 1)
        with self._own_stream():
            if not self.use_graph:
                logits, hidden = self._forward(ids.to(self.device), self.pos, 1, span, self.step_ops)
            else:
                self._static_ids.copy_(ids)
                if not self._graphs:
                    self._capture()
                graph, out = self._graphs[span]
                graph.replay()
                logits, hidden = (t.clone() for t in out)
            self.pos += 1
        self.length += 1
        if told:
            self.tell(None if token is None else [token])
        return logits, hidden[:, -1]

    @torch.inference_mode()
    def warm(self) -> None:
        """Capture the step's and the padded prefill's graphs now (the first step or prefill would), on the
        decoder's stream; a no-op without graphs."""
        if self.use_graph and not self._graphs:
            with self._own_stream():
                self._capture()

    def _capture(self) -> None:
        """Capture the decode step of every span and the padded prefill of every (width, span) (warm-ups first, as CUDA
        graphs require; the first warm-up also compiles the fused regions), sharing one memory pool: they are
        replayed one at a time and their outputs copied out. Thread-local capture mode: other threads (the Actor's)
        keep using the GPU meanwhile. The warm-ups write cache slots, which are restored."""
        pool = torch.cuda.graph_pool_handle()

        def capture(forward: Callable[[], object]):
            for _ in range(2):
                forward()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool, stream=self.stream, capture_error_mode="thread_local"):
                out = forward()
            return graph, out

        with self._slots_kept(self.length, 1):
            for span in self.spans:
                self._graphs[span] = capture(
                    lambda span=span: self._forward(self._static_ids, self.pos, 1, span, self.step_ops))
        if not self.pad_prefill:
            return
        with self._slots_kept(min(self.length, self.max_len - self.prefill_max), self.prefill_max):
            for width, span in self.prefill_shapes:
                self._prefill_graphs[width, span] = capture(lambda width=width, span=span: self._hidden(
                    self._prefill_ids[:, :width], self.pos, width, span, fixed_shape=True))

    @contextlib.contextmanager
    def _slots_kept(self, at: int, n: int):
        """Cache slots [at, at + n) saved, the next write position moved to `at`; both restored on exit."""
        saved = self.cache[:, :, :, :, at:at + n].clone()
        self.pos.fill_(at)
        try:
            yield
        finally:
            self.cache[:, :, :, :, at:at + n].copy_(saved)
            self.pos.fill_(self.length)
