"""`--glm4voice DIR`: the three published parts found by their files, the published ChatGLM-format language model
read in memory (its logits against ChatGLM's equations), and a Thinker built from small random parts that hears
through the speech tokenizer and speaks through the speech decoder."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from engine_core.errors import BackendUnavailableError
from engine_core.thinker.base import SAMPLES_PER_FRAME, Conversation
from engine_core.thinker.glm4voice import Glm4VoiceThinker
from engine_core.thinker.glm4voice_files import find_parts, load_chatglm
from tests.test_glm4voice_codecs import write_decoder, write_tokenizer
from tests.test_thinker_glm4voice import _chatglm_reference, ckpt  # noqa: F401  (a fixture)

C = {"model_type": "chatglm", "padded_vocab_size": 97, "hidden_size": 32, "ffn_hidden_size": 48, "num_layers": 2,
     "num_attention_heads": 4, "multi_query_attention": True, "multi_query_group_num": 2, "kv_channels": 8,
     "layernorm_epsilon": 1e-5, "seq_length": 64, "add_qkv_bias": True, "rope_ratio": 3.0, "rmsnorm": True}


def write_chatglm(d, tokenizer_from) -> dict[str, torch.Tensor]:
    """A tiny ChatGLM checkpoint in the published layout: config.json, two safetensors shards, a tokenizer."""
    from safetensors.torch import save_file

    d.mkdir(parents=True)
    H, nh, g, hd, ff = 32, 4, 2, 8, 48
    gen = torch.Generator().manual_seed(1)
    r = lambda *s: torch.randn(*s, generator=gen) * 0.2                                     # noqa: E731
    sd = {"transformer.embedding.word_embeddings.weight": r(97, H),
          "transformer.encoder.final_layernorm.weight": 1 + r(H), "transformer.output_layer.weight": r(97, H),
          "transformer.rotary_pos_emb.inv_freq": torch.zeros(2)}
    for n in range(2):
        p = f"transformer.encoder.layers.{n}."
        sd |= {p + "input_layernorm.weight": 1 + r(H), p + "post_attention_layernorm.weight": 1 + r(H),
               p + "self_attention.query_key_value.weight": r((nh + 2 * g) * hd, H),
               p + "self_attention.query_key_value.bias": r((nh + 2 * g) * hd),
               p + "self_attention.dense.weight": r(H, nh * hd),
               p + "mlp.dense_h_to_4h.weight": r(2 * ff, H), p + "mlp.dense_4h_to_h.weight": r(H, ff)}
    keys = sorted(sd)
    save_file({k: sd[k] for k in keys[:5]}, str(d / "model-00001-of-00002.safetensors"))
    save_file({k: sd[k] for k in keys[5:]}, str(d / "model-00002-of-00002.safetensors"))
    (d / "config.json").write_text(json.dumps(C))
    (d / "modeling_chatglm.py").write_text("raise SystemExit('remote code must never run')\n")
    shutil.copy(tokenizer_from / "tokenizer.json", d / "tokenizer.json")
    return sd


def test_chatglm_directory_is_read_in_memory_into_the_native_classes(tmp_path, ckpt):    # noqa: F811
    sd = write_chatglm(tmp_path / "glm-4-voice-9b", ckpt)
    model, tok = load_chatglm(tmp_path / "glm-4-voice-9b", dtype=torch.float32)
    ids = torch.tensor([5, 17, 3, 88, 42, 9, 0, 61, 33, 7])
    with torch.no_grad():
        ours = model(ids[None]).logits[0]
    assert torch.allclose(ours, _chatglm_reference(sd, C, ids), atol=1e-4)
    assert tok.encode("hello", add_special_tokens=False)


def test_find_parts_by_their_files(tmp_path, ckpt):                                        # noqa: F811
    write_chatglm(tmp_path / "glm-4-voice-9b", ckpt)
    write_tokenizer(tmp_path / "glm-4-voice-tokenizer")
    write_decoder(tmp_path / "glm-4-voice-decoder")
    parts = find_parts(tmp_path)
    assert (parts.lm.name, parts.speech_tokenizer.name, parts.decoder.name) == (
        "glm-4-voice-9b", "glm-4-voice-tokenizer", "glm-4-voice-decoder")
    assert find_parts(tmp_path / "glm-4-voice-9b").decoder is None          # the model's own directory
    with pytest.raises(BackendUnavailableError):
        find_parts(tmp_path / "glm-4-voice-decoder")


@torch.no_grad()
def test_thinker_hears_through_the_tokenizer_and_speaks_through_the_decoder(tmp_path, ckpt):   # noqa: F811
    write_tokenizer(tmp_path / "tok")
    write_decoder(tmp_path / "dec")
    th = Glm4VoiceThinker.from_pretrained(ckpt, dtype=torch.float32, decoder_dir=tmp_path / "dec",
                                          speech_tokenizer_dir=tmp_path / "tok", temperature=1.0, top_p=1.0,
                                          max_new_tokens=60, seed=3)
    voice = (0.2 * np.random.default_rng(0).standard_normal(22050)).astype(np.float32)
    heard = th.hear(voice, 22050)
    codes = th.speech_tokenizer.tokenize(voice, 22050)
    assert len(codes) == 13 and heard.text == "(voice)"
    assert heard.content == "<|begin_of_audio|>" + "".join(f"<|audio_{c}|>" for c in codes) + "<|end_of_audio|>"
    segs = list(th.reply(Conversation("be brief"), heard))
    audio = np.concatenate([s.audio for s in segs])
    n_audio = sum(int(s.token_audio.sum()) for s in segs)
    assert n_audio > 0 and np.abs(audio).max() > 0 and np.isfinite(audio).all()
    # the speech of n tokens, aligned to the frames: int(n * 6.89) mel frames of 256 samples, in whole frames
    assert audio.size == -(-th.speech_decoder.flow.c.mel_frames(n_audio) * 256 // SAMPLES_PER_FRAME) * SAMPLES_PER_FRAME
    assert all(s.token_ids is not None and s.token_ids.shape[0] == s.hidden.shape[0] for s in segs)
    # with the Actor speaking instead, the Thinker decodes nothing: silence of the tokens' length
    th.decode_audio = False
    quiet = list(th.reply(Conversation("be brief"), heard))
    assert all(not s.audio.any() for s in quiet)


@pytest.mark.slow
@torch.no_grad()
def test_voice_preset_drives_the_default_actor_with_glm4voice_speech_alone(tmp_path, ckpt):   # noqa: F811
    """`voice`: GLM-4-Voice from its files (here small random ones: a native tiny GLM, the tokenizer, the decoder)
    speaking through the shipped default Actor, which is given the speech features and no Thinker state."""
    from engine_core.engine import Engine

    shutil.copytree(ckpt, tmp_path / "glm-4-voice-9b")
    write_tokenizer(tmp_path / "glm-4-voice-tokenizer")
    write_decoder(tmp_path / "glm-4-voice-decoder")
    eng = Engine.load("voice", glm4voice=str(tmp_path))
    assert eng.config.thinker.speech_only and eng.config.actor.width == 256          # the default's Actor
    assert eng.thinker.hidden_size != eng.config.thinker.hidden_size                   # GLM's states are not read
    s = eng.open_session()
    try:
        eng.thinker.max_new_tokens = 45
        s.chat("hello")
        seen, audio = [], []
        for _ in range(12):
            seen += [bool(c.hidden_mask.any()) for c in s.denoiser.in_flight]
            chunk = s.next_chunk()
            if chunk.utt:
                audio.append(chunk.audio)
        assert seen and not any(seen)                   # no chunk carried a Thinker state
        assert audio and np.abs(np.concatenate(audio)).max() > 0      # GLM-4-Voice's decoded speech is played
    finally:
        s.close()


def test_chatglm_tiktoken_tokenizer_is_rebuilt_once_and_cached(tmp_path, monkeypatch):
    """The published 9B's tokenizer is tiktoken ranks (tokenizer.model) + added tokens (tokenizer_config.json): it is
    rebuilt as a tokenizers file in the user cache, with the special tokens at their published ids."""
    pytest.importorskip("tiktoken")
    import base64

    from engine_core.thinker.glm4voice_files import chatglm_tokenizer

    monkeypatch.setenv("XSTREAMER_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "glm-4-voice-9b"
    src.mkdir()
    ranks = [bytes([b]) for b in range(256)] + [b"he", b"ll", b"hell", b"hello", b" w", b"or", b" wor", b" world"]
    (src / "tokenizer.model").write_text("".join(f"{base64.b64encode(t).decode()} {i}\n" for i, t in enumerate(ranks)))
    specials = ["<|endoftext|>", "[gMASK]", "<sop>", "<|system|>", "<|user|>", "<|assistant|>",
                "<|begin_of_audio|>", "<|end_of_audio|>"] + [f"<|audio_{k}|>" for k in range(4)]
    added = {str(len(ranks) + i): {"content": t, "special": True} for i, t in enumerate(specials)}
    (src / "tokenizer_config.json").write_text(json.dumps({"added_tokens_decoder": added}))
    tok = chatglm_tokenizer(src)
    ids = tok.encode("hello world", add_special_tokens=False)
    assert ids == [ranks.index(b"hello"), ranks.index(b" world")] and tok.decode(ids) == "hello world"
    assert tok.convert_tokens_to_ids("<|audio_3|>") == len(ranks) + len(specials) - 1
    assert tok.encode("<|user|>hello", add_special_tokens=False)[0] == len(ranks) + 4
    cached = list((tmp_path / "cache" / "glm4voice-tokenizer").glob("*/tokenizer.json"))
    assert len(cached) == 1
    import engine_core.thinker.glm4voice_convert as conv

    def no_conversion(*a):
        raise AssertionError("converted twice")
    monkeypatch.setattr(conv, "convert_chatglm_tokenizer", no_conversion)
    assert chatglm_tokenizer(src).encode("hello world", add_special_tokens=False) == ids   # from the cache
