"""Building blocks of the Actor: attention (SDPA or a reference implementation), the DiT block, embeddings.

`attention(..., impl="sdpa"|"reference")` is the one place attention is computed, so an optimised kernel
can be checked against the plain softmax reference (tests/test_actor_*.py).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine_core.actor.rope import Rope3D
from engine_core.config import ModelConfig

KVHook = Callable[[int, torch.Tensor, torch.Tensor], None]


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor,
              impl: str = "sdpa") -> torch.Tensor:
    """q [B,H,Lq,Dh], k/v [B,Hkv,Lk,Dh] (H % Hkv == 0), mask bool [Lq,Lk] or [B,Lq,Lk] -> [B,H,Lq,Dh]."""
    rep = q.shape[1] // k.shape[1]
    if rep > 1:
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
    if mask.ndim == 3:
        mask = mask[:, None]                        # [B,1,Lq,Lk]
    if impl == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    if impl == "reference":
        scores = (q.float() @ k.float().transpose(-1, -2)) / math.sqrt(q.shape[-1])
        scores = scores.masked_fill(~mask, float("-inf"))
        return (scores.softmax(dim=-1) @ v.float()).to(q.dtype)
    raise ValueError(f"unknown attention implementation {impl!r} (sdpa | reference)")


def sigma_embedding(sigma: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of noise levels sigma [...] in [0,1] -> [..., dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=sigma.device) / half)
    ang = sigma.float()[..., None] * 1000.0 * freqs
    return torch.cat([ang.cos(), ang.sin()], dim=-1)


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
                past: tuple[torch.Tensor, torch.Tensor] | None, self_mask: torch.Tensor,
                ctx: torch.Tensor, ctx_rope: tuple[torch.Tensor, torch.Tensor], cross_mask: torch.Tensor,
                impl: str, kv_hook: KVHook | None) -> torch.Tensor:
        """x [B,L,D]; mod_groups [B,G,D] sigma embedding per noise group, token_group [L] each token's group;
        ctx [B,Lx,D] Thinker tokens (+null key). The adaLN projection runs once per group (G is a handful of
        chunks) and is gathered per token: the same numbers as projecting every token, a fraction of the work."""
        b, l, d = x.shape
        mods = self.mod(mod_groups)[:, token_group]                                       # [B,L,6D]
        shift1, scale1, gate1, shift2, scale2, gate2 = mods.chunk(6, dim=-1)              # each [B,L,D]
        # 1. self-attention over [past keys (sink + cached chunks)] + [this pass's tokens]
        h = self.norm1(x) * (1 + scale1) + shift1
        q = Rope3D.apply(self._split(self.q(h), self.heads), *rope)                      # [B,H,L,Dh]
        k, v = self.kv(h).chunk(2, dim=-1)
        k = Rope3D.apply(self._split(k, self.kv_heads), *rope)                           # [B,Hkv,L,Dh]
        v = self._split(v, self.kv_heads)
        if kv_hook is not None:
            kv_hook(self.index, k, v)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        att = attention(q, k, v, self_mask, impl).transpose(1, 2).reshape(b, l, -1)
        x = x + gate1 * self.o(att)
        # 2. cross-attention to the Thinker hidden states of the current and recent chunks
        hq = Rope3D.apply(self._split(self.xq(self.norm_x(x)), self.heads), *rope)
        xk, xv = self.xkv(ctx).chunk(2, dim=-1)
        xk = Rope3D.apply(self._split(xk, self.kv_heads), *ctx_rope)
        xv = self._split(xv, self.kv_heads)
        xatt = attention(hq, xk, xv, cross_mask, impl).transpose(1, 2).reshape(b, l, -1)
        x = x + self.xo(xatt)
        # 3. MLP
        h = self.norm2(x) * (1 + scale2) + shift2
        return x + gate2 * self.mlp(h)
