"""GLM-4-Voice's speech tokenizer from its published files: 16 kHz speech -> speech tokens, 12.5 a second.

Our implementation of the published architecture (`WhisperVQEncoder` with `quantize_encoder_only`), reading the
published glm-4-voice-tokenizer directory as it is: config.json (a Whisper config plus the VQ keys), model.safetensors
(or model-*.safetensors shards) and preprocessor_config.json (Whisper's feature extractor: 128 log-mel bins, 100 a
second; transformers' `WhisperFeatureExtractor` computes them).

    log-mel [128, 100/s] -> causal conv (k3) + GELU -> causal conv (k3, stride 2) + GELU = 50/s -> + learned positions
    -> 16 Whisper encoder layers (pre-norm attention + GELU MLP), each position seeing everything before it and its
    own 200-frame (4 s) block -> average pooling by 4 = 12.5/s -> the nearest of 16,384 codebook vectors: its index

Speech longer than 30 s is cut into 30 s pieces, as the published `extract_speech_token` does. Tensor names are the
published ones (`conv1.weight`, `layers.N.self_attn.k_proj.weight`, `codebook.weight`, `embed_positions.weight`, ...);
the EMA buffers of its training (`ema_count`, `ema_weight`) are read and not used.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from engine_core.errors import AudioError, BackendUnavailableError, CheckpointError

TOKENIZER_RATE = 16000
WINDOW_S = 30


@dataclass
class TokenizerConfig:
    """The keys of the published config.json that shape the encoder."""

    d_model: int = 1280
    encoder_attention_heads: int = 20
    encoder_ffn_dim: int = 5120
    num_mel_bins: int = 128
    max_source_positions: int = 1500
    quantize_position: int = 16
    quantize_vocab_size: int = 16384
    pooling_kernel_size: int | None = 4
    pooling_type: str = "avg"
    pooling_position: int = 16
    quantize_causal_block_size: int | None = 200
    encoder_causal_attention: bool = False
    encoder_causal_convolution: bool = True
    activation_function: str = "gelu"

    @classmethod
    def from_json(cls, d: dict) -> TokenizerConfig:
        c = cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
        if not d.get("quantize_vocab_size"):
            raise CheckpointError("the speech tokenizer's config.json has no quantize_vocab_size (not a VQ encoder)")
        if c.pooling_type not in ("avg", "max") or c.activation_function != "gelu":
            raise CheckpointError(f"speech tokenizer: pooling {c.pooling_type!r} / activation "
                                  f"{c.activation_function!r} not implemented")
        if c.pooling_kernel_size and c.pooling_position != c.quantize_position:
            raise CheckpointError("speech tokenizer: pooling before the quantiser's layer is not implemented")
        return c


class EncoderLayer(nn.Module):
    """Whisper's encoder layer: x + attn(LN(x)); x + fc2(gelu(fc1(LN(x)))). k_proj has no bias."""

    def __init__(self, c: TokenizerConfig) -> None:
        super().__init__()
        d = c.d_model
        self.heads = c.encoder_attention_heads
        self.self_attn = nn.Module()
        self.self_attn.q_proj, self.self_attn.k_proj = nn.Linear(d, d), nn.Linear(d, d, bias=False)
        self.self_attn.v_proj, self.self_attn.out_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.self_attn_layer_norm, self.final_layer_norm = nn.LayerNorm(d), nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, c.encoder_ffn_dim), nn.Linear(c.encoder_ffn_dim, d)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        a = self.self_attn
        h = self.self_attn_layer_norm(x)
        q, k, v = (p(h).view(b, t, self.heads, -1).transpose(1, 2) for p in (a.q_proj, a.k_proj, a.v_proj))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(b, t, -1)
        x = x + a.out_proj(y)
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))


class WhisperVQ(nn.Module):
    def __init__(self, c: TokenizerConfig) -> None:
        super().__init__()
        self.c = c
        d = c.d_model
        self.conv1 = nn.Conv1d(c.num_mel_bins, d, 3, padding=0 if c.encoder_causal_convolution else 1)
        self.conv2 = nn.Conv1d(d, d, 3, stride=2, padding=0 if c.encoder_causal_convolution else 1)
        self.embed_positions = nn.Embedding(c.max_source_positions, d)
        self.layers = nn.ModuleList(EncoderLayer(c) for _ in range(c.quantize_position))
        pool = c.pooling_kernel_size or 1
        self.embed_positions2 = nn.Embedding(math.ceil(c.max_source_positions / pool), d)
        self.codebook = nn.Embedding(c.quantize_vocab_size, d)
        self.register_buffer("ema_count", torch.ones(c.quantize_vocab_size))
        self.register_buffer("ema_weight", torch.zeros(c.quantize_vocab_size, d))

    def _conv(self, conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
        if self.c.encoder_causal_convolution:               # all the padding on the left: the past only
            x = F.pad(x, (conv.dilation[0] * (conv.kernel_size[0] - 1), 0))
        return F.gelu(conv(x))

    def attention_mask(self, valid: torch.Tensor) -> torch.Tensor:
        """valid bool [B, T] (frames of speech, not padding) -> bool [B, 1, T, T]: a frame sees the valid frames before
        it and of its own block (quantize_causal_block_size; none: all)."""
        t = valid.shape[1]
        i = torch.arange(t, device=valid.device)
        blk = self.c.quantize_causal_block_size
        see = (i[None, :] <= i[:, None]) | (i[None, :] // blk == i[:, None] // blk) if blk else torch.ones(
            t, t, dtype=torch.bool, device=valid.device)
        if self.c.encoder_causal_attention:
            see = see & (i[None, :] <= i[:, None])
        return (see[None] & valid[:, None, :])[:, None]

    def forward(self, features: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """features [B, 128, 2T] log-mel, valid [B, 2T] -> (token ids [B, T/pool], their validity [B, T/pool])."""
        x = self._conv(self.conv2, self._conv(self.conv1, features)).transpose(1, 2)          # [B, T, D]
        valid = valid[:, ::self.conv1.stride[0] * self.conv2.stride[0]][:, :x.shape[1]]
        x = x + self.embed_positions.weight[:x.shape[1]]
        mask = self.attention_mask(valid.bool())
        for layer in self.layers:
            x = layer(x, mask)
        pool = self.c.pooling_kernel_size
        if pool:
            pad = (-x.shape[1]) % pool
            y = F.pad(x.transpose(1, 2), (0, pad))
            y = F.avg_pool1d(y, pool) if self.c.pooling_type == "avg" else F.max_pool1d(y, pool)
            x, valid = y.transpose(1, 2), valid[:, ::pool]
        book = self.codebook.weight
        dist = book.pow(2).sum(1)[None] - 2 * x.reshape(-1, x.shape[-1]) @ book.t()               # + |x|^2: constant
        return dist.argmin(dim=1).view(x.shape[0], -1), valid.bool()


def _weights(d: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(d.glob("model*.safetensors"))
    if not files:
        raise BackendUnavailableError(f"no model*.safetensors in the speech tokenizer directory {d}")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(str(f)))
    return state


class Glm4VoiceSpeechTokenizer:
    """pcm -> GLM-4-Voice speech tokens (0..16383), from the published tokenizer directory (module docstring)."""

    def __init__(self, tokenizer_dir: str | Path | None, device: str = "cpu") -> None:
        if tokenizer_dir is None:
            raise BackendUnavailableError("the GLM-4-Voice speech tokenizer needs its directory (the published "
                                          "glm-4-voice-tokenizer: config.json, model.safetensors, "
                                          "preprocessor_config.json)")
        d = Path(tokenizer_dir)
        for f in ("config.json", "preprocessor_config.json"):
            if not (d / f).is_file():
                raise BackendUnavailableError(f"no {f} in the speech tokenizer directory {d}")
        try:
            cfg = TokenizerConfig.from_json(json.loads((d / "config.json").read_text(encoding="utf-8")))
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"{d / 'config.json'}: {exc}") from exc
        from transformers import WhisperFeatureExtractor

        self.features = WhisperFeatureExtractor.from_pretrained(str(d))
        self.model = WhisperVQ(cfg)
        state = _weights(d)
        if any(k.startswith("model.encoder.") for k in state):        # a whole WhisperVQ model's file: its encoder
            state = {k[len("model.encoder."):]: v for k, v in state.items() if k.startswith("model.encoder.")}
            state = {k: v for k, v in state.items() if not k.startswith("layer_norm")
                     and not (k.startswith("layers.") and int(k.split(".")[1]) >= cfg.quantize_position)}
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("ema_")]
        if missing or unexpected:
            raise CheckpointError(f"speech tokenizer weights in {d}: missing {missing[:5]}, unexpected {unexpected[:5]}")
        self.model = self.model.to(device).eval()
        self.device = torch.device(device)
        pool = cfg.pooling_kernel_size or 1
        self.stride = self.model.conv1.stride[0] * self.model.conv2.stride[0] * pool * self.features.hop_length

    @torch.inference_mode()
    def tokenize(self, pcm: np.ndarray, sample_rate: int) -> list[int]:
        """Speech-token ids of mono int16/float `pcm` at `sample_rate` Hz."""
        from engine_core.thinker.cascade_asr import resample, to_float_mono

        audio = resample(to_float_mono(pcm), int(sample_rate), TOKENIZER_RATE)
        if audio.size == 0:
            raise AudioError("no audio to tokenize")
        out: list[int] = []
        for start in range(0, audio.size, WINDOW_S * TOKENIZER_RATE):
            piece = audio[start:start + WINDOW_S * TOKENIZER_RATE]
            f = self.features([piece], sampling_rate=TOKENIZER_RATE, return_attention_mask=True, return_tensors="pt",
                              padding="longest", pad_to_multiple_of=self.stride)
            ids, valid = self.model(f["input_features"].to(self.device, self.model.conv1.weight.dtype),
                                    f["attention_mask"].to(self.device))
            out += ids[0][valid[0]].tolist()
        return out


__all__ = ["Glm4VoiceSpeechTokenizer", "TokenizerConfig", "WhisperVQ"]
