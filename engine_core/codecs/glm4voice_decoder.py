"""GLM-4-Voice's speech decoder from its published files: speech tokens -> 22,050 Hz speech, streamed.

`Glm4VoiceDecoder(dir)` reads the published glm-4-voice-decoder directory as it is:
  - config.yaml: a HyperPyYAML file (`!new:cosyvoice.flow.flow.MaskedDiffWithXvec`, `!ref <sample_rate>`, ...). We
    read its values with a YAML loader that turns those tags into plain mappings (nothing named in it is imported or
    run) and check the classes are the ones implemented here;
  - flow.pt, hift.pt: the state dicts of the flow (engine_core/codecs/glm4voice_flow.py) and of the vocoder
    (glm4voice_hift.py), read with `torch.load(weights_only=True)`.
`Glm4VoiceDecoder.random(...)` builds the same modules at the published shapes with random weights (timing).

Streaming (`decode(stream, tokens, finalize)`, one stream per utterance), after the published `token2wav`: each block
of tokens is decoded with all the stream's earlier tokens as the flow's prompt and their mel as its condition, so the
mel continues the one before; the vocoder keeps the last mel frame and the last 256 samples of its source between
blocks (no click at the seam). Two ways to cut a block's end (`overlap`):
  - False (the engine's): all of the block's mel is vocoded at once, holding back only the vocoder's 256 samples: the
    audio of n tokens is ready as soon as they are (int(n * 6.89) mel frames x 256 samples, ~1,764 a token);
  - True (the published demo's): the last 34 mel frames (5 tokens) are also held back and cross-faded (Hamming) with
    the next block's first ones, ~0.4 s later.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine_core.codecs.glm4voice_flow import Flow, FlowConfig
from engine_core.codecs.glm4voice_hift import Hift, HiftConfig
from engine_core.codecs.speech import TokenSpeechDecoder
from engine_core.errors import BackendUnavailableError, CheckpointError

DECODER_FILES = ("config.yaml", "flow.pt", "hift.pt")
OVERLAP_TOKENS = 5            # the published cross-fade: 5 tokens' mel


# -------------------------------------------------------------------------------------------- config.yaml
class _Ref(str):
    """`!ref <name>`: resolved against the file's top-level keys."""


def _yaml_loader():
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def tagged(loader, suffix, node):            # !new:cls / !name:fn / !apply:fn -> {"__class__": cls, ...}
        if isinstance(node, yaml.MappingNode):
            value = loader.construct_mapping(node, deep=True)
        elif isinstance(node, yaml.SequenceNode):
            value = {"__args__": loader.construct_sequence(node, deep=True)}
        else:
            value = {"__args__": loader.construct_scalar(node)}
        return {"__class__": suffix, **value}

    for tag in ("!new:", "!name:", "!apply:"):
        Loader.add_multi_constructor(tag, tagged)
    Loader.add_constructor("!ref", lambda loader, node: _Ref(loader.construct_scalar(node)))
    return Loader


def read_config_yaml(path: str | Path) -> dict[str, Any]:
    """The published decoder config.yaml as plain data (tags as {"__class__": name, ...}, refs resolved)."""
    import yaml

    try:
        raw = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_yaml_loader())
    except (OSError, yaml.YAMLError) as exc:
        raise CheckpointError(f"cannot read the GLM-4-Voice decoder config {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: not a YAML mapping")

    def resolve(v):
        if isinstance(v, _Ref):
            name = v.strip()
            if not (name.startswith("<") and name.endswith(">")) or name[1:-1] not in raw:
                raise CheckpointError(f"{path}: cannot resolve !ref {v!r}")
            return resolve(raw[name[1:-1]])
        if isinstance(v, dict):
            return {k: resolve(x) for k, x in v.items()}
        if isinstance(v, list):
            return [resolve(x) for x in v]
        return v
    return resolve(raw)


def _section(d: dict, cls: str, where: str) -> dict:
    if not isinstance(d, dict) or not str(d.get("__class__", "")).endswith(cls):
        raise CheckpointError(f"GLM-4-Voice decoder config: {where} must be {cls}, found {d.get('__class__')!r}"
                              if isinstance(d, dict) else f"GLM-4-Voice decoder config: no {where}")
    return d


def _content(d: dict) -> dict:
    """An omegaconf.DictConfig's `content:` (or the mapping itself)."""
    return d.get("content", d) if isinstance(d, dict) else {}


def configs_from_yaml(cfg: dict[str, Any]) -> tuple[FlowConfig, HiftConfig]:
    """FlowConfig and HiftConfig from the published config.yaml's `flow` and `hift` (CheckpointError for a layout this
    implementation does not have)."""
    flow = _section(cfg.get("flow"), "MaskedDiffWithXvec", "flow")
    enc = _section(flow.get("encoder"), "BlockConformerEncoder", "flow.encoder")
    reg = _section(flow.get("length_regulator"), "InterpolateRegulator", "flow.length_regulator")
    dec = _section(flow.get("decoder"), "ConditionalCFM", "flow.decoder")
    est = _section(dec.get("estimator"), "ConditionalDecoder", "flow.decoder.estimator")
    cfm = _content(dec.get("cfm_params", {}))
    unsupported = {"input_layer": "linear", "pos_enc_layer_type": "rel_pos_espnet", "use_cnn_module": False,
                   "macaron_style": False, "normalize_before": True}
    for key, want in unsupported.items():
        if key in enc and enc[key] != want:
            raise CheckpointError(f"GLM-4-Voice decoder config: flow.encoder.{key} = {enc[key]!r} is not implemented "
                                  f"(only {want!r})")
    if cfm.get("solver", "euler") != "euler":
        raise CheckpointError(f"GLM-4-Voice decoder config: solver {cfm.get('solver')!r} is not implemented (euler)")
    d = FlowConfig()
    take = {"input_size": flow, "output_size": flow, "spk_embed_dim": flow, "vocab_size": flow,
            "input_frame_rate": flow}
    kw: dict[str, Any] = {k: src[k] for k, src in take.items() if k in src}
    enc_keys = {"output_size": "enc_output_size", "attention_heads": "enc_heads", "linear_units": "enc_linear_units",
                "num_blocks": "enc_blocks", "block_size": "enc_block_size", "static_chunk_size": "enc_static_chunk_size"}
    kw |= {ours: enc[theirs] for theirs, ours in enc_keys.items() if theirs in enc}
    kw |= {ours: reg[theirs] for theirs, ours in {"channels": "lr_channels",
                                                  "sampling_ratios": "lr_sampling_ratios"}.items() if theirs in reg}
    kw |= {ours: cfm[theirs] for theirs, ours in {"sigma_min": "cfm_sigma_min", "t_scheduler": "cfm_t_scheduler",
                                                  "inference_cfg_rate": "cfm_inference_cfg_rate"}.items()
           if theirs in cfm}
    est_keys = {"in_channels": "est_in_channels", "out_channels": "est_out_channels", "channels": "est_channels",
                "attention_head_dim": "est_attention_head_dim", "n_blocks": "est_n_blocks",
                "num_mid_blocks": "est_num_mid_blocks", "num_heads": "est_num_heads", "act_fn": "est_act_fn"}
    kw |= {ours: est[theirs] for theirs, ours in est_keys.items() if theirs in est}
    if "sample_rate" in cfg:
        kw["sample_rate"] = cfg["sample_rate"]
    flow_cfg = FlowConfig(**{**{f.name: getattr(d, f.name) for f in fields(d)}, **kw})
    hift = _section(cfg.get("hift"), "HiFTGenerator", "hift")
    f0 = _section(hift.get("f0_predictor"), "ConvRNNF0Predictor", "hift.f0_predictor")
    names = {f.name for f in fields(HiftConfig)}
    hk = {k: v for k, v in hift.items() if k in names}
    istft = hift.get("istft_params", {})
    hk |= {k: istft[k] for k in ("n_fft", "hop_len") if k in istft}
    hk |= {ours: f0[theirs] for theirs, ours in {"cond_channels": "f0_cond_channels",
                                                 "num_class": "f0_num_class"}.items() if theirs in f0}
    if f0.get("in_channels", hk.get("in_channels", 80)) != hk.get("in_channels", 80):
        raise CheckpointError("GLM-4-Voice decoder config: hift.f0_predictor.in_channels differs from hift.in_channels")
    return flow_cfg, HiftConfig(**hk)


# ------------------------------------------------------------------------------------------------- decoder
def _load_state(module: torch.nn.Module, path: Path) -> None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a bad checkpoint
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    result = module.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys]
    if missing or result.unexpected_keys:
        raise CheckpointError(f"{path}: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected "
                              f"{result.unexpected_keys[:5]}{'...' if len(result.unexpected_keys) > 5 else ''}")


class Glm4VoiceDecoder(TokenSpeechDecoder):
    """GLM-4-Voice's streaming speech decoder (module docstring). `overlap`: the published cross-fade between
    blocks (True) or none (False, the engine's: a block's audio is out as soon as its tokens are)."""

    name = "glm4voice-decoder"

    def __init__(self, decoder_dir: str | Path | None = None, device: str = "cpu", *, overlap: bool = False,
                 modules: tuple[Flow, Hift] | None = None) -> None:
        if modules is None:
            if decoder_dir is None:
                raise BackendUnavailableError("the GLM-4-Voice decoder needs its directory (config.yaml, flow.pt, "
                                              "hift.pt: the published glm-4-voice-decoder)")
            d = Path(decoder_dir)
            missing = [f for f in DECODER_FILES if not (d / f).is_file()]
            if missing:
                raise BackendUnavailableError(f"GLM-4-Voice decoder files missing in {d}: {missing}")
            flow_cfg, hift_cfg = configs_from_yaml(read_config_yaml(d / "config.yaml"))
            flow, hift = Flow(flow_cfg), Hift(hift_cfg)
            _load_state(flow, d / "flow.pt")
            _load_state(hift, d / "hift.pt")
        else:
            flow, hift = modules
        self.flow, self.hift = flow.to(device).eval(), hift.to(device).eval()
        self.device, self.overlap = torch.device(device), overlap
        self.sample_rate = hift.c.sampling_rate
        self._streams: dict[str, dict] = {}
        self._lock = threading.Lock()    # one decode at a time: sessions share the flow's graphs and buffers
        n_overlap = flow.c.mel_frames(OVERLAP_TOKENS) if overlap else 0
        self._overlap = n_overlap
        self._fade = torch.from_numpy(np.hamming(2 * n_overlap).astype(np.float32)) if n_overlap else None

    @classmethod
    def random(cls, device: str = "cpu", seed: int = 0, flow_cfg: FlowConfig | None = None,
               hift_cfg: HiftConfig | None = None, **kw) -> Glm4VoiceDecoder:
        """The published shapes (or the given ones) with random weights: timing only, the speech is noise."""
        torch.manual_seed(seed)
        return cls(device=device, modules=(Flow(flow_cfg or FlowConfig()), Hift(hift_cfg or HiftConfig())), **kw)

    @torch.inference_mode()
    def warm(self, blocks: tuple[int, ...] = (13, 20, 40, 40)) -> None:
        """On CUDA: decode a dummy reply of these blocks twice (the Thinker's first block sizes), so their mel lengths
        have CUDA graphs before the first user's reply (a capture stalls its block ~1 s). A no-op elsewhere."""
        if self.device.type != "cuda" or not self.flow.cuda_graphs:
            return
        for _ in range(2):
            s = self.start_stream()
            for i, n in enumerate(blocks):
                self.decode(s, [0] * n, i == len(blocks) - 1)

    def start_stream(self) -> str:
        sid = uuid.uuid4().hex
        self._streams[sid] = {"tokens": [], "prompt": torch.zeros(1, 80, 0, device=self.device), "held": None,
                              "cache": None, "gen": torch.Generator().manual_seed(0)}
        return sid

    @torch.inference_mode()
    def decode(self, stream_id: str, tokens: list[int], finalize: bool) -> np.ndarray:
        """float32 [n] speech for `tokens` (codes 0..16383), continuing the stream; `finalize` ends it (nothing held
        back; an empty block with it flushes what is held). Thread-safe: the sessions' Thinker threads take turns."""
        with self._lock:
            return self._decode(stream_id, tokens, finalize)

    def _decode(self, stream_id: str, tokens: list[int], finalize: bool) -> np.ndarray:
        st, dev = self._streams[stream_id], self.device
        new = torch.zeros(1, 80, 0, device=dev)
        if tokens:
            prompt = torch.tensor([st["tokens"]], dtype=torch.long, device=dev).reshape(1, -1)
            new = self.flow.inference(torch.tensor([tokens], dtype=torch.long, device=dev), prompt,
                                      st["prompt"]).float()
            st["tokens"] += list(tokens)
        if st["held"] is not None:               # the published cross-fade of the frames held back last time
            new = self._fade_in(new, st["held"])
            st["held"] = None
        mel = new if st["cache"] is None else torch.cat([st["cache"][0], new], dim=-1)
        if self._overlap and not finalize and mel.shape[-1] > self._overlap:
            st["held"], mel = mel[..., -self._overlap:], mel[..., :-self._overlap]
        out = np.zeros(0, np.float32)
        if mel.shape[-1]:
            wave, source = self.hift(mel, None if st["cache"] is None else st["cache"][1], st["gen"])
            st["cache"] = None
            if not finalize:                     # the vocoder keeps its last frame and 256 samples of source
                hold = self.hift.c.upsample
                st["cache"] = (mel[..., -1:], source[..., -hold:])
                wave = wave[:, :-hold]
            out = wave[0].float().cpu().numpy()
        # the flow's next prompt: what the published stream feeds back (its returned mels) with the cross-fade; else
        # exactly the mel generated for the tokens so far
        st["prompt"] = torch.cat([st["prompt"], mel if self._overlap else new], dim=-1)
        if finalize:
            del self._streams[stream_id]
        return out

    def _fade_in(self, new: torch.Tensor, held: torch.Tensor) -> torch.Tensor:
        n = self._overlap
        w = self._fade.to(new.device)
        k = min(n, new.shape[-1])
        new = new.clone()
        new[..., :k] = new[..., :k] * w[:k] + held[..., :k] * w[n:n + k]
        return new if k == n else torch.cat([new, held[..., k:]], dim=-1)


__all__ = ["DECODER_FILES", "Glm4VoiceDecoder", "configs_from_yaml", "read_config_yaml"]
