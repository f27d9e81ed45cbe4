"""A fast decoder for GLM-4-shape language models: static KV cache + one CUDA graph per decode step.

It runs the *same weights* as transformers' `GlmForCausalLM` (it reads the HF modules' parameters, no copy)
with a functional forward that a CUDA graph can capture: a preallocated KV cache [layers, 2, B, kv_heads,
max_len, head_dim], positions held in a device tensor, the attention mask derived on the device from that
position. `tests/test_glm_fast.py` proves it computes the same logits and hidden states as the HF model on a
tiny random config; `xstreamer bench --preset paper --device cuda` times it at the 9B shape.

GLM specifics kept here: partial rotary embedding (half of each head), interleaved pairs (x[0::2], x[1::2]),
QKV bias, fused gate/up projection with SiLU, RMSNorm before attention and MLP, grouped-query attention.

Fewer kernels per step (a decode step is ~40 kernels a layer): q/k/v are one matrix product (their weights
concatenated once, at construction) and RMSNorm is `F.rms_norm`; on an H200 the CUDA-graph step went 8.96 →
8.10 ms at the paper shape (docs/performance.md, v6). Attention stays SDPA with `enable_gqa` over the masked
static cache: folding each KV head's query heads into its query rows (plain attention on the 2 KV heads, no K/V
copy per query head) was tried and measured 14.05 ms, since 2 heads x 16 rows leave the GPU's SMs idle.
"""

from __future__ import annotations

from dataclasses import dataclass

import contextlib

import torch
import torch.nn.functional as F


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


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, rotary_dim: int) -> torch.Tensor:
    """Interleaved partial RoPE. x [B, H, T, D]; cos/sin [T, rotary_dim] (pairs repeated)."""
    rot, keep = x[..., :rotary_dim], x[..., rotary_dim:]
    pairs = torch.stack((-rot[..., 1::2], rot[..., 0::2]), dim=-1).flatten(-2)
    return torch.cat((rot * cos + pairs * sin, keep), dim=-1)


def _fused_qkv(attn: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One (weight, bias) for a layer's q/k/v projections: rows [q; k; v] (a copy, made once)."""
    with torch.no_grad():
        weight = torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight])
        biases = [m.bias for m in (attn.q_proj, attn.k_proj, attn.v_proj)]
        bias = torch.cat(biases) if all(b is not None for b in biases) else None
    return weight, bias


class GlmFastDecoder:
    """Static-cache decoding over a `GlmForCausalLM`'s weights.

    prefill(ids [B, T]) -> (logits [B, V] of the last token, hidden [B, T, D] last-layer states)
    step(ids [B, 1]) -> (logits [B, V], hidden [B, D]); on CUDA the step is captured once as a CUDA graph.
    """

    def __init__(self, hf_model: torch.nn.Module, max_len: int = 8192, batch: int = 1,
                 use_cuda_graph: bool | None = None) -> None:
        self.model = hf_model
        cfg = hf_model.config
        self.shape = s = _shape_of(cfg)
        p = next(hf_model.parameters())
        self.device, self.dtype = p.device, p.dtype
        self.max_len, self.batch = max_len, batch
        self.cache = torch.zeros(s.layers, 2, batch, s.kv_heads, max_len, s.head_dim, device=self.device,
                                 dtype=self.dtype)
        inv = 1.0 / (s.theta ** (torch.arange(0, s.rotary_dim, 2, dtype=torch.float32) / s.rotary_dim))
        freqs = torch.arange(max_len, dtype=torch.float32)[:, None] * inv[None, :]   # [max_len, rotary/2]
        self.cos = freqs.cos().repeat_interleave(2, -1).to(self.device, self.dtype)     # [max_len, rotary]
        self.sin = freqs.sin().repeat_interleave(2, -1).to(self.device, self.dtype)
        self.pos = torch.zeros((), dtype=torch.long, device=self.device)  # next write position
        self.length = 0
        base = hf_model.model if hasattr(hf_model, "model") else hf_model
        self.embed, self.layers, self.norm = base.embed_tokens, base.layers, base.norm
        self.lm_head = hf_model.lm_head
        self.qkv = [_fused_qkv(layer.self_attn) for layer in self.layers]    # (weight, bias) per layer
        self.use_graph = (self.device.type == "cuda") if use_cuda_graph is None else use_cuda_graph
        self._graph: torch.cuda.CUDAGraph | None = None
        self._static_ids = torch.zeros(batch, 1, dtype=torch.long, device=self.device)
        self._static_out: tuple[torch.Tensor, torch.Tensor] | None = None
        self.stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None

    # -- the functional forward ------------------------------------------------------------------------
    def _forward(self, ids: torch.Tensor, start: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """ids [B, n] written at cache positions start..start+n-1; returns (logits of the last token, hidden)."""
        s = self.shape
        x = self.embed(ids)                                                   # [B, n, D]
        positions = start + torch.arange(n, device=self.device)               # [n]
        cos, sin = self.cos[positions], self.sin[positions]                   # [n, rotary]
        keys = torch.arange(self.max_len, device=self.device)
        mask = keys[None, :] <= positions[:, None]                            # [n, max_len] causal over cache
        B = ids.shape[0]
        for i, layer in enumerate(self.layers):
            attn, mlp = layer.self_attn, layer.mlp
            h = _rms(x, layer.input_layernorm.weight, s.eps)
            q, k, v = F.linear(h, *self.qkv[i]).split(
                [s.heads * s.head_dim, s.kv_heads * s.head_dim, s.kv_heads * s.head_dim], dim=-1)
            q = q.view(B, n, s.heads, s.head_dim).transpose(1, 2)
            k = k.view(B, n, s.kv_heads, s.head_dim).transpose(1, 2)
            v = v.view(B, n, s.kv_heads, s.head_dim).transpose(1, 2)
            q, k = _rotate(q, cos, sin, s.rotary_dim), _rotate(k, cos, sin, s.rotary_dim)
            self.cache[i, 0].index_copy_(2, positions, k)
            self.cache[i, 1].index_copy_(2, positions, v)
            o = F.scaled_dot_product_attention(q, self.cache[i, 0], self.cache[i, 1], attn_mask=mask,
                                               enable_gqa=True)
            x = x + attn.o_proj(o.transpose(1, 2).reshape(B, n, s.heads * s.head_dim))
            h = _rms(x, layer.post_attention_layernorm.weight, s.eps)
            gate, up = mlp.gate_up_proj(h).chunk(2, dim=-1)
            x = x + mlp.down_proj(up * F.silu(gate))
        hidden = _rms(x, self.norm.weight, self.norm.variance_epsilon if hasattr(self.norm, "variance_epsilon")
                      else s.eps)
        return self.lm_head(hidden[:, -1]), hidden

    # -- public API ------------------------------------------------------------------------------------
    def reset(self) -> None:
        self.length = 0
        self.pos.zero_()

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

    @torch.inference_mode()
    def prefill(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = ids.shape[1]
        if self.length + n > self.max_len:
            raise ValueError(f"context of {self.length + n} tokens exceeds the static cache ({self.max_len})")
        with self._own_stream():
            logits, hidden = self._forward(ids.to(self.device), self.pos, n)
            self.pos += n
        self.length += n
        return logits, hidden

    @torch.inference_mode()
    def step(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.length + 1 > self.max_len:
            raise ValueError("the static cache is full")
        with self._own_stream():
            if not self.use_graph:
                logits, hidden = self._forward(ids.to(self.device), self.pos, 1)
            else:
                self._static_ids.copy_(ids)
                if self._graph is None:
                    self._capture()
                self._graph.replay()
                logits, hidden = (t.clone() for t in self._static_out)
            self.pos += 1
        self.length += 1
        return logits, hidden[:, -1]

    def _capture(self) -> None:
        """Capture one decode step (warm-up first, as CUDA graphs require). Thread-local capture mode: other
        threads (the Actor's) keep using the GPU while this one captures."""
        saved = self.cache.clone()
        for _ in range(2):
            self._forward(self._static_ids, self.pos, 1)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph, stream=self.stream, capture_error_mode="thread_local"):
            self._static_out = self._forward(self._static_ids, self.pos, 1)
        self.cache.copy_(saved)   # the warm-up wrote the slot at `pos`: restore it
