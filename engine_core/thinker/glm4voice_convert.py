"""Convert a published GLM-4-Voice-9B (ChatGLM classes) checkpoint to transformers' native `GlmForCausalLM`.

Why: the published checkpoint loads only with `trust_remote_code=True` and the `modeling_chatglm.py` /
`tokenization_chatglm.py` files that sit in its directory. xstreamer cannot ship that code and will not
execute code from a model directory, so a ChatGLM checkpoint is converted once into the native GLM-4
layout that transformers implements itself (`GlmConfig` / `GlmForCausalLM`, the class behind
`THUDM/glm-4-9b-chat-hf`). The mathematics is identical:

    ChatGLM name (per layer N: transformer.encoder.layers.N.)   native name (model.layers.N.)
    input_layernorm.weight                                      input_layernorm.weight
    self_attention.query_key_value.{weight,bias}  [q|k|v]       self_attn.{q,k,v}_proj.{weight,bias}
    self_attention.dense.weight                                 self_attn.o_proj.weight
    post_attention_layernorm.weight                             post_attention_layernorm.weight
    mlp.dense_h_to_4h.weight  [gate|up]                         mlp.gate_up_proj.weight (same fused order)
    mlp.dense_4h_to_h.weight                                    mlp.down_proj.weight
    transformer.embedding.word_embeddings.weight                model.embed_tokens.weight
    transformer.encoder.final_layernorm.weight                  model.norm.weight
    transformer.output_layer.weight                             lm_head.weight
    transformer.rotary_pos_emb.inv_freq                         (dropped: recomputed)

RoPE: ChatGLM rotates the first half of each head (kv_channels/2 dims) in interleaved pairs with base
10000 * rope_ratio; native GLM does the same with partial_rotary_factor 0.5 and rope_theta = that base.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from engine_core.errors import CheckpointError

_LAYER = re.compile(r"^transformer\.encoder\.layers\.(\d+)\.(.+)$")
_SIMPLE = {
    "input_layernorm.weight": "input_layernorm.weight",
    "self_attention.dense.weight": "self_attn.o_proj.weight",
    "post_attention_layernorm.weight": "post_attention_layernorm.weight",
    "mlp.dense_h_to_4h.weight": "mlp.gate_up_proj.weight",
    "mlp.dense_4h_to_h.weight": "mlp.down_proj.weight",
}
_TOP = {
    "transformer.embedding.word_embeddings.weight": "model.embed_tokens.weight",
    "transformer.encoder.final_layernorm.weight": "model.norm.weight",
    "transformer.output_layer.weight": "lm_head.weight",
}
# The pre-tokenisation pattern of GLM-4's tiktoken tokenizer (tokenization_chatglm.py).
GLM4_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def chatglm_config_to_native(cfg: dict):
    """A transformers `GlmConfig` equivalent to a ChatGLM `config.json` dict."""
    from transformers import GlmConfig

    try:
        if not cfg.get("rmsnorm", True) or cfg.get("apply_residual_connection_post_layernorm", False):
            raise CheckpointError("only pre-norm RMSNorm ChatGLM checkpoints (GLM-4) can be converted")
        heads = int(cfg["num_attention_heads"])
        groups = int(cfg["multi_query_group_num"]) if cfg.get("multi_query_attention", True) else heads
        eos = cfg.get("eos_token_id")
        return GlmConfig(
            vocab_size=int(cfg["padded_vocab_size"]), hidden_size=int(cfg["hidden_size"]),
            intermediate_size=int(cfg["ffn_hidden_size"]), num_hidden_layers=int(cfg["num_layers"]),
            num_attention_heads=heads, num_key_value_heads=groups,
            head_dim=int(cfg.get("kv_channels", int(cfg["hidden_size"]) // heads)),
            rms_norm_eps=float(cfg.get("layernorm_epsilon", 1.5625e-07)),
            max_position_embeddings=int(cfg.get("seq_length", 8192)),
            attention_bias=bool(cfg.get("add_qkv_bias", True)),
            rope_parameters={"rope_type": "default", "partial_rotary_factor": 0.5,
                             "rope_theta": 10000.0 * float(cfg.get("rope_ratio", 1.0))},
            tie_word_embeddings=False, pad_token_id=cfg.get("pad_token_id"),
            eos_token_id=eos if eos is not None else None,
        )
    except KeyError as exc:
        raise CheckpointError(f"ChatGLM config lacks {exc}") from exc


def convert_chatglm_state_dict(sd: dict[str, torch.Tensor], config) -> dict[str, torch.Tensor]:
    """ChatGLM-named tensors -> native GLM names. Splits the fused QKV; gate/up stay fused (same order).

    config: the native `GlmConfig` (from `chatglm_config_to_native`).
    """
    q = config.num_attention_heads * config.head_dim
    kv = config.num_key_value_heads * config.head_dim
    out: dict[str, torch.Tensor] = {}
    for name, t in sd.items():
        if name in _TOP:
            out[_TOP[name]] = t
            continue
        if name.endswith("rotary_pos_emb.inv_freq"):
            continue
        m = _LAYER.match(name)
        if m is None:
            raise CheckpointError(f"unexpected ChatGLM tensor {name}")
        n, rest = m.group(1), m.group(2)
        pre = f"model.layers.{n}."
        if rest in _SIMPLE:
            out[pre + _SIMPLE[rest]] = t
        elif rest.startswith("self_attention.query_key_value."):
            kind = rest.rsplit(".", 1)[1]                           # weight [q+2kv, H] or bias [q+2kv]
            if t.shape[0] != q + 2 * kv:
                raise CheckpointError(f"{name} has {t.shape[0]} rows, expected {q + 2 * kv}")
            wq, wk, wv = torch.split(t, [q, kv, kv], dim=0)
            out[pre + f"self_attn.q_proj.{kind}"] = wq.contiguous()
            out[pre + f"self_attn.k_proj.{kind}"] = wk.contiguous()
            out[pre + f"self_attn.v_proj.{kind}"] = wv.contiguous()
        else:
            raise CheckpointError(f"unexpected ChatGLM tensor {name}")
    return out


def _read_state_dict(src: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    sd: dict[str, torch.Tensor] = {}
    files = sorted(src.glob("*.safetensors"))
    if files:
        for f in files:
            sd.update(load_file(str(f)))
        return sd
    bins = sorted(src.glob("pytorch_model*.bin"))
    if not bins:
        raise CheckpointError(f"no *.safetensors or pytorch_model*.bin in {src}")
    for f in bins:
        sd.update(torch.load(str(f), map_location="cpu", weights_only=True))
    return sd


def convert_chatglm_tokenizer(src: str | Path, dst: str | Path) -> None:
    """Rebuild GLM-4's tiktoken tokenizer (`tokenizer.model` + `tokenizer_config.json` added tokens) as a
    `tokenizers` fast tokenizer saved in `dst` (no remote code)."""
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    src, dst = Path(src), Path(dst)
    vocab_file = src / "tokenizer.model"
    cfg_file = src / "tokenizer_config.json"
    if not vocab_file.is_file() or not cfg_file.is_file():
        raise CheckpointError(f"{src} lacks tokenizer.model or tokenizer_config.json")
    added = json.loads(cfg_file.read_text()).get("added_tokens_decoder", {})
    specials = [v["content"] for _, v in sorted(added.items(), key=lambda kv: int(kv[0]))]
    try:
        backend = TikTokenConverter(vocab_file=str(vocab_file), pattern=GLM4_PATTERN,
                                    extra_special_tokens=specials).converted()
    except (ImportError, ValueError) as exc:   # reading tiktoken files needs the `tiktoken` package
        raise CheckpointError(f"cannot convert {vocab_file}: {exc}") from exc
    tok = PreTrainedTokenizerFast(tokenizer_object=backend)
    for k, v in added.items():
        got = tok.convert_tokens_to_ids(v["content"])
        if got != int(k):
            raise CheckpointError(f"special token {v['content']} got id {got}, checkpoint says {k}")
    tok.save_pretrained(dst)


def convert_chatglm_checkpoint(src: str | Path, dst: str | Path, dtype: torch.dtype = torch.bfloat16) -> Path:
    """Convert a ChatGLM GLM-4(-Voice) checkpoint directory `src` into a native GLM directory `dst`."""
    from safetensors.torch import save_file

    src, dst = Path(src), Path(dst)
    try:
        cfg = json.loads((src / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {src / 'config.json'}: {exc}") from exc
    config = chatglm_config_to_native(cfg)
    sd = convert_chatglm_state_dict(_read_state_dict(src), config)
    dst.mkdir(parents=True, exist_ok=True)
    config.architectures = ["GlmForCausalLM"]
    config.save_pretrained(dst)
    save_file({k: v.to(dtype).contiguous() for k, v in sd.items()}, str(dst / "model.safetensors"),
              metadata={"format": "pt"})
    if (src / "tokenizer.json").is_file():
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(src).save_pretrained(dst)
    else:
        convert_chatglm_tokenizer(src, dst)
    return dst
