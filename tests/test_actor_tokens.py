"""The Actor's token stream on `tiny` (actor.token_stream): causality within and across chunks, the generated tokens
equal a full-sequence recompute, the streaming pass with token slots equals the recompute, and it overfits a few
chunks' tokens and latents."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine_core.actor.model import Actor, ChunkCond
from engine_core.actor.schedule import add_noise, velocity_target
from engine_core.actor.tokens import AUDIO, TEXT, TokenStream
from engine_core.config import ModelConfig
from engine_core.thinker.glm4voice_decode import draw_token

CFG = ModelConfig.from_name("tiny")
CFG.actor.token_stream = True
CFG.validate()
T, F_, R = CFG.token_slots, CFG.chunk_frames, CFG.cross_chunks


@pytest.fixture(scope="module")
def actor() -> Actor:
    torch.manual_seed(0)
    return Actor(CFG).eval()


def make_inputs(k: int, n_tok: int = 4, seed: int = 0):
    """Latents [1,k,...], sigma [1,k], ChunkCond over chunks -R..k-1 with `n_tok` Thinker tokens a chunk (the token
    slots' inputs random joint ids, pads after them), identity [1,C,h,w]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, k, CFG.latent_frames, CFG.vae.latent_channels, CFG.latent_hw, CFG.latent_hw, generator=g)
    sigma = torch.rand(1, k, generator=g)
    speech = torch.randn(1, k, F_, CFG.thinker.speech_feature_size, generator=g)
    hidden = torch.randn(1, R + k, T, CFG.thinker.hidden_size, generator=g)
    chunk = (torch.arange(R + k) - R)[:, None]
    frames = (chunk * F_ + (torch.arange(T)[None] * F_) // max(n_tok, 1))[None].clone()
    mask = (chunk >= 0) & (torch.arange(T)[None] < n_tok)
    frames = torch.where(mask[None], frames, 0)
    tok = CFG.thinker.text_vocab + CFG.thinker.audio_vocab
    tokens = torch.randint(0, tok, (1, k, T), generator=g)
    tokens = torch.where(mask[None, R:], tokens, tok + 1)                     # PAD after the chunk's tokens
    ident = torch.randn(1, CFG.vae.latent_channels, CFG.latent_hw, CFG.latent_hw, generator=g)
    return x, sigma, ChunkCond(speech, hidden, frames, mask[None], tokens), ident


def slice_cond(cond: ChunkCond, k: int, m: int = 1) -> ChunkCond:
    return ChunkCond(cond.speech[:, k:k + m], cond.hidden[:, k:k + R + m], cond.hidden_frames[:, k:k + R + m],
                     cond.hidden_mask[:, k:k + R + m], cond.tokens[:, k:k + m])


def clone(cond: ChunkCond) -> ChunkCond:
    return ChunkCond(cond.speech.clone(), cond.hidden.clone(), cond.hidden_frames.clone(), cond.hidden_mask.clone(),
                     cond.tokens.clone())


@torch.no_grad()
def test_token_slots_are_causal_within_and_across_chunks(actor):
    x, sig, cond, ident = make_inputs(3)
    base = actor(x, sig, cond, 0, identity=ident, heads=True)
    # a token input of chunk 1, slot 2: slots 0..1 of chunk 1 and all of chunk 0 keep their outputs
    c2 = clone(cond)
    c2.tokens[0, 1, 2] = (c2.tokens[0, 1, 2] + 7) % CFG.thinker.text_vocab
    out = actor(x, sig, c2, 0, identity=ident, heads=True)
    assert torch.equal(out.text_logits[:, 0], base.text_logits[:, 0])
    assert torch.equal(out.velocity[:, 0], base.velocity[:, 0])
    assert torch.equal(out.text_logits[:, 1, :2], base.text_logits[:, 1, :2])
    assert (out.text_logits[:, 1, 2:4] - base.text_logits[:, 1, 2:4]).abs().max() > 1e-4
    assert (out.text_logits[:, 2] - base.text_logits[:, 2]).abs().max() > 1e-4       # later chunks read it
    assert (out.velocity[:, 1] - base.velocity[:, 1]).abs().max() > 1e-4             # the chunk's latents see it
    # a Thinker state of chunk 1, slot 2: slots 0..1 of chunk 1 do not read it (slot i reads hidden 0..i)
    c3 = clone(cond)
    c3.hidden[0, R + 1, 2] += 1.0
    out = actor(x, sig, c3, 0, identity=ident, heads=True)
    assert torch.equal(out.text_logits[:, 1, :2], base.text_logits[:, 1, :2])
    assert (out.text_logits[:, 1, 2] - base.text_logits[:, 1, 2]).abs().max() > 1e-4
    # the video of chunk 1 and the noise levels: no token slot anywhere reads them
    x2, sig2 = x.clone(), sig.clone()
    x2[:, 1] += 1.0
    sig2[:, 1] = 0.95 if sig[0, 1] < 0.5 else 0.05
    out = actor(x2, sig2, cond, 0, identity=ident, heads=True)
    assert torch.equal(out.text_logits, base.text_logits)
    assert torch.equal(out.velocity[:, 0], base.velocity[:, 0])
    assert (out.velocity[:, 2] - base.velocity[:, 2]).abs().max() > 1e-4


def stream_tokens(actor, cond, k, n_tok, kinds=None, drafts=None, temperature=0.0):
    """The tokens TokenStream draws for chunks 0..k-1, and the ChunkTokens of each."""
    cache = actor.new_cache()
    ts = TokenStream(actor, cache, seed=3, temperature=temperature)
    outs = []
    for i in range(k):
        kk = kinds or [TEXT, AUDIO] * (n_tok // 2)
        outs.append(ts.chunk(i, slice_cond(cond, i), kk[:n_tok], None if drafts is None else drafts[i]))
    return outs


@torch.no_grad()
@pytest.mark.parametrize("drafts", ["none", "right"])
def test_generated_tokens_equal_a_full_sequence_recompute(actor, drafts):
    k, n = 5, 4                                   # past the window: the token cache's ring is reused
    x, sig, cond, ident = make_inputs(k, n_tok=n, seed=1)
    outs = stream_tokens(actor, cond, k, n, temperature=0.7)
    if drafts == "right":                         # drafts that are the tokens themselves: one forward a chunk
        again = stream_tokens(actor, cond, k, n, drafts=[o.tokens[:n].tolist() for o in outs], temperature=0.7)
        assert [o.tokens.tolist() for o in again] == [o.tokens.tolist() for o in outs]
        assert all(o.forwards == 1 for o in again)
        assert sum(o.forwards for o in outs) > k   # random weights rarely repeat a wrong draft
    inputs = torch.stack([o.inputs for o in outs])[None]                          # [1, k, T]
    full_cond = ChunkCond(cond.speech, cond.hidden, cond.hidden_frames, cond.hidden_mask, inputs)
    full = actor(x, sig, full_cond, 0, identity=ident, heads=True)
    vt, gen, zero = CFG.thinker.text_vocab, torch.Generator().manual_seed(3), torch.zeros(1)
    for i, o in enumerate(outs):
        assert o.inputs[0].item() == (actor.tokens.bos if i == 0 else outs[i - 1].tokens[n - 1].item())
        assert torch.equal(o.inputs[1:n], o.tokens[:n - 1])        # each slot reads the token drawn before it
        assert (o.tokens[n:] == -1).all() and (o.inputs[n:] == actor.tokens.pad).all()
        u = torch.rand(n, generator=gen)
        for s in range(n):     # the same draw from the recompute's logits, with the same number, gives the token
            logits = full.text_logits[0, i, s] if s % 2 == 0 else full.audio_logits[0, i, s]
            want = int(draw_token(logits.float(), zero, 0.7, 0.8, float(u[s]))) + (vt if s % 2 else 0)
            assert o.tokens[s].item() == want


@torch.no_grad()
def test_greedy_tokens_are_the_recompute_argmax(actor):
    k, n = 3, 4
    x, sig, cond, ident = make_inputs(k, n_tok=n, seed=2)
    outs = stream_tokens(actor, cond, k, n, temperature=0.0)
    inputs = torch.stack([o.inputs for o in outs])[None]
    full = actor(x, sig, ChunkCond(cond.speech, cond.hidden, cond.hidden_frames, cond.hidden_mask, inputs), 0,
                 identity=ident, heads=True)
    vt = CFG.thinker.text_vocab
    for i, o in enumerate(outs):
        for s in range(n):
            want = (full.text_logits[0, i, s].argmax() if s % 2 == 0 else full.audio_logits[0, i, s].argmax() + vt)
            assert o.tokens[s].item() == want.item()


@torch.no_grad()
def test_streaming_pass_with_token_slots_equals_full_recompute(actor):
    k = CFG.window + 3
    x, sig, cond, ident = make_inputs(k, seed=4)
    full = actor(x, sig, cond, 0, identity=ident, heads=True)
    cache = actor.new_cache()
    actor.prefill_identity(cache, ident)
    outs = [actor(x[:, i:i + 1], sig[:, i:i + 1], slice_cond(cond, i), i, cache=cache, write_chunks=1, heads=True)
            for i in range(k)]
    assert torch.allclose(torch.cat([o.velocity for o in outs], 1), full.velocity, atol=1e-4, rtol=1e-4)
    assert torch.allclose(torch.cat([o.text_logits for o in outs], 1), full.text_logits, atol=1e-4, rtol=1e-4)
    # two chunks in one pass, after a full cache (no mask-free spans with token slots: the masks still hold)
    cache = actor.new_cache()
    actor.prefill_identity(cache, ident)
    for i in range(4):
        actor(x[:, i:i + 1], sig[:, i:i + 1], slice_cond(cond, i), i, cache=cache, write_chunks=1)
    two = actor(x[:, 4:6], sig[:, 4:6], slice_cond(cond, 4, 2), 4, cache=cache).velocity
    assert torch.allclose(two, full.velocity[:, 4:6], atol=1e-4, rtol=1e-4)


@pytest.mark.engine
def test_overfits_a_few_chunks_tokens_and_latents():
    torch.manual_seed(0)
    actor = Actor(CFG).train()
    k, n = 3, 6
    x0, _, cond, ident = make_inputs(k, n_tok=n, seed=5)
    g = torch.Generator().manual_seed(0)
    targets = torch.randint(0, CFG.thinker.text_vocab + CFG.thinker.audio_vocab, (1, k, n), generator=g)
    audio = targets >= CFG.thinker.text_vocab
    inputs = torch.cat([torch.full((1, 1), actor.tokens.bos), targets.flatten(1)[:, :-1]], 1).view(1, k, n)
    cond.tokens = torch.cat([inputs, torch.full((1, k, T - n), actor.tokens.pad)], 2)
    noise = torch.randn(x0.shape, generator=g)
    sigma = torch.full((1, k), 0.5)
    opt = torch.optim.AdamW(actor.parameters(), lr=3e-3)
    vt = CFG.thinker.text_vocab

    def losses():
        out = actor(add_noise(x0, noise, sigma), sigma, cond, 0, identity=ident, heads=True)
        mse = (out.velocity - velocity_target(x0, noise)).pow(2).mean()
        tl = torch.where(audio, -100, targets)
        al = torch.where(audio, targets - vt, -100)
        ce = (F.cross_entropy(out.text_logits[:, :, :n].flatten(0, 2), tl.flatten(), ignore_index=-100)
              + F.cross_entropy(out.audio_logits[:, :, :n].flatten(0, 2), al.flatten(), ignore_index=-100))
        return mse, ce, out

    mse0, ce0, _ = losses()
    for _ in range(150):
        mse, ce, _ = losses()
        opt.zero_grad()
        (mse + ce).backward()
        opt.step()
    mse, ce, out = losses()
    assert mse < 0.1 * mse0 and ce < 0.05 * ce0
    pred = torch.where(audio, out.audio_logits[:, :, :n].argmax(-1) + vt, out.text_logits[:, :, :n].argmax(-1))
    assert torch.equal(pred, targets)


def test_training_recipe_adds_the_token_loss(tmp_path):
    import json

    from engine_core.train.actor import ActorTrainOptions, train_actor
    from tests.test_train_actor import write_clip_dataset

    data = write_clip_dataset(tmp_path / "data")
    opt = ActorTrainOptions(steps=60, batch=2, lr=3e-3, warmup=5, log_every=5, save_every=1000, hidden_dropout=0.0)
    res = train_actor(data, tmp_path / "run", ModelConfig.from_dict(CFG.to_dict()), options=opt, progress=False)
    rows = [json.loads(x) for x in (tmp_path / "run" / "loss.jsonl").read_text().splitlines()]
    assert res["done"] and all("token_ce" in r and "mse" in r for r in rows)
    assert rows[-1]["token_ce"] < 0.3 * rows[0]["token_ce"]          # the words' tokens are learnt beside the video


@pytest.mark.gpu
@torch.no_grad()
def test_on_cuda_graphed_token_stream_equals_eager():
    """The token stream's forwards replayed from a CUDA graph (fused regions) draw the eager stream's tokens, and a
    streaming pass with the token slots on CUDA equals its CPU recompute."""
    torch.manual_seed(0)
    actor = Actor(CFG).eval().cuda()
    k, n = 5, 4
    x, sig, cond, ident = make_inputs(k, n_tok=n, seed=6)
    cond = cond.to("cuda")
    actor.cuda_graphs, actor.fuse = False, False
    ref = stream_tokens(actor, cond, k, n, temperature=0.0)
    actor.cuda_graphs, actor.fuse = True, None
    got = stream_tokens(actor, cond, k, n, temperature=0.0)
    assert [o.tokens.tolist() for o in got] == [o.tokens.tolist() for o in ref]
    h_ref = TokenStream(actor, actor.new_cache()).forward(0, ref[0].inputs, slice_cond(cond, 0))
    actor.cuda_graphs, actor.fuse = False, False
    h_eager = TokenStream(actor, actor.new_cache()).forward(0, ref[0].inputs, slice_cond(cond, 0))
    assert torch.allclose(h_ref, h_eager, atol=2e-3, rtol=2e-3)
