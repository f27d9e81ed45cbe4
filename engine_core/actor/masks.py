"""Attention masks of the Actor, built from each token's chunk index (True = may attend).

Self-attention (ours, after CausVid / Diffusion Forcing):
  - identity tokens (chunk index IDENTITY) are a sink: every token sees them; they see only each other;
  - block-causal across chunks: a token of chunk q sees every token of chunks q-window .. q
    (so inside a chunk everything is bidirectional, and nothing of a later chunk is ever visible);
  - `window` past chunks bound the context, which is what lets the rolling KV cache stay bounded (its
    unfilled slots carry the chunk index EMPTY, which that bound hides).
Cross-attention: a token of chunk q sees the valid Thinker tokens of chunks q-cross_chunks .. q
(a learned null key, added by the model, keeps rows that see nothing well defined).

Once a stream's cache is full, a pass needs no self-attention mask at all (`ChunkSpans`): with the keys laid out
[window, oldest first | identity sink | the pass's chunks], what each of its chunks may see is one contiguous span
of them, the same length for every chunk, so attention runs without a mask, chunk by chunk.
"""

from __future__ import annotations

from typing import NamedTuple

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


class ChunkSpans(NamedTuple):
    """The self-attention of a streaming pass over `chunks` whole chunks of `chunk_tokens` tokens that follows a
    full cache (its `window` chunks are the ones just before the pass's first), as key spans instead of a mask.

    Keys are laid out [window, oldest first | identity sink | the pass's chunks] (KVCache.keys). Chunk j of the
    pass may see chunks j - window .. j and the sink: the window's newest window - j chunks, the sink and the
    pass's chunks 0..j, which is the contiguous span of keys [j * Lc, j * Lc + span) with span = window * Lc + sink
    + Lc, the same for every j (`mask` writes it out; tests/test_actor_spans.py checks it against
    `self_attention_mask`)."""

    chunks: int
    chunk_tokens: int
    span: int

    @classmethod
    def after_full_cache(cls, chunks: int, chunk_tokens: int, window: int, sink: int) -> ChunkSpans:
        return cls(chunks, chunk_tokens, window * chunk_tokens + sink + chunk_tokens)

    def key_start(self, j: int) -> int:
        """Index of the first key chunk j of the pass sees."""
        return j * self.chunk_tokens

    def mask(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """The same pattern as a bool mask [chunks * Lc, keys] (True: attend)."""
        lc = self.chunk_tokens
        keys = self.span + (self.chunks - 1) * lc
        q_start = torch.arange(self.chunks * lc, device=device) // lc * lc                  # key_start of each query
        k = torch.arange(keys, device=device)[None, :]
        return (k >= q_start[:, None]) & (k < q_start[:, None] + self.span)
