"""glm4voice Thinker: a tiny random GLM checkpoint with GLM-4-Voice's vocabulary layout, saved to a temp dir
and loaded back through `Glm4VoiceThinker.from_pretrained` (the real-checkpoint path); prompt format,
audio-id mapping, 13:26 interleave, stop token, ChatGLM -> native conversion (numerically)."""

from __future__ import annotations

from contextlib import contextmanager

import json

import pytest
import torch
import torch.nn.functional as F

import numpy as np

from engine_core.errors import (BackendUnavailableError, CheckpointError, ConfigError, ContextOverflowError,
                                TextError)
from engine_core.thinker.base import SAMPLES_PER_FRAME, VOICE_PLACEHOLDER, Conversation, Turn
from engine_core.thinker.glm4voice import BLOCK_SCHEDULE, Glm4VoiceThinker, paper_config
from engine_core.thinker.glm4voice_convert import chatglm_config_to_native, convert_chatglm_state_dict
from engine_core.thinker.glm4voice_format import (AUDIO_PER_BLOCK, SPECIAL_TOKENS, TEXT_PER_BLOCK, Glm4VoiceVocab,
                                                  InterleaveState, audio_string, fit_prompt, format_prompt)
from engine_core.thinker.registry import load_thinker

N_AUDIO = 64
CORPUS = ["the quick brown fox jumps over the lazy dog", "hello world, how are you today?",
          "a museum guide talks about paintings and history", "numbers 1 2 3 and letters a b c"] * 5


def _tiny_cfg(vocab_size: int):
    from transformers import GlmConfig

    return GlmConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=512,
                     attention_bias=True, tie_word_embeddings=False, pad_token_id=None, eos_token_id=None,
                     rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5})


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A tiny GlmForCausalLM + tokenizer (text BPE, specials, <|audio_0..63|>) saved like a real checkpoint."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GlmForCausalLM, PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tk.add_special_tokens(list(SPECIAL_TOKENS))
    tk.add_special_tokens([f"<|audio_{k}|>" for k in range(N_AUDIO)])
    vocab_size = tk.get_vocab_size() + 8                   # padded, like the real 168,960
    d = tmp_path_factory.mktemp("glm4voice_tiny")
    PreTrainedTokenizerFast(tokenizer_object=tk).save_pretrained(d)
    torch.manual_seed(0)
    GlmForCausalLM(_tiny_cfg(vocab_size)).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def thinker(ckpt):
    return Glm4VoiceThinker.from_pretrained(ckpt, dtype=torch.float32, allow_silent_audio=True, temperature=1.0,
                                            top_p=1.0, max_new_tokens=200)


def test_prompt_matches_published_format():
    text = format_prompt("What is the weather like?")
    assert text == ("<|system|>\nUser will provide you with a text instruction. Do it step by step. First, think "
                    "about the instruction and respond in a interleaved manner, with 13 text token followed by 26 "
                    "audio tokens.<|user|>\nWhat is the weather like?<|assistant|>streaming_transcription\n")
    voice = audio_string([5, 0, 16383])
    assert voice == "<|begin_of_audio|><|audio_5|><|audio_0|><|audio_16383|><|end_of_audio|>"
    spoken = format_prompt(voice)
    assert spoken.startswith("<|system|>\nUser will provide you with a speech instruction.")
    assert spoken.endswith(f"<|user|>\n{voice}<|assistant|>streaming_transcription\n")


def test_roundtrip_vocab_and_audio_ids(thinker, ckpt):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ckpt)
    v = thinker.vocab
    assert v.audio_offset == tok.convert_tokens_to_ids("<|audio_0|>") and v.num_audio == N_AUDIO
    assert v.stop_id == tok.convert_tokens_to_ids("<|user|>")
    for k in (0, 1, 17, N_AUDIO - 1):
        tid = tok.convert_tokens_to_ids(f"<|audio_{k}|>")
        assert v.audio_id(tid) == k and v.token_id(k) == tid
    with pytest.raises(ValueError):
        v.audio_id(v.stop_id)
    # The prompt tokenises special tokens as single ids and carries the [gMASK]<sop> prefix.
    ids = thinker.prompt_ids(format_prompt(audio_string([3, 4])))
    assert ids[:2] == [tok.convert_tokens_to_ids("[gMASK]"), tok.convert_tokens_to_ids("<sop>")]
    assert ids.count(v.begin_audio_id) == 1 and ids.count(v.end_audio_id) == 1
    i = ids.index(v.begin_audio_id)
    assert [v.audio_id(t) for t in ids[i + 1:i + 3]] == [3, 4]
    # Loaded weights are the saved weights (same code path as a real checkpoint).
    from transformers import GlmForCausalLM

    ref = GlmForCausalLM.from_pretrained(ckpt, dtype=torch.float32)
    x = torch.tensor([ids])
    assert torch.allclose(ref(x).logits, thinker.model(x).logits, atol=1e-5)


def _check_grammar(kinds: list[str]) -> None:
    """Runs of <= 13 text then exactly 26 audio; after a short text run only audio follows."""
    i, text_done = 0, False
    while i < len(kinds):
        n_text = 0
        while i < len(kinds) and kinds[i] == "text":
            assert not text_done, "text after the text was finished"
            n_text += 1
            i += 1
        assert n_text <= TEXT_PER_BLOCK
        n_audio = 0
        while i < len(kinds) and kinds[i] == "audio":
            n_audio += 1
            i += 1
        if n_text < TEXT_PER_BLOCK:
            text_done = True
        if i < len(kinds):
            assert n_audio == AUDIO_PER_BLOCK or text_done


def test_generation_enforces_13_26_interleave(thinker):
    for seed in range(3):
        thinker.seed = seed
        out = list(thinker.generate(thinker.prompt_ids(format_prompt("hello")), max_new_tokens=120))
        kinds = [k for _, k, _ in out]
        assert 0 < len(out) <= 120 and "audio" in kinds
        _check_grammar(kinds)
        for t, k, h in out:
            assert thinker.vocab.is_audio(t) == (k == "audio") and h.shape == (thinker.hidden_size,)
            assert t < thinker.vocab.audio_offset + thinker.vocab.num_audio
            if k == "text":
                assert t not in thinker.vocab.special_ids


def test_stop_token_ends_reply_after_first_block(ckpt):
    """With <|user|> the top logit everywhere (text next), the grammar still forces 13 text + 26 audio first."""
    th = Glm4VoiceThinker.from_pretrained(ckpt, dtype=torch.float32, allow_silent_audio=True, temperature=0.0)
    stop = th.vocab.stop_id

    def favour_stop(module, inputs, out):       # prefers <|user|>, then any text token, then audio
        out = out.clone()
        out[..., : th.vocab.audio_offset] += 50.0
        out[..., stop] += 100.0
        return out

    th.model.lm_head.register_forward_hook(favour_stop)
    ids = th.prompt_ids(format_prompt("hi"))
    from transformers import DynamicCache

    from engine_core.thinker.glm4voice_decode import decode_step

    logits, _ = decode_step(th.model, torch.tensor([ids]), DynamicCache(), torch.arange(len(ids)))
    assert int(logits.argmax()) == th.vocab.stop_id          # the model really wants to stop at once
    out = list(th.generate(ids))
    assert [k for _, k, _ in out] == ["text"] * TEXT_PER_BLOCK + ["audio"] * AUDIO_PER_BLOCK
    # the <|user|> that ended it had its forward launched before the host read it: taken back, the cache holds the
    # prompt and the reply only, and says so
    decoder, = th._fast_free
    assert decoder.length == len(ids) + len(out) and decoder.known == ids + [t for t, _, _ in out]


def test_full_text_blocks_keep_13_text_tokens_before_the_audio():
    """A model that prefers audio everywhere ends its text at the first token; with full_text_blocks (the random-
    weight benchmarks' setting) every text block still has its 13 tokens, as a trained model's reply does."""
    cfg = _tiny_cfg(vocab_size=600)
    kinds = {}
    for full in (False, True):
        th = Glm4VoiceThinker.from_config(cfg, dtype=torch.float32, allow_silent_audio=True, temperature=0.0,
                                          full_text_blocks=full)

        def favour_audio(module, inputs, out, th=th):
            out = out.clone()
            out[..., th.vocab.audio_offset: th.vocab.audio_offset + th.vocab.num_audio] += 50.0
            return out
        th.model.lm_head.register_forward_hook(favour_audio)
        kinds[full] = [k for _, k, _ in th.generate(th.prompt_ids("hi"), max_new_tokens=80)]
        _check_grammar(kinds[full])
    assert kinds[False] == ["audio"] * 80
    block = ["text"] * TEXT_PER_BLOCK + ["audio"] * AUDIO_PER_BLOCK
    assert kinds[True] == (block * 3)[:80]
    v = Glm4VoiceVocab.synthetic(vocab_size=600, audio_offset=300, num_audio=100)
    full = v.masks(full_text_blocks=True)
    assert full["text_first"][310] == float("-inf") and full["text"][310] == float("-inf")
    assert full["text"][v.stop_id] == 0 and full["audio"][310] == 0 and v.masks()["text"][310] == 0


def test_interleave_state_machine():
    v = Glm4VoiceVocab.synthetic(vocab_size=600, audio_offset=300, num_audio=100)
    v.special_ids = {190, 191}
    v.stop_id = 191
    s = InterleaveState()
    assert s.mask_key() == "text_first"
    for _ in range(TEXT_PER_BLOCK):
        assert s.advance(5, v) == "text"
    assert s.mask_key() == "audio"
    with pytest.raises(ValueError):
        s.advance(5, v)
    for _ in range(AUDIO_PER_BLOCK):
        s.advance(310, v)
    assert s.mask_key() == "text" and s.blocks == 1
    s.advance(5, v)
    s.advance(310, v)                                        # audio in a text slot: text finished
    assert s.text_done and s.mask_key() == "audio_tail"
    assert s.advance(191, v) == "stop" and s.stopped
    masks = v.masks()
    assert masks["text_first"][191] == float("-inf") and masks["text"][191] == 0
    assert masks["audio"][5] == float("-inf") and masks["audio"][350] == 0 and masks["audio"][450] == float("-inf")


@contextmanager
def never_stopping(thinker):
    """The random tiny model's <|user|> made impossible, so a reply runs as long as a test needs whatever the random
    draws (and the library versions that shape the random weights) are."""
    def no_stop(module, inputs, out):
        out = out.clone()
        out[..., thinker.vocab.stop_id] = -1e9
        return out
    handle = thinker.model.lm_head.register_forward_hook(no_stop)
    try:
        yield thinker
    finally:
        handle.remove()


def test_reply_segments_on_25hz_clock(thinker):
    thinker.seed = 1
    conv = Conversation("You are a guide.")
    segs = []
    with never_stopping(thinker):
        gen = thinker.reply(conv, "hello world")
        for seg in gen:
            segs.append(seg)
            if len(segs) == 3:
                break
        gen.close()
    assert [s.start_frame for s in segs] == [0, segs[0].num_frames, segs[0].num_frames + segs[1].num_frames]
    assert segs[0].num_frames == 2 * BLOCK_SCHEDULE[0] and segs[1].num_frames == 2 * BLOCK_SCHEDULE[1]
    assert segs[0].num_frames >= 25                  # the first segment holds a whole paper-preset chunk
    for s in segs:
        assert s.audio.shape == (s.num_frames * SAMPLES_PER_FRAME,)
        assert s.hidden.shape[1] == 32 and s.hidden.shape[0] == s.hidden_frames.shape[0]
        assert int(s.hidden_frames.min()) >= s.start_frame
        assert int(s.hidden_frames.max()) < s.start_frame + s.num_frames
        assert torch.all(s.hidden_frames[1:] >= s.hidden_frames[:-1])
    assert [t.role for t in conv.turns] == ["user", "assistant"]


def test_the_gate_is_asked_before_every_token_and_stops_the_reply_at_once(thinker):
    thinker.seed = 3
    ids = thinker.prompt_ids(format_prompt("hello"))
    asked = []

    def gate() -> bool:
        asked.append(len(asked))
        return len(asked) <= 17                      # the 18th token's forward is refused

    with never_stopping(thinker):
        free = list(thinker.generate(ids, max_new_tokens=60))
        gated = list(thinker.generate(ids, max_new_tokens=60, gate=gate))
    assert len(free) == 60
    assert len(gated) == 17 and len(asked) == 18
    assert [t for t, _, _ in gated] == [t for t, _, _ in free[:17]]       # the same tokens up to the stop
    conv = Conversation("You are a guide.")
    segs = list(thinker.reply(conv, "hello world", gate=lambda: False))
    assert sum(s.hidden.shape[0] for s in segs) <= 1 and [t.role for t in conv.turns] == ["user", "assistant"]


def test_speak_forces_text_verbatim(thinker, ckpt):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ckpt)
    thinker.seed = 2
    line = "hello world, the quick brown fox jumps over the lazy dog"
    forced = tok.encode(line, add_special_tokens=False)
    out = list(thinker.generate(thinker.prompt_ids(format_prompt("x")), forced_text=forced, max_new_tokens=150))
    text_ids = [t for t, k, _ in out if k == "text"]
    assert text_ids == forced
    _check_grammar([k for _, k, _ in out])


def _history(n_pairs: int) -> list[Turn]:
    turns = []
    for i in range(n_pairs):
        turns += [Turn("user", f"question {i}: {CORPUS[i % 4]}"),
                  Turn("assistant", f"answer {i}: {CORPUS[(i + 1) % 4]}")]
    return turns


def test_fit_prompt_drops_the_oldest_turns():
    history = _history(30)
    words = lambda p: len(p.split())                    # noqa: E731 - any monotone token count
    full = format_prompt("newest question", history, "You are a guide.")
    assert words(full) > 300
    fitted = fit_prompt("newest question", history, "You are a guide.", words, 300)
    assert words(fitted) <= 300 and fitted.startswith("<|system|>\n" + "User will provide you with a text")
    assert "You are a guide." in fitted and fitted.endswith("<|user|>\nnewest question<|assistant|>"
                                                            "streaming_transcription\n")
    assert "question 29:" in fitted and "question 0:" not in fitted
    kept = fitted.split("<|user|>\n", 1)[1]
    assert kept.startswith("question ")                    # the kept history starts with a user turn
    short = fit_prompt("newest question", history[:2], "", words, 300)
    assert short == format_prompt("newest question", history[:2])            # what fits is kept whole
    with pytest.raises(ContextOverflowError):
        fit_prompt("word " * 400, history, "", words, 300)


def test_long_conversation_fits_the_context_and_a_too_long_turn_is_refused(ckpt):
    """A static cache of 384 tokens: the whole history would overflow it (before: a ValueError every turn)."""
    th = Glm4VoiceThinker.from_pretrained(ckpt, dtype=torch.float32, allow_silent_audio=True, temperature=1.0,
                                          top_p=1.0, max_new_tokens=64, max_context=384)
    assert (th.context_tokens, th.max_prompt_tokens) == (384, 320)
    conv = Conversation("You are a guide.", turns=_history(12), max_turns=100)
    assert len(th.prompt_ids(format_prompt("hello world", conv.turns, conv.system_prompt))) > 384
    for turn in range(3):                               # several turns in a row keep working
        ids = th.prompt_for(conv, "hello world")
        assert len(ids) <= 320
        text = th.tok.decode(ids)
        assert "question 0:" not in text and (turn > 0 or "answer 11:" in text)    # oldest out, newest in
        assert "You are a guide." in text and text.endswith("<|user|>\nhello world<|assistant|>"
                                                             "streaming_transcription\n")
        segs = list(th.reply(conv, "hello world"))
        assert segs and sum(s.hidden.shape[0] for s in segs) <= 384 - len(ids)
        assert conv.turns[-2].text == "hello world"
    n = len(conv.turns)
    with pytest.raises(ContextOverflowError) as info:
        next(th.reply(conv, "the quick brown fox " * 60))
    assert info.value.code == "text_too_long" and len(conv.turns) == n       # nothing recorded
    assert list(th.reply(conv, "hello again"))                               # and the conversation goes on


class FixedSpeechTokens:
    """Stands in for GLM-4-Voice's Whisper-VQ speech tokenizer (foreign code, not on this machine)."""

    def tokenize(self, pcm, sample_rate):
        return [3, 7, 7, 1]


def _hear_through_feed(th, conv) -> list[str]:
    """Run one `hear` turn through the engine's real SpeechFeed; returns the transcripts it published."""
    from engine_core.engine.feed import SpeechFeed

    feed = SpeechFeed(th, conv)
    transcripts, done = [], False
    try:
        feed.submit(1, "hear", (np.zeros(16000, np.int16), 16000))
        for _ in range(200):
            items, notes = feed.take(10, 1.0)
            transcripts += notes.transcripts
            assert not notes.errors, notes.errors
            done = done or any(it.last for it in items) or 1 in notes.late_ends
            if done and not feed.pending():
                break
    finally:
        feed.close()
    assert done
    return transcripts


@pytest.mark.parametrize("asr", [None, "where is the museum"])
def test_hear_publishes_text_never_token_strings(ckpt, asr):
    th = Glm4VoiceThinker.from_pretrained(ckpt, dtype=torch.float32, allow_silent_audio=True, temperature=1.0,
                                          top_p=1.0, max_new_tokens=60)
    th.speech_tokenizer = FixedSpeechTokens()
    th.asr = (lambda pcm, sr: asr) if asr else None
    shown = asr or VOICE_PLACEHOLDER
    tr = th.hear(np.zeros(1600, np.int16), 16000)
    assert tr.text == shown and type(str(tr.text)) is str and "<|" not in str(tr.text)
    assert tr.content == audio_string([3, 7, 7, 1])
    prompts: list[list[int]] = []
    generate = th.generate
    th.generate = lambda ids, *a, **k: (prompts.append(list(ids)), generate(ids, *a, **k))[1]
    conv = Conversation("You are a guide.")
    transcripts = _hear_through_feed(th, conv)
    assert transcripts == [shown]                                  # what a client is shown
    assert conv.turns[0] == Turn("user", shown)                   # what the history keeps
    # ... while the model itself read the user's speech tokens under the speech instruction
    v = th.vocab
    ids = prompts[0]
    i = ids.index(v.begin_audio_id)
    assert ids[i:i + 6] == [v.begin_audio_id, *(v.token_id(k) for k in (3, 7, 7, 1)), v.end_audio_id]
    assert "speech instruction" in th.tok.decode(ids)


def test_missing_decoder_refused_without_flag(ckpt, tmp_path):
    with pytest.raises(BackendUnavailableError):
        Glm4VoiceThinker.from_pretrained(ckpt, dtype=torch.float32)
    with pytest.raises(BackendUnavailableError):
        Glm4VoiceThinker.from_pretrained(ckpt, dtype=torch.float32, decoder_dir=tmp_path)
    th = Glm4VoiceThinker.from_pretrained(ckpt, dtype=torch.float32, allow_silent_audio=True)
    with pytest.raises(BackendUnavailableError):
        th.hear(torch.zeros(1600).numpy(), 16000)
    with pytest.raises(TextError):
        next(th.reply(Conversation("p"), "  "))


def test_bad_checkpoints(tmp_path, ckpt):
    with pytest.raises(CheckpointError):
        Glm4VoiceThinker.from_pretrained(tmp_path, allow_silent_audio=True)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "chatglm"}))
    with pytest.raises(CheckpointError):        # a ChatGLM config without its keys and tensors
        Glm4VoiceThinker.from_pretrained(tmp_path, allow_silent_audio=True)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(CheckpointError, match="chatglm"):
        Glm4VoiceThinker.from_pretrained(tmp_path, allow_silent_audio=True)
    # A text-only tokenizer (no GLM-4-Voice tokens) is refused.
    from transformers import AutoTokenizer

    class NoAudio:
        unk_token_id, unk_token, all_special_ids = None, None, []

        def convert_tokens_to_ids(self, s):
            return AutoTokenizer.from_pretrained(ckpt).convert_tokens_to_ids(s) if "audio" not in s else None
    with pytest.raises(CheckpointError):
        Glm4VoiceVocab.from_tokenizer(NoAudio(), 1000)


def test_registry_and_from_config():
    cfg = _tiny_cfg(vocab_size=600)
    th = load_thinker("glm4voice", cfg=cfg, dtype=torch.float32, allow_silent_audio=True, temperature=0.0)
    assert isinstance(th, Glm4VoiceThinker) and th.vocab.audio_offset == 300 and th.vocab.num_audio == 150
    kinds = [k for _, k, _ in th.generate(th.prompt_ids("hi"), max_new_tokens=45)]
    _check_grammar(kinds)
    with pytest.raises(BackendUnavailableError):
        load_thinker("glm4voice", cfg=cfg, dtype=torch.float32)
    with pytest.raises(ConfigError):
        load_thinker("nope")
    p = paper_config()
    assert (p.hidden_size, p.num_hidden_layers, p.num_attention_heads, p.num_key_value_heads,
            p.intermediate_size, p.vocab_size) == (4096, 40, 32, 2, 13696, 168960)


# ---------------------------------------------------------------- ChatGLM -> native conversion

def _rms(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def _chatglm_reference(sd, c, ids):
    """ChatGLM's forward written from its published equations (fused QKV, interleaved half-RoPE, SwiGLU)."""
    nh, g, hd, eps = c["num_attention_heads"], c["multi_query_group_num"], c["kv_channels"], c["layernorm_epsilon"]
    T = ids.shape[0]
    x = sd["transformer.embedding.word_embeddings.weight"][ids]
    rot = hd // 2
    inv = 1.0 / (10000.0 * c["rope_ratio"]) ** (torch.arange(0, rot, 2).float() / rot)
    ang = torch.arange(T).float()[:, None] * inv[None]                  # [T, rot/2]
    cos, sin = ang.cos()[:, None, :], ang.sin()[:, None, :]

    def rope(t):                                                         # [T, heads, hd]
        r, p = t[..., :rot], t[..., rot:]
        r = r.reshape(T, t.shape[1], rot // 2, 2)
        a, b = r[..., 0], r[..., 1]
        r = torch.stack([a * cos - b * sin, b * cos + a * sin], -1).flatten(-2)
        return torch.cat([r, p], -1)

    for n in range(c["num_layers"]):
        p = f"transformer.encoder.layers.{n}."
        h = _rms(x, sd[p + "input_layernorm.weight"], eps)
        qkv = h @ sd[p + "self_attention.query_key_value.weight"].T + sd[p + "self_attention.query_key_value.bias"]
        q, k, v = qkv.split([nh * hd, g * hd, g * hd], -1)
        q, k, v = rope(q.view(T, nh, hd)), rope(k.view(T, g, hd)), v.view(T, g, hd)
        k, v = k.repeat_interleave(nh // g, 1), v.repeat_interleave(nh // g, 1)
        att = torch.einsum("qhd,khd->hqk", q, k) / hd ** 0.5
        att = att.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf")).softmax(-1)
        o = torch.einsum("hqk,khd->qhd", att, v).reshape(T, nh * hd)
        x = x + o @ sd[p + "self_attention.dense.weight"].T
        h = _rms(x, sd[p + "post_attention_layernorm.weight"], eps)
        gate, up = (h @ sd[p + "mlp.dense_h_to_4h.weight"].T).chunk(2, -1)
        x = x + (F.silu(gate) * up) @ sd[p + "mlp.dense_4h_to_h.weight"].T
    x = _rms(x, sd["transformer.encoder.final_layernorm.weight"], eps)
    return x @ sd["transformer.output_layer.weight"].T


def test_chatglm_conversion_matches_reference_logits():
    from transformers import GlmForCausalLM

    c = {"padded_vocab_size": 97, "hidden_size": 32, "ffn_hidden_size": 48, "num_layers": 2,
         "num_attention_heads": 4, "multi_query_attention": True, "multi_query_group_num": 2, "kv_channels": 8,
         "layernorm_epsilon": 1e-5, "seq_length": 64, "add_qkv_bias": True, "rope_ratio": 3.0, "rmsnorm": True}
    H, nh, g, hd, F_ = 32, 4, 2, 8, 48
    gen = torch.Generator().manual_seed(0)

    def r(*s):
        return torch.randn(*s, generator=gen) * 0.2

    sd = {"transformer.embedding.word_embeddings.weight": r(97, H),
          "transformer.encoder.final_layernorm.weight": 1 + r(H), "transformer.output_layer.weight": r(97, H),
          "transformer.rotary_pos_emb.inv_freq": torch.zeros(2)}
    for n in range(2):
        p = f"transformer.encoder.layers.{n}."
        sd.update({p + "input_layernorm.weight": 1 + r(H), p + "post_attention_layernorm.weight": 1 + r(H),
                   p + "self_attention.query_key_value.weight": r((nh + 2 * g) * hd, H),
                   p + "self_attention.query_key_value.bias": r((nh + 2 * g) * hd),
                   p + "self_attention.dense.weight": r(H, nh * hd),
                   p + "mlp.dense_h_to_4h.weight": r(2 * F_, H), p + "mlp.dense_4h_to_h.weight": r(H, F_)})
    cfg = chatglm_config_to_native(c)
    native = convert_chatglm_state_dict(sd, cfg)
    assert native["model.layers.1.self_attn.k_proj.weight"].shape == (g * hd, H)
    assert torch.equal(native["model.layers.0.self_attn.v_proj.bias"],
                       sd["transformer.encoder.layers.0.self_attention.query_key_value.bias"][(nh + g) * hd:])
    model = GlmForCausalLM(cfg).float().eval()
    model.load_state_dict(native, strict=True)
    ids = torch.tensor([5, 17, 3, 88, 42, 9, 0, 61, 33, 7])
    with torch.no_grad():
        ours = model(ids[None]).logits[0]
    ref = _chatglm_reference(sd, c, ids)
    assert torch.allclose(ours, ref, atol=1e-4), (ours - ref).abs().max()
    bad = dict(sd)
    bad["transformer.encoder.layers.0.self_attention.query_key_value.weight"] = r(10, H)
    with pytest.raises(CheckpointError):
        convert_chatglm_state_dict(bad, cfg)
    with pytest.raises(CheckpointError):
        convert_chatglm_state_dict({"transformer.something.else": r(2)}, cfg)


def test_draws_follow_the_renormalised_nucleus_and_never_a_masked_token():
    """Over many draws the tokens come as often as the nucleus's renormalised probabilities say; none outside it
    (the smallest set of the most likely holding top_p of the mass) and none masked ever comes."""
    from engine_core.thinker.glm4voice_decode import draw_token

    probs = torch.tensor([0.30, 0.25, 0.20, 0.10, 0.08, 0.04, 0.02, 0.01])
    logits, mask = probs.log(), torch.zeros(8)
    mask[1] = float("-inf")                  # the second most likely masked: 0.30, 0.20, 0.10 | 0.08, ...
    n = 4000
    g = torch.Generator().manual_seed(0)
    draws = [int(draw_token(logits, mask, 1.0, 0.75, float(torch.rand((), generator=g)))) for _ in range(n)]
    counts = torch.bincount(torch.tensor(draws), minlength=8).float()
    p = probs.clone()
    p[1] = 0
    p /= p.sum()                             # 0.40, 0, 0.267, 0.133 | 0.107, ...: the nucleus of 0.75
    nucleus = torch.tensor([1.0, 0, 1, 1, 0, 0, 0, 0])
    want = p * nucleus / (p * nucleus).sum()
    assert counts[nucleus == 0].sum() == 0
    sd = (want * (1 - want) / n).sqrt()
    assert ((counts / n - want).abs() <= 4 * sd + 1e-9).all(), (counts / n, want)


def test_a_draw_is_the_inverse_cdf_of_its_uniform_number():
    """u picks the first token whose cumulative nucleus mass passes u times the nucleus's mass, equal probabilities
    in id order; the vocabulary's size does not change which token a u gives; temperature 0 is the argmax."""
    from engine_core.thinker.glm4voice_decode import draw_token

    flat, no_mask = torch.zeros(4), torch.zeros(4)
    assert [int(draw_token(flat, no_mask, 1.0, 1.0, u)) for u in (0.0, 0.24, 0.26, 0.74, 0.76, 0.999)] == \
        [0, 0, 1, 2, 3, 3]
    assert [int(draw_token(flat, no_mask, 1.0, 0.5, u)) for u in (0.0, 0.49, 0.51, 0.999)] == [0, 0, 1, 1]
    vocab = 168_960
    mask = torch.zeros(vocab)
    mask[1000:2000] = float("-inf")
    for seed in range(10):
        g = torch.Generator().manual_seed(seed)
        logits = torch.randn(vocab, generator=g) * (4.0 if seed % 2 else 0.05)   # peaked, and flat
        u = float(torch.rand((), generator=g))
        t = int(draw_token(logits, mask, 0.7, 0.8, u))
        assert not 1000 <= t < 2000
        probs = torch.softmax((logits + mask) / 0.7, -1)
        order = torch.sort(probs, descending=True, stable=True).indices
        cum = torch.cumsum(probs[order], 0)
        kept = int((cum - probs[order] < 0.8).sum())
        assert t == int(order[min(int((cum <= u * cum[kept - 1]).sum()), kept - 1)])
    logits = torch.zeros(vocab)
    logits[7] = 5.0
    assert int(draw_token(logits, mask, 0.0, 0.8, 0.3)) == 7

def test_replies_decoded_as_one_batch_are_the_replies_decoded_alone(ckpt):
    """With `batch_slots` every reply in flight decodes in a row of one batched step (glm_batch.py): three replies
    generated at once from three threads are token for token what the per-reply decoder gives (greedy: a seeded draw
    could flip on the last bit of a batched product's rounding; tests/test_glm_batch.py compares the numbers)."""
    import threading

    kw = dict(dtype=torch.float32, allow_silent_audio=True, temperature=0.0, max_new_tokens=60)
    alone = Glm4VoiceThinker.from_pretrained(ckpt, **kw)
    batched = Glm4VoiceThinker.from_pretrained(ckpt, batch_slots=4, **kw)
    batched.warm(reply=False)
    prompts = [format_prompt(p) for p in ("hello", "tell me about the museum", "numbers please")]

    def tokens(th, p):
        return [(t, k) for t, k, _ in th.generate(th.prompt_ids(p))]

    want = [tokens(alone, p) for p in prompts]
    got: list = [None] * 3
    threads = [threading.Thread(target=lambda i=i: got.__setitem__(i, tokens(batched, prompts[i]))) for i in range(3)]
    [t.start() for t in threads]
    [t.join(120) for t in threads]
    assert got == want and all(want)
    assert batched._batch.batcher.stats.rows > batched._batch.batcher.stats.steps
