"""Weight-only int8 for the Thinker's decode step (engine_core/thinker/weight_int8.py, glm_fast.int8_step_weights):
the rounding, the product, a decoder's steps on int8 against the model's own weights, the Thinker's option."""

import pytest
import torch
import torch.nn.functional as F

from engine_core.config import ModelConfig
from engine_core.errors import ConfigError
from engine_core.thinker import weight_int8
from engine_core.thinker.glm_fast import GlmFastDecoder, int8_step_weights
from engine_core.thinker.weight_int8 import Int8Weight

from test_glm_fast import _tiny_glm


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def test_each_row_is_rounded_to_127_levels_of_its_own_maximum():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 50, generator=g) * torch.tensor([1e-3, 0.02, 1.0, 30.0, 0.5, 0.0])[:, None]   # a zero row
    q = weight_int8.quantise(w)
    assert q.q.dtype == torch.int8 and q.q.shape == w.shape and q.scale.shape == (6,) and q.bias is None
    assert int(q.q.abs().max()) == 127 and bool(torch.isfinite(q.scale).all())
    assert (q.q[:5].abs().amax(1) == 127).all()                   # each row's largest entry takes the top level
    error = (weight_int8.dequantised(q) - w).abs()
    assert (error <= q.scale[:, None] / 2 + 1e-9).all()           # within half a step, the step its row's own
    assert float(error[5].max()) == 0.0 and int(q.q[5].abs().max()) == 0


def test_the_product_is_the_dequantised_weights_and_close_to_the_original():
    g = torch.Generator().manual_seed(1)
    w, b = torch.randn(300, 200, generator=g) * 0.02, torch.randn(300, generator=g)
    x = torch.randn(2, 3, 200, generator=g)
    q = weight_int8.quantise(w, b)
    y = weight_int8.linear(x, q, compiled=False)
    torch.testing.assert_close(y, F.linear(x, weight_int8.dequantised(q), b), rtol=1e-5, atol=1e-5)
    exact = F.linear(x, w, b)
    assert 0 < _rel(y, exact) < 0.01 and y.shape == exact.shape


def test_a_decoder_steps_on_int8_and_prefills_on_the_models_own_weights():
    """Steps on the int8 weights come close to the model's own (and are not them); the prefill is untouched, so the
    cache a prompt leaves is exact."""
    model = _tiny_glm(1)
    int8 = int8_step_weights(model)
    assert len(int8.layers) == 3 and all(isinstance(w, Int8Weight) for layer in int8.layers for w in layer)
    assert int8.layers[0].qkv.bias is not None and int8.layers[0].qkv.q.shape == (16 * (4 + 2 * 2), 64)
    ids = torch.randint(0, 97, (1, 16), generator=torch.Generator().manual_seed(3))
    exact = GlmFastDecoder(model, max_len=32, use_cuda_graph=False)
    fast = GlmFastDecoder(model, max_len=32, use_cuda_graph=False, step_weights=int8)
    assert fast.step_weights is int8 and exact.step_weights is exact.weights
    for dec in (exact, fast):
        dec.out = [dec.prefill(ids[:, :6])]
    torch.testing.assert_close(fast.out[0][0], exact.out[0][0], rtol=0, atol=0)
    torch.testing.assert_close(fast.cache, exact.cache, rtol=0, atol=0)
    for t in range(6, 16):
        for dec in (exact, fast):
            dec.out.append(dec.step(ids[:, t:t + 1]))
    for (a, ha), (b, hb) in zip(fast.out[1:], exact.out[1:]):
        assert 0 < _rel(a, b) < 0.05 and 0 < _rel(ha, hb) < 0.05


def test_the_thinker_makes_its_int8_weights_once_for_all_its_decoders():
    from engine_core.thinker.glm4voice import Glm4VoiceThinker, paper_config

    cfg = paper_config(vocab_size=1200, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
                       pad_token_id=0, eos_token_id=1, bos_token_id=2)
    kw = dict(device="cpu", dtype=torch.float32, allow_silent_audio=True, max_context=256, temperature=0.0,
              max_new_tokens=30, seed=3)
    thinker = Glm4VoiceThinker.from_config(cfg, step_weights="int8", **kw)
    a, b = thinker._take_fast(), thinker._take_fast()             # two replies in flight
    assert a is not b and a.step_weights is b.step_weights is thinker._int8
    thinker._give_back(a), thinker._give_back(b)
    prompt = thinker.prompt_ids("<|user|>\nhello")
    replies = {"int8": [t for t, _, _ in thinker.generate(prompt)],
               "bf16": [t for t, _, _ in Glm4VoiceThinker.from_config(cfg, **kw).generate(prompt)]}
    assert len(replies["int8"]) == len(replies["bf16"]) == 30
    assert replies["int8"][:1] == replies["bf16"][:1]             # the first token comes from the exact prefill
    with pytest.raises(ValueError, match="step_weights"):
        Glm4VoiceThinker.from_config(cfg, step_weights="fp4", **kw)


def test_the_config_and_the_engine_refuse_an_unknown_kind_of_step_weights():
    from engine_core.engine import Engine

    cfg = ModelConfig.from_name("paper")
    assert cfg.thinker.step_weights == "bf16"
    cfg.thinker.step_weights = "fp4"
    with pytest.raises(ConfigError, match="step_weights"):
        cfg.validate()
    with pytest.raises(ConfigError, match="step_weights"):
        Engine.load("tiny", thinker_weights="fp4")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda_the_compiled_one_row_product_and_the_graphed_step_match_the_eager_int8():
    g = torch.Generator(device="cuda").manual_seed(0)
    w = torch.randn(27392, 4096, device="cuda", dtype=torch.bfloat16, generator=g) * 0.02
    x = torch.randn(1, 1, 4096, device="cuda", dtype=torch.bfloat16, generator=g)
    q = weight_int8.quantise(w)
    eager, compiled = weight_int8.linear(x, q, compiled=False), weight_int8.linear(x, q, compiled=True)
    assert _rel(compiled, eager) < 0.01 and _rel(compiled, F.linear(x, w)) < 0.02

    model = _tiny_glm().cuda().to(torch.bfloat16)
    int8 = int8_step_weights(model)
    ids = torch.randint(0, 97, (1, 20), device="cuda")
    plain = GlmFastDecoder(model, max_len=32, use_cuda_graph=False, fuse=False, step_weights=int8)
    graph = GlmFastDecoder(model, max_len=32, use_cuda_graph=True, span_block=8, step_weights=int8)
    assert graph.compiled_int8
    plain.compiled_int8 = False
    for dec in (plain, graph):
        dec.prefill(ids[:, :5])
    for t in range(5, 20):
        x, hx = plain.step(ids[:, t:t + 1])
        y, hy = graph.step(ids[:, t:t + 1])
        assert _rel(y, x) < 0.02 and _rel(hy, hx) < 0.02
