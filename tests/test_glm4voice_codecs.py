"""GLM-4-Voice's speech tokenizer and speech decoder from small random checkpoints written in the published formats
(config keys, tensor names and shapes as published: glm-4-voice-tokenizer's config.json + model.safetensors +
preprocessor_config.json; glm-4-voice-decoder's HyperPyYAML config.yaml + flow.pt + hift.pt), against independent
reference forwards where the format allows (transformers' Whisper encoder layers; espnet's relative-shift trick)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine_core.codecs.glm4voice_decoder import Glm4VoiceDecoder
from engine_core.codecs.glm4voice_flow import RelBlockAttention, block_mask, rel_positions
from engine_core.codecs.glm4voice_tokenizer import Glm4VoiceSpeechTokenizer
from engine_core.errors import BackendUnavailableError, CheckpointError

# ------------------------------------------------------------------------------------------------ tokenizer
TOK = dict(d_model=32, encoder_attention_heads=4, encoder_ffn_dim=64, quantize_position=2, pooling_position=2,
           quantize_vocab_size=64, quantize_causal_block_size=8, max_source_positions=1500, num_mel_bins=128)


def write_tokenizer(d: Path, seed: int = 0) -> dict[str, torch.Tensor]:
    """A small WhisperVQEncoder checkpoint in the published layout (the published config.json's keys, its values
    shrunk where they shape the tensors)."""
    from safetensors.torch import save_file
    from transformers import WhisperFeatureExtractor

    d.mkdir(parents=True, exist_ok=True)
    cfg = {"architectures": ["WhisperVQEncoder"], "model_type": "whisper", "activation_function": "gelu",
           "activation_dropout": 0.0, "attention_dropout": 0.0, "d_model": TOK["d_model"], "decoder_layers": 32,
           "encoder_attention_heads": TOK["encoder_attention_heads"], "encoder_causal_attention": False,
           "encoder_causal_convolution": True, "encoder_ffn_dim": TOK["encoder_ffn_dim"], "encoder_layers": 32,
           "max_source_positions": 1500, "num_mel_bins": 128, "pooling_kernel_size": 4,
           "pooling_position": TOK["pooling_position"], "pooling_type": "avg",
           "quantize_causal_block_size": TOK["quantize_causal_block_size"], "quantize_causal_encoder": False,
           "quantize_commit_coefficient": 0.25, "quantize_ema_decay": 0.99, "quantize_encoder_only": True,
           "quantize_loss_scale": 10.0, "quantize_position": TOK["quantize_position"],
           "quantize_restart_interval": 100, "quantize_vocab_size": TOK["quantize_vocab_size"],
           "scale_embedding": False, "skip_language_detection": True, "torch_dtype": "float32", "vocab_size": 51866}
    (d / "config.json").write_text(json.dumps(cfg))
    WhisperFeatureExtractor(feature_size=128).save_pretrained(str(d))
    g = torch.Generator().manual_seed(seed)
    D, V, ff = TOK["d_model"], TOK["quantize_vocab_size"], TOK["encoder_ffn_dim"]
    r = lambda *s: torch.randn(*s, generator=g) * 0.1                                       # noqa: E731
    t = {"conv1.weight": r(D, 128, 3), "conv1.bias": r(D), "conv2.weight": r(D, D, 3), "conv2.bias": r(D),
         "embed_positions.weight": r(1500, D), "embed_positions2.weight": r(375, D), "codebook.weight": r(V, D),
         "ema_count": torch.ones(V), "ema_weight": r(V, D)}
    for i in range(TOK["quantize_position"]):
        p = f"layers.{i}."
        t |= {p + "self_attn.k_proj.weight": r(D, D), p + "self_attn.v_proj.weight": r(D, D),
              p + "self_attn.v_proj.bias": r(D), p + "self_attn.q_proj.weight": r(D, D),
              p + "self_attn.q_proj.bias": r(D), p + "self_attn.out_proj.weight": r(D, D),
              p + "self_attn.out_proj.bias": r(D), p + "self_attn_layer_norm.weight": 1 + r(D),
              p + "self_attn_layer_norm.bias": r(D), p + "fc1.weight": r(ff, D), p + "fc1.bias": r(ff),
              p + "fc2.weight": r(D, ff), p + "fc2.bias": r(D), p + "final_layer_norm.weight": 1 + r(D),
              p + "final_layer_norm.bias": r(D)}
    save_file(t, str(d / "model.safetensors"))
    return t


def reference_tokens(t: dict[str, torch.Tensor], features: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """The published forward, written out: causal convs, transformers' WhisperEncoderLayer, avg-pool, nearest code."""
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoderLayer

    wc = WhisperConfig(d_model=TOK["d_model"], encoder_attention_heads=TOK["encoder_attention_heads"],
                       encoder_ffn_dim=TOK["encoder_ffn_dim"], activation_function="gelu")
    wc._attn_implementation = "eager"
    x = F.gelu(F.conv1d(F.pad(features, (2, 0)), t["conv1.weight"], t["conv1.bias"]))
    x = F.gelu(F.conv1d(F.pad(x, (2, 0)), t["conv2.weight"], t["conv2.bias"], stride=2)).transpose(1, 2)
    n = x.shape[1]
    x = x + t["embed_positions.weight"][:n]
    keep = valid[:, ::2][:, :n].bool()
    blk = TOK["quantize_causal_block_size"]
    causal = torch.tril(torch.ones(n, n, dtype=torch.bool))
    square = torch.block_diag(*[torch.ones(min(blk, n - s), min(blk, n - s)) for s in range(0, n, blk)]).bool()
    mask = (causal | square)[None] & keep[:, None, :]
    additive = ((1.0 - mask.float()) * torch.finfo(torch.float32).min)[:, None]
    for i in range(TOK["quantize_position"]):
        layer = WhisperEncoderLayer(wc).eval()
        layer.load_state_dict({k[len(f"layers.{i}."):]: v for k, v in t.items() if k.startswith(f"layers.{i}.")})
        out = layer(x, additive)
        x = out[0] if isinstance(out, tuple) else out
    x = F.avg_pool1d(F.pad(x.transpose(1, 2), (0, (-n) % 4)), 4).transpose(1, 2)
    ids = torch.cdist(x[0], t["codebook.weight"]).argmin(dim=1)
    return ids[keep[0, ::4]]


@torch.no_grad()
def test_speech_tokenizer_equals_the_published_forward(tmp_path):
    t = write_tokenizer(tmp_path / "tok")
    tk = Glm4VoiceSpeechTokenizer(tmp_path / "tok")
    g = np.random.default_rng(0)
    pcm = (0.2 * g.standard_normal(int(1.3 * 16000))).astype(np.float32)
    f = tk.features([pcm], sampling_rate=16000, return_attention_mask=True, return_tensors="pt", padding="longest",
                    pad_to_multiple_of=tk.stride)
    want = reference_tokens(t, f["input_features"], f["attention_mask"])
    got = tk.tokenize(pcm, 16000)
    assert got == want.tolist()
    assert len(got) == math.ceil(1.3 * 12.5)                                   # 12.5 tokens a second
    assert len(tk.tokenize((pcm * 32767).astype(np.int16), 16000)) == len(got)  # int16 in, same count
    # 22,050 Hz in (the engine's rate) is resampled first
    assert abs(len(tk.tokenize(np.zeros(22050 * 2, np.float32), 22050)) - 25) <= 1


def test_speech_tokenizer_refuses_what_is_not_there(tmp_path):
    with pytest.raises(BackendUnavailableError):
        Glm4VoiceSpeechTokenizer(tmp_path)
    t = write_tokenizer(tmp_path / "tok")
    from safetensors.torch import save_file

    save_file({k: v for k, v in t.items() if k != "codebook.weight"}, str(tmp_path / "tok" / "model.safetensors"))
    with pytest.raises(CheckpointError, match="codebook"):
        Glm4VoiceSpeechTokenizer(tmp_path / "tok")


# ------------------------------------------------------------------------------------------------- decoder
DEC_YAML = """# set random seed, so that you may reproduce your result.
__set_seed1: !apply:random.seed [1986]
__set_seed3: !apply:torch.manual_seed [1986]

# fixed params
sample_rate: 22050
spk_embed_dim: 192

flow: !new:cosyvoice.flow.flow.MaskedDiffWithXvec
    input_size: 32
    output_size: 80
    spk_embed_dim: !ref <spk_embed_dim>
    output_type: 'mel'
    vocab_size: 64
    input_frame_rate: 12.5
    only_mask_loss: True
    encoder: !new:cosyvoice.transformer.encoder.BlockConformerEncoder
        output_size: 32
        attention_heads: 4
        linear_units: 48
        num_blocks: 2
        dropout_rate: 0.1
        positional_dropout_rate: 0.1
        attention_dropout_rate: 0.1
        normalize_before: True
        input_layer: 'linear'
        pos_enc_layer_type: 'rel_pos_espnet'
        selfattention_layer_type: 'block_rel_selfattn'
        input_size: 32
        use_cnn_module: False
        macaron_style: False
        block_size: 4
    length_regulator: !new:cosyvoice.flow.length_regulator.InterpolateRegulator
        channels: 80
        sampling_ratios: [1, 1, 1, 1]
    decoder: !new:cosyvoice.flow.flow_matching.ConditionalCFM
        in_channels: 240
        n_spks: 1
        spk_emb_dim: 80
        cfm_params: !new:omegaconf.DictConfig
            content:
                sigma_min: 1e-06
                solver: 'euler'
                t_scheduler: 'cosine'
                training_cfg_rate: 0.2
                inference_cfg_rate: 0.7
                reg_loss_type: 'l1'
        estimator: !new:cosyvoice.flow.decoder.ConditionalDecoder
            in_channels: 320
            out_channels: 80
            channels: [16, 16]
            dropout: 0.0
            attention_head_dim: 8
            n_blocks: 1
            num_mid_blocks: 2
            num_heads: 2
            act_fn: 'gelu'

hift: !new:cosyvoice.hifigan.generator.HiFTGenerator
    in_channels: 80
    base_channels: 16
    nb_harmonics: 8
    sampling_rate: !ref <sample_rate>
    nsf_alpha: 0.1
    nsf_sigma: 0.003
    nsf_voiced_threshold: 10
    upsample_rates: [8, 8]
    upsample_kernel_sizes: [16, 16]
    istft_params:
        n_fft: 16
        hop_len: 4
    resblock_kernel_sizes: [3, 7, 11]
    resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5], [1, 3, 5]]
    source_resblock_kernel_sizes: [7, 11]
    source_resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5]]
    lrelu_slope: 0.1
    audio_limit: 0.99
    f0_predictor: !new:cosyvoice.hifigan.f0_predictor.ConvRNNF0Predictor
        num_class: 1
        in_channels: 80
        cond_channels: 16
"""


def published_flow_shapes(d=32, ff=48, blocks=2, est=16, heads=2, hd=8, mids=2, vocab=64) -> dict[str, tuple]:
    """The flow.pt tensor names and shapes of the published modules (MaskedDiffWithXvec, BlockConformerEncoder,
    InterpolateRegulator, ConditionalDecoder with Matcha's blocks), from the published code's module tree."""
    s: dict[str, tuple] = {"input_embedding.weight": (vocab, d), "spk_embed_affine_layer.weight": (80, 192),
                           "spk_embed_affine_layer.bias": (80,), "encoder.embed.out.0.weight": (d, d),
                           "encoder.embed.out.0.bias": (d,), "encoder.embed.out.1.weight": (d,),
                           "encoder.embed.out.1.bias": (d,), "encoder.after_norm.weight": (d,),
                           "encoder.after_norm.bias": (d,), "encoder_proj.weight": (80, d), "encoder_proj.bias": (80,)}
    for i in range(blocks):
        p = f"encoder.encoders.{i}."
        for n in ("linear_q", "linear_k", "linear_v", "linear_out"):
            s |= {p + f"self_attn.{n}.weight": (d, d), p + f"self_attn.{n}.bias": (d,)}
        s |= {p + "self_attn.linear_pos.weight": (d, d), p + "self_attn.pos_bias_u": (4, d // 4),
              p + "self_attn.pos_bias_v": (4, d // 4), p + "feed_forward.w_1.weight": (ff, d),
              p + "feed_forward.w_1.bias": (ff,), p + "feed_forward.w_2.weight": (d, ff),
              p + "feed_forward.w_2.bias": (d,)}
        for n in ("norm_ff", "norm_mha"):
            s |= {p + f"{n}.weight": (d,), p + f"{n}.bias": (d,)}
    for j in (0, 3, 6, 9):
        s |= {f"length_regulator.model.{j}.weight": (80, 80, 3), f"length_regulator.model.{j}.bias": (80,),
              f"length_regulator.model.{j + 1}.weight": (80,), f"length_regulator.model.{j + 1}.bias": (80,)}
    s |= {"length_regulator.model.12.weight": (80, 80, 1), "length_regulator.model.12.bias": (80,)}
    e = "decoder.estimator."
    s |= {e + "time_mlp.linear_1.weight": (4 * est, 320), e + "time_mlp.linear_1.bias": (4 * est,),
          e + "time_mlp.linear_2.weight": (4 * est, 4 * est), e + "time_mlp.linear_2.bias": (4 * est,),
          e + "final_block.block.0.weight": (est, est, 3), e + "final_block.block.0.bias": (est,),
          e + "final_block.block.1.weight": (est,), e + "final_block.block.1.bias": (est,),
          e + "final_proj.weight": (80, est, 1), e + "final_proj.bias": (80,)}

    def resnet(p, cin, cout):
        return {p + "mlp.1.weight": (cout, 4 * est), p + "mlp.1.bias": (cout,),
                p + "block1.block.0.weight": (cout, cin, 3), p + "block1.block.0.bias": (cout,),
                p + "block1.block.1.weight": (cout,), p + "block1.block.1.bias": (cout,),
                p + "block2.block.0.weight": (cout, cout, 3), p + "block2.block.0.bias": (cout,),
                p + "block2.block.1.weight": (cout,), p + "block2.block.1.bias": (cout,),
                p + "res_conv.weight": (cout, cin, 1), p + "res_conv.bias": (cout,)}

    def transformer(p, c):
        inner = heads * hd
        return {p + "norm1.weight": (c,), p + "norm1.bias": (c,), p + "norm3.weight": (c,), p + "norm3.bias": (c,),
                p + "attn1.to_q.weight": (inner, c), p + "attn1.to_k.weight": (inner, c),
                p + "attn1.to_v.weight": (inner, c), p + "attn1.to_out.0.weight": (c, inner),
                p + "attn1.to_out.0.bias": (c,), p + "ff.net.0.proj.weight": (4 * c, c),
                p + "ff.net.0.proj.bias": (4 * c,), p + "ff.net.2.weight": (c, 4 * c), p + "ff.net.2.bias": (c,)}
    s |= resnet(e + "down_blocks.0.0.", 320, est) | transformer(e + "down_blocks.0.1.0.", est)
    s |= {e + "down_blocks.0.2.conv.weight": (est, est, 3), e + "down_blocks.0.2.conv.bias": (est,)}
    s |= resnet(e + "down_blocks.1.0.", est, est) | transformer(e + "down_blocks.1.1.0.", est)
    s |= {e + "down_blocks.1.2.weight": (est, est, 3), e + "down_blocks.1.2.bias": (est,)}
    for m in range(mids):
        s |= resnet(e + f"mid_blocks.{m}.0.", est, est) | transformer(e + f"mid_blocks.{m}.1.0.", est)
    s |= resnet(e + "up_blocks.0.0.", 2 * est, est) | transformer(e + "up_blocks.0.1.0.", est)
    s |= {e + "up_blocks.0.2.conv.weight": (est, est, 4), e + "up_blocks.0.2.conv.bias": (est,)}
    s |= resnet(e + "up_blocks.1.0.", 2 * est, est) | transformer(e + "up_blocks.1.1.0.", est)
    s |= {e + "up_blocks.1.2.weight": (est, est, 3), e + "up_blocks.1.2.bias": (est,)}
    return s


def published_hift_shapes(bc=16, f0c=16) -> dict[str, tuple]:
    """hift.pt names and shapes (HiFTGenerator with torch.nn.utils.weight_norm: weight_g / weight_v)."""
    def wn(p, w):
        return {p + "weight_g": (w[0], 1, 1), p + "weight_v": w}
    s: dict[str, tuple] = {}
    for i in range(5):
        s |= wn(f"f0_predictor.condnet.{2 * i}.", (f0c, 80 if i == 0 else f0c, 3))
        s[f"f0_predictor.condnet.{2 * i}.bias"] = (f0c,)
    s |= {"f0_predictor.classifier.weight": (1, f0c), "f0_predictor.classifier.bias": (1,),
          "m_source.l_linear.weight": (1, 9), "m_source.l_linear.bias": (1,)}
    s |= wn("conv_pre.", (bc, 80, 7)) | {"conv_pre.bias": (bc,)}
    for i in range(2):
        s |= wn(f"ups.{i}.", (bc // 2 ** i, bc // 2 ** (i + 1), 16)) | {f"ups.{i}.bias": (bc // 2 ** (i + 1),)}
    s |= {"source_downs.0.weight": (bc // 2, 18, 16), "source_downs.0.bias": (bc // 2,),
          "source_downs.1.weight": (bc // 4, 18, 1), "source_downs.1.bias": (bc // 4,)}

    def resblock(p, ch, k):
        out = {}
        for j in range(3):
            out |= wn(p + f"convs1.{j}.", (ch, ch, k)) | {p + f"convs1.{j}.bias": (ch,)}
            out |= wn(p + f"convs2.{j}.", (ch, ch, k)) | {p + f"convs2.{j}.bias": (ch,)}
            out |= {p + f"activations1.{j}.alpha": (ch,), p + f"activations2.{j}.alpha": (ch,)}
        return out
    s |= resblock("source_resblocks.0.", bc // 2, 7) | resblock("source_resblocks.1.", bc // 4, 11)
    for i in range(2):
        for j, k in enumerate((3, 7, 11)):
            s |= resblock(f"resblocks.{3 * i + j}.", bc // 2 ** (i + 1), k)
    s |= wn("conv_post.", (18, bc // 4, 7)) | {"conv_post.bias": (18,)}
    return s


def write_decoder(d: Path, seed: int = 0) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.yaml").write_text(DEC_YAML)
    g = torch.Generator().manual_seed(seed)
    for name, shapes in (("flow.pt", published_flow_shapes()), ("hift.pt", published_hift_shapes())):
        state = {k: torch.randn(*s, generator=g) * 0.1 for k, s in shapes.items()}
        for k in state:
            if k.endswith("alpha") or k.endswith("norm_ff.weight") or k.endswith("norm_mha.weight"):
                state[k] = 1 + state[k]
        torch.save(state, d / name)


@pytest.fixture(scope="module")
def decoder_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("glm4voice") / "glm-4-voice-decoder"
    write_decoder(d)
    return d


@torch.no_grad()
def test_decoder_loads_the_published_layout_and_streams_aligned_speech(decoder_dir):
    dec = Glm4VoiceDecoder(decoder_dir)
    assert dec.flow.c.enc_block_size == 4 and dec.hift.c.base_channels == 16      # read from config.yaml
    blocks = [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13], list(range(20, 40)), [5, 6, 7]]
    s = dec.start_stream()
    outs = [dec.decode(s, b, final) for b, final in zip(blocks, (False, False, True))]
    n = 0
    for b, o, total in zip(blocks, outs, (13, 33, 36)):
        n += o.size
        assert np.isfinite(o).all() and np.abs(o).max() <= 0.99 + 1e-6
        # the audio of n tokens, as soon as they are there: int(n * 6.89) mel frames of 256 samples, less the
        # vocoder's 256 held back until the next block (none after the last)
        want = dec.flow.c.mel_frames(total) * 256 - (0 if total == 36 else 256)
        assert n == want
    # deterministic, and the same tokens in one block give the same length of speech
    s2 = dec.start_stream()
    again = [dec.decode(s2, b, final) for b, final in zip(blocks, (False, False, True))]
    assert all(np.array_equal(a, b) for a, b in zip(outs, again))
    whole = dec.decode(dec.start_stream(), sum(blocks, []), True)
    assert whole.size == n


@torch.no_grad()
def test_decoder_overlap_mode_holds_back_and_cross_fades(decoder_dir):
    dec = Glm4VoiceDecoder(decoder_dir, overlap=True)
    s = dec.start_stream()
    a = dec.decode(s, list(range(13)), False)
    held = dec.flow.c.mel_frames(5)                              # the published 5 tokens' mel
    assert a.size == (dec.flow.c.mel_frames(13) - held) * 256 - 256
    rest = dec.decode(s, list(range(10)), True)
    assert np.isfinite(rest).all() and rest.size > 0


def test_decoder_refuses_files_it_cannot_read(decoder_dir, tmp_path):
    with pytest.raises(BackendUnavailableError):
        Glm4VoiceDecoder(tmp_path)
    bad = tmp_path / "bad"
    write_decoder(bad)
    (bad / "config.yaml").write_text(DEC_YAML.replace("use_cnn_module: False", "use_cnn_module: True"))
    with pytest.raises(CheckpointError, match="use_cnn_module"):
        Glm4VoiceDecoder(bad)
    (bad / "config.yaml").write_text(DEC_YAML)
    state = torch.load(bad / "hift.pt")
    del state["conv_post.weight_g"]
    torch.save(state, bad / "hift.pt")
    with pytest.raises(CheckpointError, match="conv_post"):
        Glm4VoiceDecoder(bad)


@torch.no_grad()
def test_relative_block_attention_equals_espnets_shift_trick():
    torch.manual_seed(0)
    att = RelBlockAttention(heads=2, dim=8, block=3).eval()
    for p in (att.pos_bias_u, att.pos_bias_v):
        p.normal_()
    x = torch.randn(1, 7, 8)
    pos = rel_positions(7, 8, x.device, x.dtype)
    got = att(x, pos, block_mask(7, 3, x.device))
    # the published computation: q, k, v by heads; matrix_bd over 2T-1 positions, then espnet's pad-and-reshape
    b, t, h, dk = 1, 7, 2, 4
    q = att.linear_q(x).view(b, t, h, dk)
    k = att.linear_k(x).view(b, t, h, dk).transpose(1, 2)
    v = att.linear_v(x).view(b, t, h, dk).transpose(1, 2)
    p = att.linear_pos(pos[None]).view(1, -1, h, dk).transpose(1, 2)
    ac = torch.matmul((q + att.pos_bias_u).transpose(1, 2), k.transpose(-2, -1))
    bd = torch.matmul((q + att.pos_bias_v).transpose(1, 2), p.transpose(-2, -1))
    pad = torch.cat([torch.zeros(b, h, t, 1), bd], dim=-1).view(b, h, 2 * t, t)
    bd = pad[:, :, 1:].view(b, h, t, 2 * t - 1)[:, :, :, :t]
    grid = 1 - torch.triu(torch.ones(t, t), diagonal=1)
    for i in range(t):
        grid[i, (i // 3) * 3:(i // 3) * 3 + 3] = 1
    scores = ((ac + bd) / math.sqrt(dk)).masked_fill(grid == 0, float("-inf"))
    want = att.linear_out(torch.matmul(scores.softmax(-1), v).transpose(1, 2).reshape(b, t, -1))
    assert torch.allclose(got, want, atol=1e-5)


@pytest.mark.gpu
@torch.no_grad()
def test_decoder_on_cuda_matches_the_cpu(decoder_dir):
    cpu = Glm4VoiceDecoder(decoder_dir)
    gpu = Glm4VoiceDecoder(decoder_dir, device="cuda")
    a = cpu.decode(cpu.start_stream(), list(range(13)), True)
    b = gpu.decode(gpu.start_stream(), list(range(13)), True)
    assert a.shape == b.shape
    assert np.abs(a - b).max() < 2e-2 * max(1.0, float(np.abs(a).max()))
    # the Euler loop from a CUDA graph (one per mel length, the default) equals it run eagerly, block after block
    blocks = [list(range(13)), list(range(20)), list(range(5))]
    runs = []
    for graphs in (False, True, True):      # eager; then eager again (each length's first time); then from graphs
        gpu.flow.cuda_graphs = graphs
        s = gpu.start_stream()
        runs.append(np.concatenate([gpu.decode(s, blk, i == 2) for i, blk in enumerate(blocks)]))
    runs = [runs[0], runs[2]]
    assert len(gpu.flow._graphs) == 3        # each length's second solve captured it (the first ran eagerly)
    assert np.abs(runs[0] - runs[1]).max() < 1e-3
    fresh = Glm4VoiceDecoder(decoder_dir, device="cuda")
    fresh.warm(blocks=(13, 20))
    assert len(fresh.flow._graphs) == 2
