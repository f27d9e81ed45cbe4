"""The fast GLM decoder (static cache, graph-capturable step) computes what transformers' GlmForCausalLM does."""

import pytest
import torch
from transformers import GlmConfig, GlmForCausalLM

from engine_core.thinker.glm_fast import EAGER, GlmFastDecoder

pytestmark = pytest.mark.engine


def _tiny_glm(seed: int = 0) -> GlmForCausalLM:
    torch.manual_seed(seed)
    cfg = GlmConfig(vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=128,
                    attention_bias=True, partial_rotary_factor=0.5, pad_token_id=0,
                    eos_token_id=1, bos_token_id=2)
    model = GlmForCausalLM(cfg).eval()
    with torch.no_grad():   # random (not zero) biases and norms, so every parameter matters
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.normal_(0.0 if name.endswith("bias") else 1.0, 0.2)
    return model


@pytest.mark.parametrize("seed", [0, 1])
def test_prefill_and_steps_match_transformers(seed):
    model = _tiny_glm(seed)
    gen = torch.Generator().manual_seed(seed + 10)
    ids = torch.randint(0, 97, (1, 12), generator=gen)
    with torch.no_grad():
        ref = model(ids, output_hidden_states=True)
    fast = GlmFastDecoder(model, max_len=32, use_cuda_graph=False)
    logits, hidden = fast.prefill(ids[:, :7])
    torch.testing.assert_close(logits, ref.logits[:, 6], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(hidden, ref.hidden_states[-1][:, :7], rtol=1e-4, atol=1e-4)
    for t in range(7, 12):   # one token at a time through the static cache
        logits, h = fast.step(ids[:, t:t + 1])
        torch.testing.assert_close(logits, ref.logits[:, t], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(h, ref.hidden_states[-1][:, t], rtol=1e-4, atol=1e-4)
    assert fast.length == 12


def test_fused_regions_over_attention_spans_compute_what_transformers_does():
    """The step's pointwise regions compiled by inductor (here its CPU code) and attention over spans of 4 slots,
    across five span boundaries: the same logits and hidden states as the HF model."""
    model = _tiny_glm(1)
    ids = torch.randint(0, 97, (1, 22), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = model(ids, output_hidden_states=True)
    fast = GlmFastDecoder(model, max_len=32, use_cuda_graph=False, span_block=4, fuse=True)
    assert fast.spans == [4, 8, 12, 16, 20, 24, 28, 32] and fast.span(6) == 8 and fast.span(8) == 8
    assert fast.step_ops is not EAGER
    logits, _ = fast.prefill(ids[:, :6])
    torch.testing.assert_close(logits, ref.logits[:, 5], rtol=1e-4, atol=1e-4)
    for t in range(6, 22):
        logits, h = fast.step(ids[:, t:t + 1])
        torch.testing.assert_close(logits, ref.logits[:, t], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(h, ref.hidden_states[-1][:, t], rtol=1e-4, atol=1e-4)
    assert GlmFastDecoder(model, max_len=32, use_cuda_graph=False).step_ops is EAGER   # CPU: eager by default
    assert GlmFastDecoder(model, max_len=32, span_block=None).spans == [32]


def test_padded_prefill_pieces_compute_what_transformers_does():
    """A prefill cut into pieces of at most 8 tokens, each padded to a multiple of 4 and attending to the cache up
    to the next multiple of 16 slots past its padding (the shapes the CUDA graphs replay): the padding's cache slots
    do not leak into later tokens, and a piece whose padding would run past the cache goes unpadded."""
    model = _tiny_glm(3)
    ids = torch.randint(0, 97, (1, 30), generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        ref = model(ids, output_hidden_states=True)
    fast = GlmFastDecoder(model, max_len=30, use_cuda_graph=False, span_block=8, pad_prefill=True,
                          prefill_block=4, prefill_max=8, prefill_span_block=16)
    assert fast.prefill_widths == [4, 8]
    assert fast.prefill_shapes == [(4, 16), (8, 16), (4, 30), (8, 30)]
    assert not GlmFastDecoder(model, max_len=30, use_cuda_graph=False).pad_prefill   # off without graphs
    widths = []
    hidden_of = fast._hidden
    fast._hidden = lambda i, p, n, span, *a, **k: widths.append((n, span)) or hidden_of(i, p, n, span, *a, **k)
    cuts = [(0, 5), (5, 6), (6, 17), (17, 20), (20, 23), (23, 28)]     # prefills of 5, 1, 11, 3, 3, 5 ids
    for a, b in cuts:
        logits, hidden = fast.prefill(ids[:, a:b])
        torch.testing.assert_close(logits, ref.logits[:, b - 1], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(hidden, ref.hidden_states[-1][:, a:b], rtol=1e-4, atol=1e-4)
        if b == 17:
            logits, h = fast.step(ids[:, 17:18])     # a step right after the padding's slots, then a prefill over them
            torch.testing.assert_close(logits, ref.logits[:, 17], rtol=1e-4, atol=1e-4)
            fast.truncate(17)
    # (width, span): 5 -> 8; 1 -> 4; 11 -> 8 + (3 -> 4, past 16 slots); the step (1, its span of 8 slots: 18 -> 24);
    # 3 -> 4; 3 -> 4; 5 at 23: 8 would pass the cache's 30 slots
    assert widths == [(8, 16), (4, 16), (8, 16), (4, 30), (1, 24), (4, 30), (4, 30), (5, 30)]
    for t in range(28, 30):
        logits, h = fast.step(ids[:, t:t + 1])
        torch.testing.assert_close(logits, ref.logits[:, t], rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(h, ref.hidden_states[-1][:, t], rtol=1e-4, atol=1e-4)


def test_resume_prefills_only_what_the_cache_does_not_hold():
    """A conversation's next prompt starts with its last one: `resume` keeps that prefix (and any generated
    tokens the new prompt repeats), computes the rest, and gives the logits a fresh prefill gives."""
    model = _tiny_glm(2)
    gen = torch.Generator().manual_seed(7)
    first = torch.randint(0, 97, (12,), generator=gen).tolist()
    fast = GlmFastDecoder(model, max_len=64, use_cuda_graph=False, span_block=16)
    fast.resume(first)
    assert fast.reused == 0 and fast.known == first
    for t in (5, 6, 7):                                   # the reply's first tokens
        fast.step(torch.tensor([[t]]), token=t)
    second = first + [5, 6] + torch.randint(0, 97, (9,), generator=gen).tolist()
    logits, hidden = fast.resume(second)
    assert fast.reused == 14 and hidden.shape[1] == len(second) - 14 and fast.length == len(second)
    fresh = GlmFastDecoder(model, max_len=64, use_cuda_graph=False)
    ref, _ = fresh.prefill(torch.tensor([second]))
    torch.testing.assert_close(logits, ref, rtol=1e-4, atol=1e-4)
    fast.resume(second)                                   # the same prompt again: all but its last token kept
    assert fast.reused == len(second) - 1
    fast.prefill(torch.tensor([[1, 2]]))                  # ids not told as ints: the cache's contents unknown
    assert fast.known is None and fast.cached_prefix(second) == 0
    fast.resume(second)
    assert fast.reused == 0 and fast.known == second


def test_reset_reuses_the_cache_and_overflow_is_refused():
    model = _tiny_glm()
    fast = GlmFastDecoder(model, max_len=8, use_cuda_graph=False)
    ids = torch.randint(0, 97, (1, 6))
    first, _ = fast.prefill(ids)
    fast.reset()
    again, _ = fast.prefill(ids)
    torch.testing.assert_close(first, again)
    with pytest.raises(ValueError, match="static cache"):
        fast.prefill(torch.randint(0, 97, (1, 3)))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_step_matches_eager():
    """The graphed steps (fused regions, a graph per span of 8 slots, all captured at the first prefill) and the
    graphed prefills (pieces padded to 4 or 8) against the plain eager step and prefill over the whole cache."""
    model = _tiny_glm().cuda()
    ids = torch.randint(0, 97, (1, 20), device="cuda")
    eager = GlmFastDecoder(model, max_len=32, use_cuda_graph=False, span_block=None, fuse=False)
    graph = GlmFastDecoder(model, max_len=32, use_cuda_graph=True, span_block=8, prefill_block=4, prefill_max=8,
                           prefill_span_block=16)
    assert graph.pad_prefill and graph.step_ops is not EAGER and eager.step_ops is EAGER
    for a, b in ((0, 5), (5, 9), (9, 20)):   # prefills from graphs (width, span): (8, 16), (4, 16), (8, 32) + (4, 32)
        x, hx = eager.prefill(ids[:, a:b])
        y, hy = graph.prefill(ids[:, a:b])
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(hx, hy, rtol=1e-4, atol=1e-4)
        eager.truncate(a + 2)                             # steps from the prefill's third token on
        graph.truncate(a + 2)
        for t in range(a + 2, b):
            x, hx = eager.step(ids[:, t:t + 1])
            y, hy = graph.step(ids[:, t:t + 1])
            torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(hx, hy, rtol=1e-4, atol=1e-4)
    assert sorted(graph._graphs) == [8, 16, 24, 32] and sorted(graph._prefill_graphs) == [(4, 16), (4, 32), (8, 16),
                                                                                          (8, 32)]


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[
    pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")])])
def test_glm4voice_generation_is_the_same_through_both_decoders(device):
    """The Thinker's reply tokens and hidden states: fast (static cache) path == transformers reference. On CUDA
    the fast path replays its graphs, and each token is drawn on the device and fed to the next forward before the
    host reads it (glm4voice_decode)."""
    from engine_core.thinker.glm4voice import Glm4VoiceThinker, paper_config

    cfg = paper_config(vocab_size=1200, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
                       pad_token_id=0, eos_token_id=1, bos_token_id=2)
    runs = {}
    for impl in ("fast", "hf"):
        thinker = Glm4VoiceThinker.from_config(cfg, device=device, dtype=torch.float32, allow_silent_audio=True,
                                               decode_impl=impl, max_context=256, temperature=0.0,
                                               max_new_tokens=45, seed=3)
        prompt = thinker.prompt_ids("<|system|>\nhello<|user|>\nhi<|assistant|>streaming_transcription\n")
        runs[impl] = list(thinker.generate(prompt))
        if impl == "fast":      # a second reply, to the next prompt: its cached prefix reused, the same tokens
            again = thinker.prompt_ids("<|system|>\nhello<|user|>\nhi<|assistant|>streaming_transcription\n"
                                       "hello<|user|>\nand then?<|assistant|>streaming_transcription\n")
            decoder, = thinker._fast_free
            runs["fast2"] = list(thinker.generate(again))
            assert decoder.reused == len(prompt) and thinker._fast_free == [decoder]
            runs["hf2"] = list(Glm4VoiceThinker.from_config(
                cfg, device=device, dtype=torch.float32, allow_silent_audio=True, decode_impl="hf", max_context=256,
                temperature=0.0, max_new_tokens=45, seed=3).generate(again))
    assert [t for t, _, _ in runs["fast2"]] == [t for t, _, _ in runs["hf2"]]
    assert len(runs["fast"]) == len(runs["hf"]) > 13
    assert [t for t, _, _ in runs["fast"]] == [t for t, _, _ in runs["hf"]]
    assert [k for _, k, _ in runs["fast"]] == [k for _, k, _ in runs["hf"]]
    for (_, _, a), (_, _, b) in zip(runs["fast"], runs["hf"]):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_thinker_thread_never_works_on_the_default_stream_the_actor_uses():
    from engine_core.engine.feed import SpeechFeed
    from engine_core.thinker.base import Conversation
    from engine_core.thinker.toy import ToyThinker

    seen = []

    class OnCuda(ToyThinker):
        device = torch.device("cuda")

        def speak(self, text, gate=None):
            seen.append(torch.cuda.current_stream())
            return super().speak(text, gate)

    feed = SpeechFeed(OnCuda(32, 64), Conversation(""))
    try:
        feed.submit(1, "speak", "hello there")
        items, _ = feed.take(1, timeout=30.0)
        assert items and seen and seen[0] != torch.cuda.default_stream()
    finally:
        feed.close()


def test_two_replies_at_once_each_have_a_decoder_of_their_own():
    """Sessions share the Thinker: a second generation while one runs gets its own static cache (the same tokens
    as it would alone), and both decoders go back to the pool for the next turns."""
    from engine_core.thinker.glm4voice import Glm4VoiceThinker, paper_config

    cfg = paper_config(vocab_size=1200, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
                       pad_token_id=0, eos_token_id=1, bos_token_id=2)
    thinker = Glm4VoiceThinker.from_config(cfg, device="cpu", dtype=torch.float32, allow_silent_audio=True,
                                           max_context=256, temperature=0.0, max_new_tokens=30, seed=3)
    a_prompt, b_prompt = thinker.prompt_ids("<|user|>\nfirst"), thinker.prompt_ids("<|user|>\nsecond one")
    alone = [t for t, _, _ in thinker.generate(b_prompt)]
    a, b = thinker.generate(a_prompt), thinker.generate(b_prompt)
    next(a)
    got_b = [t for t, _, _ in b]                      # runs to its end while `a` holds its decoder
    assert got_b == alone and len(thinker._fast_free) == 1
    list(a)
    assert len(thinker._fast_free) == 2
    a.close()


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[
    pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")])])
def test_a_warm_up_reply_leaves_the_replies_after_it_as_they_were(device):
    """`warm(reply=True)` generates a reply through a pooled decoder and throws it away (on CUDA it is the default);
    a seeded reply after it is the one a Thinker never warmed gives."""
    from engine_core.thinker.glm4voice import WARM_UP_PROMPT, Glm4VoiceThinker, paper_config

    cfg = paper_config(vocab_size=1200, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
                       pad_token_id=0, eos_token_id=1, bos_token_id=2)

    def thinker() -> Glm4VoiceThinker:
        return Glm4VoiceThinker.from_config(cfg, device=device, dtype=torch.float32, allow_silent_audio=True,
                                            max_context=256, temperature=1.0, top_p=0.9, max_new_tokens=40, seed=5)
    warmed, cold = thinker(), thinker()
    warmed.warm(reply=True)
    decoder, = warmed._fast_free
    warm_ids = warmed.prompt_ids(WARM_UP_PROMPT)
    assert decoder.known[:len(warm_ids)] == warm_ids and decoder.length > len(warm_ids)   # a prompt and a reply
    prompt = warmed.prompt_ids("<|user|>\nwhat is on today?<|assistant|>streaming_transcription\n")
    assert [t for t, _, _ in warmed.generate(prompt)] == [t for t, _, _ in cold.generate(prompt)]
