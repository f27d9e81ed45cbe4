"""The cascade's SmolLM2 (a transformers `LlamaForCausalLM`) decoding several replies at once on the CPU.

Each reply in flight has a slot: its own key/value cache per layer, grown in blocks as the reply goes (a prompt is
a few hundred tokens; a static cache of the model's full 8,192 positions would hold ~380 MB per reply). A decode
step over B replies is ONE forward of the model's matrix products over B rows, which on the CPU costs about one
row's (the step reads the 135M weights either way: tests/test_lm_slots.py; figures in docs/performance.md); only
attention runs per slot, over that slot's own keys. The steps come from the replies' threads through a
`StepBatcher` (thinker/batch_steps.py).

The forward is the model's own modules (norms, projections, MLP, rotary embedding) around a functional attention
over the slots, so it computes the transformers forward's numbers (tests/test_lm_slots.py compares logits and
hidden states of a prompt and the tokens after it).
"""

from __future__ import annotations

import threading

import torch
import torch.nn.functional as F

from .batch_steps import StepBatcher
from .prefix import shared_prefix

GROW = 256          # a slot's cache grows by this many positions at a time


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


def _rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, H, n, Dh] rotated by cos/sin [B, n, Dh] (transformers' Llama convention)."""
    return x * cos[:, None] + _rotate_half(x) * sin[:, None]


class LmSlot:
    """One reply's place in the batch: its keys/values per layer ([kv_heads, capacity, Dh], the first `length`
    positions filled)."""

    def __init__(self, owner: SlotLM) -> None:
        self.owner = owner
        self.length = 0
        self.known: list[int] = []        # the token ids at positions [0, length)
        self.reused = 0                   # positions the last `resume` kept
        self.k: list[torch.Tensor] = []
        self.v: list[torch.Tensor] = []

    def _reserve(self, n: int) -> None:
        need = self.length + n
        cap = self.k[0].shape[1] if self.k else 0
        if need <= cap:
            return
        new_cap = -(-need // GROW) * GROW
        o = self.owner
        for store in (self.k, self.v):
            for i in range(o.layers):
                buf = torch.zeros(o.kv_heads, new_cap, o.head_dim, dtype=o.dtype)
                if store and i < len(store):
                    buf[:, :self.length] = store[i][:, :self.length]
                    store[i] = buf
                else:
                    store.append(buf)

    def reset(self) -> None:
        self.length = 0
        self.known = []

    def cached_prefix(self, prompt: list[int]) -> int:
        """How many of `prompt`'s first ids the cache holds at their positions."""
        return shared_prefix(self.known, prompt)

    # -- the reply's side (its own thread) -----------------------------------------------------------------------
    def resume(self, prompt: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Prefill `prompt` keeping the longest prefix of it the slot already holds (a conversation's next prompt
        starts with its last one: the persona's system prompt and the turns before) -> (logits [V] of the next token,
        hidden of the positions computed)."""
        keep = min(self.cached_prefix(prompt), len(prompt) - 1)      # at least one token computed, for its logits
        self.length, self.known, self.reused = keep, self.known[:keep], keep
        return self.prefill(torch.tensor([prompt[keep:]]))

    def prefill(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ids [1, n] after what the slot holds -> (logits [V] of the next token, hidden [n, D] of the inputs).
        Runs alone (a prompt is many tokens: batching it with one-token steps would hold those up)."""
        with torch.inference_mode():
            hidden = self.owner._forward([self], ids.reshape(1, -1))
            return self.owner.head(hidden[0, -1:])[0].float(), hidden[0].float()

    def step(self, token: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One token -> (logits [V] of the next, hidden [D] of this one), batched with the other replies' steps."""
        return self.owner.batcher.step(self, token)

    def open(self) -> None:
        self.owner.batcher.open(self)

    def close(self) -> None:
        self.owner.batcher.close(self)
        self.owner._give_back(self)


class SlotLM:
    """Slots over one `LlamaForCausalLM` (module docstring). `take()` a slot for a reply, `slot.close()` after."""

    def __init__(self, model, gather_s: float = 0.01) -> None:
        self.model = model
        base = model.model
        cfg = model.config
        self.embed, self.layers_m, self.norm, self.rotary = base.embed_tokens, base.layers, base.norm, base.rotary_emb
        self.head = model.lm_head
        self.layers = len(self.layers_m)
        self.heads = int(cfg.num_attention_heads)
        self.kv_heads = int(cfg.num_key_value_heads)
        self.head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads)
        self.dtype = next(model.parameters()).dtype
        self.batcher: StepBatcher[LmSlot] = StepBatcher(self._step_rows, gather_s)
        self._free: list[LmSlot] = []
        self._lock = threading.Lock()

    def take(self, prompt: list[int] | None = None) -> LmSlot:
        """A slot for a reply: the free one holding most of `prompt` already (`LmSlot.resume` reuses it), or a new
        one."""
        with self._lock:
            if self._free:
                slot = max(self._free, key=lambda s: s.cached_prefix(prompt or []))
                self._free.remove(slot)
            else:
                slot = LmSlot(self)
        slot.open()
        return slot

    def _give_back(self, slot: LmSlot) -> None:
        with self._lock:
            self._free.append(slot)

    def _step_rows(self, rows: list[tuple[LmSlot, int]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        slots = [s for s, _ in rows]
        ids = torch.tensor([[t] for _, t in rows])
        with torch.inference_mode():
            hidden = self._forward(slots, ids)                               # [B, 1, D]
            logits = self.head(hidden[:, -1]).float()                        # [B, V]
        hidden = hidden[:, -1].float()
        return [(logits[i], hidden[i]) for i in range(len(slots))]

    def _forward(self, slots: list[LmSlot], ids: torch.Tensor) -> torch.Tensor:
        """ids [B, n] (n = 1 for B > 1) written after each slot's positions -> last layer's normed hidden [B, n, D]."""
        b, n = ids.shape
        starts = [s.length for s in slots]
        for s in slots:
            s._reserve(n)
        pos = torch.tensor(starts)[:, None] + torch.arange(n)[None, :]        # [B, n]
        x = self.embed(ids)
        cos, sin = self.rotary(x, pos)                                         # [B, n, Dh]
        for i, layer in enumerate(self.layers_m):
            attn = layer.self_attn
            h = layer.input_layernorm(x)
            q = attn.q_proj(h).view(b, n, self.heads, self.head_dim).transpose(1, 2)
            k = attn.k_proj(h).view(b, n, self.kv_heads, self.head_dim).transpose(1, 2)
            v = attn.v_proj(h).view(b, n, self.kv_heads, self.head_dim).transpose(1, 2)
            q, k = _rope(q, cos, sin), _rope(k, cos, sin)
            outs = []
            for r, s in enumerate(slots):
                a, e = starts[r], starts[r] + n
                s.k[i][:, a:e] = k[r]
                s.v[i][:, a:e] = v[r]
                keys, vals = s.k[i][None, :, :e], s.v[i][None, :, :e]
                mask = None
                if n > 1:                                                       # causal over the new tokens
                    mask = torch.arange(e)[None, :] <= (a + torch.arange(n))[:, None]
                outs.append(F.scaled_dot_product_attention(q[r:r + 1], keys, vals, attn_mask=mask,
                                                           scale=attn.scaling, enable_gqa=True))
            o = torch.cat(outs).transpose(1, 2).reshape(b, n, -1)
            x = x + attn.o_proj(o)
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        for r, s in enumerate(slots):
            s.length += n
            s.known.extend(int(t) for t in ids[r])
        return self.norm(x)


__all__ = ["LmSlot", "SlotLM"]
