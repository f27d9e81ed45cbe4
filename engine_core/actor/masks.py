"""Attention masks of the Actor, built from each token's chunk index (True = may attend).

Self-attention (ours, after CausVid / Diffusion Forcing):
  - identity tokens (chunk index IDENTITY) are a sink: every token sees them; they see only each other;
  - block-causal across chunks: a token of chunk q sees every token of chunks q-window .. q
    (so inside a chunk everything is bidirectional, and nothing of a later chunk is ever visible);
  - `window` past chunks bound the context, which is what lets the rolling KV cache stay bounded (its
    unfilled slots carry the chunk index EMPTY, which that bound hides).
Cross-attention: a token of chunk q sees the valid Thinker tokens of chunks q-cross_chunks .. q
(a learned null key, added by the model, keeps rows that see nothing well defined).
"""

from __future__ import annotations

import torch

IDENTITY = -1   # chunk index of the identity tokens
EMPTY = -(2**40)  # chunk index of the KV cache's unfilled slots: older than any window reaches, so never seen


def self_attention_mask(q_chunk: torch.Tensor, k_chunk: torch.Tensor, window: int) -> torch.Tensor:
    """q_chunk [Lq], k_chunk [Lk] (long chunk indices, IDENTITY for identity tokens) -> bool [Lq, Lk]."""
    q = q_chunk[:, None]                         # [Lq, 1]
    k = k_chunk[None, :]                         # [1, Lk]
    k_id = k == IDENTITY
    q_id = q == IDENTITY
    causal = (k <= q) & (k >= q - window) & ~k_id & ~q_id
    return causal | k_id                         # identity queries see identity keys only


def cross_attention_mask(q_chunk: torch.Tensor, k_chunk: torch.Tensor, k_valid: torch.Tensor,
                         cross_chunks: int) -> torch.Tensor:
    """q_chunk [Lq], k_chunk [Lk], k_valid [B, Lk] bool -> bool [B, Lq, Lk]."""
    q = q_chunk[:, None]
    k = k_chunk[None, :]
    band = (k <= q) & (k >= q - cross_chunks) & (q != IDENTITY)    # [Lq, Lk]
    return band[None] & k_valid[:, None, :]
