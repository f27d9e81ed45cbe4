"""Rolling KV cache of the Actor: an identity sink that is never evicted + a window of recent clean chunks.

All buffers are allocated once from the config, so memory is constant over an unbounded stream:

    sink_k / sink_v   [layers, B, kv_heads, P, head_dim]          identity tokens (prefill)
    win_k  / win_v    [layers, B, kv_heads, window * Lc, head_dim]   the last `window` clean chunks, oldest first

Keys are stored after RoPE at positions relative to the cache's `origin` (a chunk index; 0 at the start).
Over a long stream the Actor moves the origin up (`Actor.rebase`), rotating the window's keys once by the
shift, so that positions stay inside the range training covered. Writing a chunk is two
steps: `append(layer, k, v)` stages the chunk's keys/values of one layer during the forward pass (the pass
itself still reads the cache as it was), and `commit(chunk_indices)` rolls every layer's window at once,
evicting the oldest chunks when the window is full.
"""

from __future__ import annotations

import torch

from engine_core.actor.masks import EMPTY, IDENTITY
from engine_core.config import ModelConfig


class KVCache:
    """Identity sink + rolling window of clean chunks, for every layer of one Actor."""

    def __init__(self, cfg: ModelConfig, batch: int = 1, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        a = cfg.actor
        self.window = cfg.window
        self.chunk_tokens = cfg.chunk_tokens
        self.sink_tokens = cfg.tokens_per_frame
        shape_sink = (a.layers, batch, a.kv_heads, self.sink_tokens, a.head_dim)
        shape_win = (a.layers, batch, a.kv_heads, self.window * self.chunk_tokens, a.head_dim)
        self.sink_k = torch.zeros(shape_sink, device=device, dtype=dtype)
        self.sink_v = torch.zeros_like(self.sink_k)
        self.win_k = torch.zeros(shape_win, device=device, dtype=dtype)
        self.win_v = torch.zeros_like(self.win_k)
        self.has_sink = False
        self.origin = 0                          # chunk index that position (time) 0 stands for
        self.chunks: list[int] = []              # absolute indices of the cached chunks, oldest first
        self._staged: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    # -- writing ---------------------------------------------------------------------------------------------
    def prefill(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Write the identity tokens' keys/values [B, kv_heads, P, Dh] of one layer (the sink)."""
        self.sink_k[layer].copy_(k)
        self.sink_v[layer].copy_(v)
        if layer == self.sink_k.shape[0] - 1:
            self.has_sink = True

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Stage whole chunks' keys/values [B, kv_heads, n*Lc, Dh] of one layer (applied by `commit`)."""
        if k.shape[2] % self.chunk_tokens:
            raise ValueError(f"append needs whole chunks of {self.chunk_tokens} tokens, got {k.shape[2]}")
        self._staged[layer] = (k, v)

    def commit(self, chunk_indices: list[int]) -> None:
        """Roll the staged chunks into every layer's window (evicting the oldest beyond `window`)."""
        if not chunk_indices:
            return
        if len(self._staged) != self.win_k.shape[0]:
            raise RuntimeError(f"commit: {len(self._staged)} of {self.win_k.shape[0]} layers staged")
        n = len(chunk_indices)
        lc = self.chunk_tokens
        shift = min(n, self.window) * lc
        total = self.win_k.shape[3]
        if any(k.shape[2] != n * lc for k, _ in self._staged.values()):
            raise ValueError("commit: staged tokens do not match the chunk count")
        order = sorted(self._staged)
        for buf, j in ((self.win_k, 0), (self.win_v, 1)):    # every layer at once: a few launches, not 4 per layer
            new = torch.stack([self._staged[layer][j] for layer in order])         # [layers, B, H, n*Lc, Dh]
            if shift < total:                                 # move the survivors to the front (oldest first)
                buf[:, :, :, :total - shift] = buf[:, :, :, shift:].clone()
            buf[:, :, :, total - shift:] = new[:, :, :, new.shape[3] - shift:]
        self._staged.clear()
        self.chunks = (self.chunks + list(chunk_indices))[-self.window:]

    def evict(self, count: int = 1) -> None:
        """Forget the `count` oldest cached chunks (the sink stays)."""
        self.chunks = self.chunks[count:]

    def reset(self) -> None:
        """Drop the cached chunks (the identity sink stays)."""
        self.chunks = []
        self._staged.clear()

    # -- reading ---------------------------------------------------------------------------------------------
    def keys(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(k, v) [B, kv_heads, window*Lc + P, Dh] of one layer: the whole window, oldest first, then the sink.

        The window is read whole, filled or not: `key_chunks` marks its empty slots EMPTY, which the attention
        masks hide, so a pass's shapes do not depend on how full the cache is (one CUDA graph serves every fill;
        engine_core/actor/graphs.py). The sink comes after the window so that, with the pass's own keys after it,
        what each chunk of a pass after a full cache sees is one contiguous span (masks.ChunkSpans)."""
        if not self.has_sink:
            return self.win_k[layer], self.win_v[layer]
        return (torch.cat([self.win_k[layer], self.sink_k[layer]], dim=2),
                torch.cat([self.win_v[layer], self.sink_v[layer]], dim=2))

    def full(self, first_chunk: int) -> bool:
        """Whether the window holds the `window` chunks just before `first_chunk`, and the sink is there: then a
        pass starting at `first_chunk` needs no self-attention mask (masks.ChunkSpans)."""
        return self.has_sink and self.chunks == list(range(first_chunk - self.window, first_chunk))

    def key_chunks(self) -> torch.Tensor:
        """Chunk index of every key `keys` returns (EMPTY for unfilled slots, IDENTITY for the sink) -> long."""
        ids = [torch.full(((self.window - len(self.chunks)) * self.chunk_tokens,), EMPTY)]
        ids += [torch.full((self.chunk_tokens,), c) for c in self.chunks]
        if self.has_sink:
            ids.append(torch.full((self.sink_tokens,), IDENTITY))
        return torch.cat(ids)

    def memory_bytes(self) -> int:
        """Bytes held by the cache buffers (constant for a given config)."""
        return sum(t.numel() * t.element_size() for t in (self.sink_k, self.sink_v, self.win_k, self.win_v))
