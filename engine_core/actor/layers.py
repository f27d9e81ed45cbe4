"""Building blocks of the Actor: attention (SDPA or a reference implementation), the DiT block, embeddings.

`attention(..., impl="sdpa"|"reference")` is the one place attention is computed, so an optimised kernel
can be checked against the plain softmax reference (tests/test_actor_*.py).
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine_core.actor.masks import ChunkSpans
from engine_core.actor.rope import Rope3D
from engine_core.config import ModelConfig

KVHook = Callable[[int, torch.Tensor, torch.Tensor], None]


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor,
              impl: str = "sdpa") -> torch.Tensor:
    """q [B,H,Lq,Dh], k/v [B,Hkv,Lk,Dh] (H % Hkv == 0), mask [Lq,Lk] or [B,Lq,Lk], bool (True: attend) or
    additive (`additive_mask`) -> [B,H,Lq,Dh]. SDPA shares each K/V head among its query heads itself
    (`enable_gqa`: no copy of the keys per query head)."""
    if mask.ndim == 3:
        mask = mask[:, None]                        # [B,1,Lq,Lk]
    rep = q.shape[1] // k.shape[1]
    if impl == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=rep > 1)
    if impl == "reference":
        if rep > 1:
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        scores = (q.float() @ k.float().transpose(-1, -2)) / math.sqrt(q.shape[-1])
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask.float()
        return (scores.softmax(dim=-1) @ v.float()).to(q.dtype)
    raise ValueError(f"unknown attention implementation {impl!r} (sdpa | reference)")


def span_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, spans: ChunkSpans,
                   impl: str = "sdpa") -> torch.Tensor:
    """Self-attention of a pass whose pattern is `spans` (masks.ChunkSpans), without a mask: chunk j's queries
    attend to the keys [j * Lc, j * Lc + span), one SDPA call per chunk (one call for a one-chunk pass, over all
    the keys), so SDPA may pick a kernel that takes no mask (cuDNN's, on Hopper GPUs; docs/engine.md).
    q [B,H,m*Lc,Dh], k/v [B,Hkv,Lk,Dh]."""
    if impl != "sdpa":
        return attention(q, k, v, spans.mask(q.device), impl)
    rep = q.shape[1] // k.shape[1]
    lc, n = spans.chunk_tokens, spans.span
    if spans.chunks == 1:
        return F.scaled_dot_product_attention(q, k[:, :, :n], v[:, :, :n], enable_gqa=rep > 1)
    outs = []
    for j in range(spans.chunks):
        s = spans.key_start(j)
        outs.append(F.scaled_dot_product_attention(q[:, :, j * lc:(j + 1) * lc], k[:, :, s:s + n],
                                                   v[:, :, s:s + n], enable_gqa=rep > 1))
    return torch.cat(outs, dim=2)


def additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A bool mask (True: attend) as the additive one attention adds to its scores (0 or -inf): made once per pass
    instead of once per layer inside SDPA."""
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, float("-inf"))


def sigma_embedding(sigma: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of noise levels sigma [...] in [0,1] -> [..., dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=sigma.device) / half)
    ang = sigma.float()[..., None] * 1000.0 * freqs
    return torch.cat([ang.cos(), ang.sin()], dim=-1)


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, group: torch.Tensor,
              eps: float) -> torch.Tensor:
    """adaLN: RMSNorm(x) [B,L,D] scaled and shifted by its token's noise group (shift/scale [B,G,D], group [L])."""
    return F.rms_norm(x, (x.shape[-1],), eps=eps) * (1 + scale[:, group]) + shift[:, group]


def _gated_add(x: torch.Tensor, gate: torch.Tensor, group: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The gated residual x + gate * y, the gate [B,G,D] of each token's noise group."""
    return x + gate[:, group] * y


class BlockOps(NamedTuple):
    """The pointwise regions of a block (engine_core/fusion.py fuses each into one kernel)."""

    modulate: Callable
    gated_add: Callable
    rope: Callable


EAGER = BlockOps(_modulate, _gated_add, Rope3D.apply)


class Block(nn.Module):
    """adaLN-modulated transformer block: self-attention (3D RoPE, cache) -> cross-attention -> MLP."""

    def __init__(self, cfg: ModelConfig, index: int) -> None:
        super().__init__()
        a = cfg.actor
        self.index, self.heads, self.kv_heads, self.head_dim = index, a.heads, a.kv_heads, a.head_dim
        d = a.width
        self.norm1 = nn.RMSNorm(d, eps=a.norm_eps, elementwise_affine=False)
        self.q = nn.Linear(d, a.heads * a.head_dim, bias=a.qkv_bias)
        self.kv = nn.Linear(d, 2 * a.kv_heads * a.head_dim, bias=a.qkv_bias)
        self.o = nn.Linear(a.heads * a.head_dim, d, bias=False)
        self.norm_x = nn.RMSNorm(d, eps=a.norm_eps)
        self.xq = nn.Linear(d, a.heads * a.head_dim, bias=False)
        self.xkv = nn.Linear(d, 2 * a.kv_heads * a.head_dim, bias=False)
        self.xo = nn.Linear(a.heads * a.head_dim, d, bias=False)
        self.norm2 = nn.RMSNorm(d, eps=a.norm_eps, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(d, a.ffn_size), nn.GELU(approximate="tanh"), nn.Linear(a.ffn_size, d))
        self.mod = nn.Linear(d, 6 * d)
        nn.init.zeros_(self.mod.weight)          # start as a plain pre-norm block: shift = scale = 0, gate = 1
        with torch.no_grad():
            self.mod.bias.zero_()
            self.mod.bias[2 * d:3 * d] = 1.0
            self.mod.bias[5 * d:] = 1.0
        nn.init.normal_(self.xo.weight, std=0.02 / math.sqrt(2 * a.layers))
        nn.init.normal_(self.o.weight, std=0.02 / math.sqrt(2 * a.layers))

    def _split(self, x: torch.Tensor, heads: int) -> torch.Tensor:
        b, l, _ = x.shape
        return x.view(b, l, heads, self.head_dim).transpose(1, 2)          # [B,H,L,Dh]

    def forward(self, x: torch.Tensor, mod_groups: torch.Tensor, token_group: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                past: tuple[torch.Tensor, torch.Tensor] | None, self_mask: torch.Tensor | ChunkSpans,
                ctx: torch.Tensor, ctx_rope: tuple[torch.Tensor, torch.Tensor], cross_mask: torch.Tensor,
                impl: str, kv_hook: KVHook | None, ops: BlockOps = EAGER) -> torch.Tensor:
        """x [B,L,D]; mod_groups [B,G,D] sigma embedding per noise group (or [layers,B,G,6D]: every layer's adaLN
        projection of it, made beforehand), token_group [L] each token's group;
        ctx [B,Lx,D] Thinker tokens (+null key); self_mask an additive mask, or the key spans of a pass after a
        full cache (attention without a mask, `span_attention`). The adaLN projection runs once per group (G is a
        handful of chunks) and is gathered per token inside the pointwise regions (`ops`: EAGER or fused): the same
        numbers as projecting every token, a fraction of the work."""
        b, l, d = x.shape
        mods = mod_groups[self.index] if mod_groups.dim() == 4 else self.mod(mod_groups)   # [B,G,6D]; 4-D: per layer,
        shift1, scale1, gate1, shift2, scale2, gate2 = mods.chunk(6, dim=-1)   # made once (actor/tokens.py); each [B,G,D]
        # 1. self-attention over [past keys (sink + cached chunks)] + [this pass's tokens]
        h = ops.modulate(x, shift1, scale1, token_group, self.norm1.eps)
        q = ops.rope(self._split(self.q(h), self.heads), *rope)                          # [B,H,L,Dh]
        k, v = self.kv(h).chunk(2, dim=-1)
        k = ops.rope(self._split(k, self.kv_heads), *rope)                               # [B,Hkv,L,Dh]
        v = self._split(v, self.kv_heads)
        if kv_hook is not None:
            kv_hook(self.index, k, v)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        if isinstance(self_mask, ChunkSpans):
            att = span_attention(q, k, v, self_mask, impl)
        else:
            att = attention(q, k, v, self_mask, impl)
        att = att.transpose(1, 2).reshape(b, l, -1)
        x = ops.gated_add(x, gate1, token_group, self.o(att))
        # 2. cross-attention to the Thinker hidden states of the current and recent chunks
        hq = ops.rope(self._split(self.xq(self.norm_x(x)), self.heads), *rope)
        xk, xv = self.xkv(ctx).chunk(2, dim=-1)
        xk = ops.rope(self._split(xk, self.kv_heads), *ctx_rope)
        xv = self._split(xv, self.kv_heads)
        xatt = attention(hq, xk, xv, cross_mask, impl).transpose(1, 2).reshape(b, l, -1)
        x = x + self.xo(xatt)
        # 3. MLP
        h = ops.modulate(x, shift2, scale2, token_group, self.norm2.eps)
        return ops.gated_add(x, gate2, token_group, self.mlp(h))
