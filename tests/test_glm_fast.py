"""The fast GLM decoder (static cache, graph-capturable step) computes what transformers' GlmForCausalLM does."""

import pytest
import torch
from transformers import GlmConfig, GlmForCausalLM

from engine_core.thinker.glm_fast import GlmFastDecoder


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
    model = _tiny_glm().cuda()
    ids = torch.randint(0, 97, (1, 10), device="cuda")
    eager = GlmFastDecoder(model, max_len=32, use_cuda_graph=False)
    graph = GlmFastDecoder(model, max_len=32, use_cuda_graph=True)
    eager.prefill(ids[:, :5])
    graph.prefill(ids[:, :5])
    for t in range(5, 10):
        a, _ = eager.step(ids[:, t:t + 1])
        b, _ = graph.step(ids[:, t:t + 1])
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_glm4voice_generation_is_the_same_through_both_decoders():
    """The Thinker's reply tokens and hidden states: fast (static cache) path == transformers reference."""
    from engine_core.thinker.glm4voice import Glm4VoiceThinker, paper_config

    cfg = paper_config(vocab_size=1200, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
                       pad_token_id=0, eos_token_id=1, bos_token_id=2)
    runs = {}
    for impl in ("fast", "hf"):
        thinker = Glm4VoiceThinker.from_config(cfg, device="cpu", dtype=torch.float32, allow_silent_audio=True,
                                               decode_impl=impl, max_context=256, temperature=0.0,
                                               max_new_tokens=45, seed=3)
        prompt = thinker.prompt_ids("<|system|>\nhello<|user|>\nhi<|assistant|>streaming_transcription\n")
        runs[impl] = list(thinker.generate(prompt))
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
