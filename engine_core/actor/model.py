"""The Actor: a chunk-wise autoregressive diffusion transformer that reads the Thinker's hidden states.

Token layout of one chunk (F = chunk_frames, Fl = latent frames, P = tokens per latent frame):

    [F conditioning tokens: speech features of each frame + the mean Thinker hidden state of its tokens]
    [Fl * P video latent tokens (noisy latents, patchified; with `actor.frame_speech`, plus a projection of
     the speech features of their frame)]

With `actor.token_stream` each chunk starts with T token slots: the Actor's own text and audio tokens, generated
slot by slot before the chunk's latents are denoised (engine_core/actor/tokens.py holds their rules and generation).

The identity tokens (P tokens: the encoded portrait) come before the first chunk and act as a sink that
every token sees; at inference they live in the KV cache's sink (`prefill_identity`) instead of being
repeated per chunk. Video and conditioning tokens cross-attend to the Thinker hidden-state tokens of the
current and `cross_chunks` previous chunks. Heads: velocity (flow matching) on video tokens; text and
audio logits on conditioning tokens.

Two ways to call `forward`:
  - full sequence (training, reference recompute): `cache=None`, `identity` given; chunks 0.. in one go;
  - incremental (streaming): `cache` prefilled with the identity; chunks [first_chunk, first_chunk+m)
    attend to the cache and to each other; `write_chunks=n` stages the first n chunks' keys/values and
    commits them to the cache after the pass (the clean pass at noise 0, fused with the next step); on CUDA
    the block stack of these passes is replayed from CUDA graphs (engine_core/actor/graphs.py).
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import torch
import torch.nn as nn

from engine_core.actor.batch import BatchRunner, StreamPass, stack_inputs
from engine_core.actor.cond import ChunkCond, blank_pass
from engine_core.actor.graphs import BlockStack, PassInputs, run_blocks
from engine_core.actor.kv_cache import KVCache
from engine_core.actor.layers import EAGER, Block, BlockOps, sigma_embedding
from engine_core.actor.masks import IDENTITY, ChunkSpans, cross_attention_mask, self_attention_mask
from engine_core.actor.tokens import ActorTokens
from engine_core.actor.rope import (Rope3D, cond_position_ids, identity_position_ids, text_position_ids,
                                    video_position_ids)
from engine_core.config import ModelConfig
from engine_core.fusion import fused, wanted

log = logging.getLogger(__name__)


class _Prepared(NamedTuple):
    """A pass's tokens [B,L,D] and layout: positions [L,3], chunk of each token [L], sigma per noise group [B,G],
    group of each token [L], token slot of each token [L] (or None), identity tokens in front (no cache: P, else 0)."""

    tokens: torch.Tensor
    pos: torch.Tensor
    q_chunk: torch.Tensor
    group_sigma: torch.Tensor
    token_group: torch.Tensor
    q_slot: torch.Tensor | None
    n_id: int


@dataclass
class ActorOutput:
    """velocity [B, m, Fl, C, h, w]; text_logits [B, m, F, Vt] / audio_logits [B, m, F, Va] when asked (on the T
    token slots, [B, m, T, V], with `actor.token_stream`)."""

    velocity: torch.Tensor
    text_logits: torch.Tensor | None = None
    audio_logits: torch.Tensor | None = None


class Actor(nn.Module):
    """Chunk-wise autoregressive diffusion transformer (see the module docstring)."""

    def __init__(self, cfg: ModelConfig, attn_impl: str = "sdpa") -> None:
        super().__init__()
        self.cfg = cfg
        self.attn_impl = attn_impl
        self.cuda_graphs = True      # streaming passes on CUDA replay one graph per pass shape (actor/graphs.py)
        self.spans = True            # a streaming pass after a full cache attends without a mask (masks.ChunkSpans)
        self.fuse: bool | None = None  # inference passes' pointwise regions compiled (engine_core/fusion.py);
                                       # None: on CUDA only
        self._stacks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # KVCache -> its BlockStack
        self._batch = BatchRunner()  # several streams' passes as one (forward_many; actor/batch.py)
        self.batched_last = False    # whether the last forward_many ran as one batched pass
        a, t = cfg.actor, cfg.thinker
        d = a.width
        self.patch_in = nn.Linear(cfg.token_dim, d)
        self.speech_in = nn.Linear(t.speech_feature_size, d)
        self.frame_speech_in = nn.Linear(t.speech_feature_size, d) if a.frame_speech else None
        if self.frame_speech_in is not None:         # zero: a model given this path starts as the one without it
            nn.init.zeros_(self.frame_speech_in.weight)
            nn.init.zeros_(self.frame_speech_in.bias)
        # identity tokens: the codec's latents of the portrait, patchified like video (pixel codecs), or a vector of
        # `identity_dim` numbers per token through their own projection (motion: the face's normalised landmarks)
        self.identity_in = nn.Linear(a.identity_dim, d) if a.identity_dim > 0 else None
        self.hidden_pool_in = nn.Linear(t.hidden_size, d)
        self.ctx_in = nn.Sequential(nn.Linear(t.hidden_size, d), nn.RMSNorm(d, eps=a.norm_eps))
        self.null_ctx = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.type_emb = nn.Parameter(torch.randn(3, d) * 0.02)          # 0 identity, 1 conditioning, 2 video
        self.sigma_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(a.layers))
        self.norm_out = nn.RMSNorm(d, eps=a.norm_eps)
        self.velocity_out = nn.Linear(d, cfg.token_dim)
        self.text_head = nn.Linear(d, t.text_vocab) if t.text_vocab > 0 else None
        self.audio_head = nn.Linear(d, t.audio_vocab) if t.audio_vocab > 0 else None
        self.rope = Rope3D(a.head_dim, a.rope_theta)
        self.tokens = ActorTokens(cfg) if a.token_stream else None     # the token slots (actor/tokens.py)

    # -- patchify ------------------------------------------------------------------------------------------
    def patchify(self, z: torch.Tensor) -> torch.Tensor:
        """Latents [..., C, h, w] -> tokens [..., P, C*p*p] (row-major over the token grid)."""
        p = self.cfg.actor.patch
        *lead, c, h, w = z.shape
        z = z.reshape(-1, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)   # [N, h/p, w/p, C, p, p]
        return z.reshape(*lead, (h // p) * (w // p), c * p * p)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens [..., P, C*p*p] -> latents [..., C, h, w]."""
        p, c, hw = self.cfg.actor.patch, self.cfg.vae.latent_channels, self.cfg.latent_hw
        g = hw // p
        *lead, _, _ = x.shape
        x = x.reshape(-1, g, g, c, p, p).permute(0, 3, 1, 4, 2, 5)             # [N, C, g, p, g, p]
        return x.reshape(*lead, c, hw, hw)

    # -- embeddings ----------------------------------------------------------------------------------------
    def _pool_hidden(self, cond: ChunkCond, first_chunk: int, m: int) -> torch.Tensor:
        """Mean Thinker state of the tokens aligned to each frame of the m chunks -> [B, m, F, Dth]."""
        f, r = self.cfg.chunk_frames, self.cfg.cross_chunks
        hid, frames, valid = cond.hidden[:, r:], cond.hidden_frames[:, r:], cond.hidden_mask[:, r:]  # [B,m,M,.]
        start = (first_chunk + torch.arange(m, device=frames.device)) * f                          # [m]
        rel = frames - start[None, :, None]                                                        # [B,m,M]
        onehot = (rel[..., None] == torch.arange(f, device=frames.device)) & valid[..., None]      # [B,m,M,F]
        onehot = onehot.to(hid.dtype)
        summed = onehot.transpose(-1, -2) @ hid                                                    # [B,m,F,Dth]
        return summed / onehot.sum(dim=2)[..., None].clamp_min(1.0)

    @torch.no_grad()
    def fold_frame_speech_gain(self, silence: torch.Tensor) -> None:
        """Inference: scale the frame-speech projection's departure from its value at `silence` (the speech
        features [S] of a silent frame) by `cfg.actor.frame_speech_gain`, folded into its weights so a pass
        costs nothing more: g * (W s + b) - (g - 1) * (W s_sil + b) = (g W) s + b - (g - 1) W s_sil.
        A guidance on this one conditioning path: the trained model under-uses the voice (its mouths open
        too little), and g > 1 pushes each frame's mouth further from the closed, silent one."""
        g, lin = float(self.cfg.actor.frame_speech_gain), self.frame_speech_in
        if lin is None or g == 1.0:
            return
        lin.bias -= (g - 1.0) * (lin.weight @ silence.to(lin.weight))
        lin.weight *= g

    def _chunk_tokens(self, x: torch.Tensor, cond: ChunkCond, first_chunk: int) -> torch.Tensor:
        """Noisy latents [B,m,Fl,C,h,w] + conditioning -> tokens [B, m*Lc, D]."""
        b, m = x.shape[:2]
        dt = self.patch_in.weight.dtype
        x = x.to(dt)
        cond = ChunkCond(cond.speech.to(dt), cond.hidden.to(dt), cond.hidden_frames, cond.hidden_mask, cond.tokens)
        c_tok = self.speech_in(cond.speech) + self.hidden_pool_in(self._pool_hidden(cond, first_chunk, m))
        c_tok = c_tok + self.type_emb[1]                                          # [B,m,F,D]
        v_tok = self.patch_in(self.patchify(x))                                   # [B,m,Fl,P,D]
        if self.frame_speech_in is not None:    # each latent frame + the speech of the frame its time id names
            tf, fl = self.cfg.vae.temporal_factor, self.cfg.latent_frames
            v_tok = v_tok + self.frame_speech_in(cond.speech[:, :, ::tf][:, :, :fl])[:, :, :, None]
        v_tok = v_tok.flatten(2, 3) + self.type_emb[2]                             # [B,m,Fl*P,D]
        parts = [c_tok, v_tok]
        if self.tokens is not None:                                                # [B,m,T,D] first
            parts.insert(0, self.tokens.slot_inputs(cond, m, dt))
        return torch.cat(parts, dim=2).reshape(b, -1, c_tok.shape[-1])

    def _chunk_positions(self, first_chunk: int, m: int, cond: ChunkCond | None = None,
                         origin: int = 0) -> torch.Tensor:
        """Position ids [m*Lc, 3] in the chunk layout (first_chunk relative to the position origin; `cond` places
        the token slots)."""
        parts = [cond_position_ids(self.cfg, first_chunk, m), video_position_ids(self.cfg, first_chunk, m)]
        if self.tokens is not None:                              # (on the Thinker states' device: no host sync)
            tp = self.tokens.positions(cond, first_chunk, m, origin)
            parts = [tp] + [q.to(tp.device) for q in parts]
        return torch.cat(parts, dim=1).reshape(-1, 3)                              # [m, Lc, 3] -> [m*Lc, 3]

    def _context(self, cond: ChunkCond, first_chunk: int, origin: int = 0) -> tuple[torch.Tensor, torch.Tensor,
                                                                                    torch.Tensor, torch.Tensor]:
        """Cross-attention keys: (ctx [B,1+K*M,D], positions [1+K*M,3], chunk ids [1+K*M], valid [B,1+K*M]);
        positions are relative to the position origin (a chunk index)."""
        b, kh, mm, _ = cond.hidden.shape
        ctx = self.ctx_in(cond.hidden.to(self.null_ctx.dtype)).reshape(b, kh * mm, -1)
        ctx = torch.cat([self.null_ctx.expand(b, 1, -1), ctx], dim=1)
        frames = cond.hidden_frames[0].reshape(-1) - origin * self.cfg.chunk_frames   # shared across the batch
        pos = torch.cat([torch.zeros(1, 3, dtype=torch.long, device=frames.device), text_position_ids(frames)])
        r = self.cfg.cross_chunks
        chunk_of = (first_chunk - r + torch.arange(kh, device=frames.device)).repeat_interleave(mm)
        chunk_of = torch.cat([torch.full((1,), IDENTITY, device=frames.device), chunk_of])   # null key first
        valid = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=frames.device),
                           cond.hidden_mask.reshape(b, -1)], dim=1)
        return ctx, pos, chunk_of, valid

    # -- the transformer -----------------------------------------------------------------------------------
    def _run(self, tokens: torch.Tensor, pos: torch.Tensor, q_chunk: torch.Tensor, group_sigma: torch.Tensor,
             token_group: torch.Tensor, cond: ChunkCond | None, first_chunk: int, cache: KVCache | None,
             kv_hook=None, write_tokens: int = 0, q_slot: torch.Tensor | None = None) -> torch.Tensor:
        """tokens [B,L,D], pos [L,3], q_chunk [L], group_sigma [B,G], token_group [L] -> hidden [B,L,D]; q_slot [L]:
        each token's token-slot index (-1: none), with `actor.token_stream`.

        With a cache, the block stack stages the keys/values of the first `write_tokens` tokens into it and runs
        through the cache's CUDA graphs where `cuda_graphs` is on (engine_core/actor/graphs.py); `kv_hook` (no
        cache: the identity prefill) receives every layer's keys/values instead."""
        inp = self._pass_inputs(tokens, pos, q_chunk, group_sigma, token_group, cond, first_chunk, cache, q_slot)
        ops = self.block_ops(tokens.device)
        if cache is None:
            return run_blocks(self.blocks, inp, None, self.attn_impl, tokens.shape[1] if kv_hook else 0, kv_hook,
                              ops)
        stack = self._stacks.get(cache)
        if stack is None:
            stack = self._stacks[cache] = BlockStack()
        return stack.run(self.blocks, inp, cache, self.attn_impl, write_tokens, cache.append, self.cuda_graphs,
                         ops)

    def _pass_inputs(self, tokens: torch.Tensor, pos: torch.Tensor, q_chunk: torch.Tensor, group_sigma: torch.Tensor,
                     token_group: torch.Tensor, cond: ChunkCond | None, first_chunk: int, cache: KVCache | None,
                     q_slot: torch.Tensor | None = None) -> PassInputs:
        """The block stack's inputs of one pass (`_run`'s arguments): RoPE angles, masks, Thinker context."""
        dev = tokens.device
        cos, sin = self.rope.angles(pos.to(dev))
        emb = self.sigma_mlp(sigma_embedding(group_sigma, tokens.shape[-1]).to(tokens.dtype))   # [B,G,D]
        m = tokens.shape[1] // self.cfg.chunk_tokens
        if cache is not None and self.spans and m <= cache.window and cache.full(first_chunk) and self.tokens is None:
            self_mask = ChunkSpans.after_full_cache(m, self.cfg.chunk_tokens, cache.window, cache.sink_tokens)
        else:
            k_chunk = q_chunk if cache is None else torch.cat([cache.key_chunks().to(dev), q_chunk])
            if self.tokens is not None and q_slot is not None:                     # token slots: their own rules
                q_slot = q_slot.to(dev)
                k_slot = q_slot if cache is None else torch.cat([self.tokens.cache_slots(cache).to(dev), q_slot])
                self_mask = self.tokens.self_mask(q_chunk, q_slot, k_chunk, k_slot)
            else:
                self_mask = self_attention_mask(q_chunk, k_chunk, self.cfg.window)   # [L, Lk]
        if cond is not None:
            ctx, ctx_pos, ctx_chunk, ctx_valid = self._context(cond, first_chunk, cache.origin if cache else 0)
        else:                                                                      # identity prefill: null key only
            ctx = self.null_ctx.expand(tokens.shape[0], 1, -1)
            ctx_pos = torch.zeros(1, 3, dtype=torch.long, device=dev)
            ctx_chunk = torch.full((1,), IDENTITY, device=dev)
            ctx_valid = torch.ones(tokens.shape[0], 1, dtype=torch.bool, device=dev)
        cross_mask = cross_attention_mask(q_chunk, ctx_chunk, ctx_valid, self.cfg.cross_chunks)
        cross_mask[:, :, 0] = True                                                 # the null key is always there
        if self.tokens is not None and q_slot is not None and cond is not None:
            cross_mask = self.tokens.cross_mask(cross_mask, q_chunk, q_slot, ctx_chunk)
        ctx_cos, ctx_sin = self.rope.angles(ctx_pos)
        return PassInputs(tokens, emb, token_group.to(dev), cos, sin, self_mask, ctx, ctx_cos, ctx_sin, cross_mask)

    def block_ops(self, device: torch.device) -> BlockOps:
        """The blocks' pointwise regions for a pass on `device`: fused where `fuse` wants them, except while
        training (autograd through the eager ones)."""
        return fused(EAGER) if wanted(self.fuse, device) and not torch.is_grad_enabled() else EAGER

    def identity_tokens(self, identity: torch.Tensor) -> torch.Tensor:
        """The identity reference -> tokens [B, P, D]: codec latents [B, C, h, w] patchified, or (with
        `actor.identity_dim`) vectors [B, P, identity_dim] projected."""
        dt = self.patch_in.weight.dtype
        if self.identity_in is not None:
            return self.identity_in(identity.to(dt).reshape(identity.shape[0], -1, self.cfg.actor.identity_dim)) \
                + self.type_emb[0]
        return self.patch_in(self.patchify(identity.to(dt))) + self.type_emb[0]

    @torch.no_grad()
    def prefill_identity(self, cache: KVCache, identity: torch.Tensor) -> None:
        """Encode the identity reference (see `identity_tokens`) into the cache's sink (never evicted)."""
        tokens = self.identity_tokens(identity)
        pos = identity_position_ids(self.cfg)
        q_chunk = torch.full((pos.shape[0],), IDENTITY, device=tokens.device)
        sig = torch.zeros(tokens.shape[0], 1, device=tokens.device)
        cache.has_sink = False
        cache.reset()
        self._run(tokens, pos, q_chunk, sig, torch.zeros_like(q_chunk), None, 0, None,
                  kv_hook=lambda i, k, v: cache.prefill(i, k, v))

    @torch.no_grad()
    def rebase(self, cache: KVCache, origin: int) -> None:
        """Move the cache's position origin to chunk `origin`, rotating the cached window keys by the shift.

        RoPE makes attention depend on position differences, except where the layout ties positions to time
        itself: conditioning and hidden tokens sit at (t, t, t) against video tokens at (t, y, x), and the
        null cross-attention key and the identity tokens sit at fixed slots. So an unbounded stream at
        absolute positions would leave the few hundred time ids training covers (after ~2 minutes the frames
        fell apart). Positions are therefore counted from an origin that moves up every `position_span`
        chunks; the identity and the null key move with it, and each cached key is rotated once by
        (-shift, -shift, -shift) for conditioning tokens and (-shift, 0, 0) for video tokens (exact: RoPE
        rotations add).
        """
        shift = (origin - cache.origin) * self.cfg.chunk_frames
        if shift == 0:
            return
        f, lc = self.cfg.chunk_frames, self.cfg.chunk_tokens
        pos = torch.zeros(lc, 3, dtype=torch.long)
        pos[:, 0] = -shift
        pos[:self.cfg.token_slots + f, 1:] = -shift                   # token slots, conditioning tokens: (t, t, t)
        cos, sin = self.rope.angles(pos.repeat(cache.window, 1).to(cache.win_k.device))
        for layer in range(cache.win_k.shape[0]):
            cache.win_k[layer].copy_(Rope3D.apply(cache.win_k[layer], cos, sin))
        cache.origin = origin

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: ChunkCond, first_chunk: int = 0,
                cache: KVCache | None = None, identity: torch.Tensor | None = None, write_chunks: int = 0,
                heads: bool = False) -> ActorOutput:
        """Predict the flow-matching velocity of m chunks (see the module docstring).

        x [B,m,Fl,C,h,w] noisy latents; sigma [B,m] noise level per chunk (0 = clean, 1 = pure noise).
        """
        if write_chunks and cache is None:
            raise ValueError("write_chunks needs a cache")
        p = self._prepare(x, sigma, cond, first_chunk, cache, identity)
        h = self._run(p.tokens, p.pos, p.q_chunk, p.group_sigma, p.token_group, cond, first_chunk, cache,
                      write_tokens=write_chunks * self.cfg.chunk_tokens, q_slot=p.q_slot)
        if write_chunks:
            cache.commit(list(range(first_chunk, first_chunk + write_chunks)))
        return self._outputs(h[:, p.n_id:], x.shape[0], x.shape[1], heads)

    def _prepare(self, x: torch.Tensor, sigma: torch.Tensor, cond: ChunkCond, first_chunk: int,
                 cache: KVCache | None, identity: torch.Tensor | None) -> _Prepared:
        """A pass's tokens and their layout (positions relative to the cache's origin, moved up first when the pass
        would reach past `position_span`; without a cache, the identity tokens first)."""
        cfg = self.cfg
        b, m = x.shape[:2]
        dev = x.device
        lc = cfg.chunk_tokens
        tokens = self._chunk_tokens(x, cond, first_chunk)                              # [B, m*Lc, D]
        if cache is not None and first_chunk + m - cache.origin > cfg.actor.position_span:
            self.rebase(cache, max(0, first_chunk - cfg.window - 1))
        origin = cache.origin if cache is not None else 0
        pos = self._chunk_positions(first_chunk - origin, m, cond, origin).to(dev)
        q_chunk = (first_chunk + torch.arange(m, device=dev)).repeat_interleave(lc)    # [m*Lc]
        group_sigma, token_group = sigma, torch.arange(m, device=dev).repeat_interleave(lc)
        q_slot = self.tokens.layout_slots(m).to(dev) if self.tokens is not None else None
        n_id = 0
        if cache is None:
            if identity is None:
                raise ValueError("Actor.forward needs `identity` latents when no cache is given")
            id_tok = self.identity_tokens(identity)                                       # [B,P,D]
            n_id = id_tok.shape[1]
            tokens = torch.cat([id_tok, tokens], dim=1)
            pos = torch.cat([identity_position_ids(cfg).to(dev), pos])
            q_chunk = torch.cat([torch.full((n_id,), IDENTITY, device=dev), q_chunk])
            group_sigma = torch.cat([torch.zeros(b, 1, device=dev, dtype=sigma.dtype), sigma], dim=1)
            token_group = torch.cat([torch.zeros(n_id, dtype=torch.long, device=dev), token_group + 1])
            if q_slot is not None:
                q_slot = torch.cat([torch.full((n_id,), -1, device=dev), q_slot])
        if q_slot is not None:                                     # token slots: a noise group of their own, sigma 0
            group_sigma, token_group = self.tokens.clean_group(group_sigma, token_group, q_slot)
        return _Prepared(tokens, pos, q_chunk, group_sigma, token_group, q_slot, n_id)

    def _outputs(self, h: torch.Tensor, b: int, m: int, heads: bool) -> ActorOutput:
        """The block stack's output over the chunks' tokens [B, m*Lc, D] -> velocity (and the heads' logits)."""
        cfg = self.cfg
        f, t0 = cfg.chunk_frames, cfg.token_slots
        h = self.norm_out(h).view(b, m, cfg.chunk_tokens, -1)                           # [B,m,Lc,D]
        vel = self.unpatchify(self.velocity_out(h[:, :, t0 + f:]).view(b, m, cfg.latent_frames,
                                                                       cfg.tokens_per_frame, -1))
        out = ActorOutput(velocity=vel)
        if heads:                                  # on the token slots with `actor.token_stream`, else conditioning
            hh = h[:, :, :t0] if t0 else h[:, :, :f]
            out.text_logits = self.text_head(hh) if self.text_head is not None else None
            out.audio_logits = self.audio_head(hh) if self.audio_head is not None else None
        return out

    @torch.no_grad()
    def forward_many(self, passes: Sequence[StreamPass]) -> list[torch.Tensor]:
        """The velocities [1, m, Fl, C, h, w] of several streams' passes, each over its own KV cache, computed as ONE
        pass of batch len(passes) (engine_core/actor/batch.py): the passes must have the same number of chunks and
        write the same number (`batch_key`). Each stream's positions, masks and cache are its own, so each gets the
        numbers its own `forward` would give (tests/test_actor_batch.py); on CUDA a batch replays a graph captured
        per batch size (`warm_batch_graphs`), and a batch of a shape not captured runs stream by stream."""
        self.batched_last = len(passes) > 1 and self._batchable(passes)
        if not self.batched_last:
            return [self(p.x, p.sigma, p.cond, p.first, cache=p.cache, write_chunks=p.write).velocity
                    for p in passes]
        lc = self.cfg.chunk_tokens
        inputs = []
        for p in passes:
            q = self._prepare(p.x, p.sigma, p.cond, p.first, p.cache, None)
            inputs.append(self._pass_inputs(q.tokens, q.pos, q.q_chunk, q.group_sigma, q.token_group, p.cond, p.first,
                                            p.cache, q.q_slot))
        inp = stack_inputs(inputs)
        caches = [p.cache for p in passes]
        write = passes[0].write
        try:
            h = self._batch.run(self.blocks, inp, caches, self.attn_impl, write * lc, self.block_ops(inp.x.device),
                                graphs=self.cuda_graphs)
        except Exception:      # nothing was committed: each stream's own pass instead, and no batches from now on
            log.exception("a batched Actor pass failed: streams pass one by one from now on")
            self._batch.disable()
            for p in passes:
                p.cache._staged.clear()
            self.batched_last = False
            return [self(p.x, p.sigma, p.cond, p.first, cache=p.cache, write_chunks=p.write).velocity for p in passes]
        for p in passes:
            if write:
                p.cache.commit(list(range(p.first, p.first + write)))
        m = passes[0].x.shape[1]
        return [self._outputs(h[i:i + 1], 1, m, False).velocity for i in range(len(passes))]

    def batch_key(self, p: StreamPass) -> tuple:
        """Passes with equal keys can run as one batch (`forward_many`): chunks, chunks written, batch rows."""
        return (p.x.shape[0], p.x.shape[1], p.write)

    def _batchable(self, passes: Sequence[StreamPass]) -> bool:
        keys = {self.batch_key(p) for p in passes}
        if len(keys) != 1 or passes[0].x.shape[0] != 1 or any(not p.cache.has_sink for p in passes):
            return False
        return self._batch.can_run(next(self.parameters()).device, len(passes), passes[0].x.shape[1],
                                   passes[0].write, all(self._spans_for(p) for p in passes), self.cuda_graphs)

    def _spans_for(self, p: StreamPass) -> bool:
        """Whether `p`'s pass attends without a mask (a full cache: masks.ChunkSpans)."""
        return (self.spans and p.x.shape[1] <= p.cache.window and p.cache.full(p.first) and self.tokens is None)

    @classmethod
    def build(cls, cfg: ModelConfig, device: torch.device | str, dtype: torch.dtype, attn_impl: str = "sdpa") -> Actor:
        """A new (random) Actor created on `device` in `dtype` directly: no float32 copy of a 10B Actor."""
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            with torch.device(device):
                return cls(cfg, attn_impl=attn_impl).to(dtype)
        finally:
            torch.set_default_dtype(previous)

    @torch.no_grad()
    def warm_graphs(self, cache: KVCache) -> int:
        """Capture the CUDA graphs of every pass shape a stream over `cache` can meet (1 to steps + 1 chunks,
        writing a clean chunk or not; with the cache filling, and full: masks.ChunkSpans), so that no pass of a
        reply waits for a capture; the cache is left as it was. A no-op off CUDA or with graphs off. Returns how
        many shapes have a graph."""
        p = next(self.parameters())
        if not (self.cuda_graphs and p.is_cuda):
            return 0
        cfg, dev = self.cfg, p.device
        saved = (list(cache.chunks), cache.origin, cache.win_k.clone(), cache.win_v.clone())
        first = cache.origin + cfg.window
        fills = [[], list(range(first - cfg.window, first))] if self.spans and cache.has_sink else [[]]
        for chunks in fills:
            for m in range(1, cfg.steps + 2):
                for write in (1, 0) if m <= cfg.steps else (1,):
                    cache.chunks = list(chunks)
                    self(*blank_pass(cfg, m, dev, p.dtype), first, cache=cache, write_chunks=write)
                    cache.chunks, cache.origin = list(saved[0]), saved[1]   # a write's commit is undone
                    cache.win_k.copy_(saved[2])
                    cache.win_v.copy_(saved[3])
        return self.graph_shapes(cache)

    @torch.no_grad()
    def warm_batch_graphs(self, max_batch: int, all_shapes: bool = False) -> int:
        """(A failure is logged and leaves batches off: streams pass one by one, each from its own graphs.)"""
        try:
            return self._warm_batch_graphs(max_batch, all_shapes)
        except Exception:
            log.exception("the batched passes' graphs could not be captured: streams pass one by one")
            self._batch.disable()
            return 0

    def _warm_batch_graphs(self, max_batch: int, all_shapes: bool = False) -> int:
        """CUDA: capture the graphs of batched passes (`forward_many`) for every batch size 2..max_batch: the pass of a
        stream's steady state (steps + 1 chunks writing one, after a full cache), or with `all_shapes` every shape a
        stream meets. A batch of another shape runs stream by stream, each from its own graphs. No-op off CUDA (the
        CPU batches any shape eagerly). Returns how many batch shapes have a graph."""
        n = self.cfg.steps + 1
        if all_shapes:
            shapes = [(m, w, s) for s in (True, False) for m in range(1, n + 1) for w in ((1, 0) if m < n else (1,))]
        else:
            shapes = [(n, 1, True), (n, 1, False)]
        return self._batch.warm(self, max_batch, shapes)

    def graph_shapes(self, cache: KVCache) -> int:
        """How many pass shapes of `cache`'s stream have a CUDA graph (0 off CUDA or with graphs off)."""
        stack = self._stacks.get(cache)
        return stack.captured if stack is not None else 0

    def new_cache(self, batch: int = 1) -> KVCache:
        """An empty KV cache shaped for this Actor."""
        p = next(self.parameters())
        return KVCache(self.cfg, batch, p.device, p.dtype)
