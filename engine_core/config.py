"""Typed model configs and the named presets (`tiny`, `default`, `paper`).

`ModelConfig.from_name(name)` returns a preset; `ModelConfig.from_dict(d)` rebuilds a stored config
(checkpoints keep theirs as JSON; `engine_core.checkpoint.upgrade_checkpoint` upgrades old versions).

Shapes that follow from a config (used everywhere, never hard-coded elsewhere):
    latent grid        h = w = image_size // vae.spatial_factor
    tokens per frame   P = (h // patch) * (w // patch)
    latent frames      Fl = ceil(chunk_frames / vae.temporal_factor) per chunk
    token slots        T = max_hidden_tokens with actor.token_stream, else 0 (the Actor's own text/audio tokens)
    tokens per chunk   Lc = T + chunk_frames (conditioning tokens, one per 40 ms frame) + Fl * P (video tokens)
    identity tokens    P (one latent frame of the portrait)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from engine_core.errors import ConfigError
from engine_core.thinker.registry import BACKENDS
from sdk.protocol.constants import MOTION_CHANNELS

CONFIG_VERSION = 1
NUM_MOTION_CHANNELS = len(MOTION_CHANNELS)
MOTION_IDENTITY_DIM = 68 * 2          # the motion codec's identity: 68 normalised landmarks


@dataclass
class ThinkerConfig:
    """Which Thinker backend and the shape of what it hands the Actor."""

    backend: str = "toy"              # a name in engine_core.thinker.registry.BACKENDS
    hidden_size: int = 32             # width of the Thinker hidden states the Actor reads
    speech_feature_size: int = 80     # engine_core.thinker.features: 80 numbers per 40 ms frame
    text_vocab: int = 512             # size of the Thinker's text vocabulary (the Actor's text head)
    audio_vocab: int = 64             # audio codebook size (audio head); 0 = no audio head
    num_layers: int = 0               # informative for the paper shape (GLM-4-9B); unused by toy/cascade
    num_heads: int = 0
    kv_groups: int = 0
    head_dim: int = 0
    ffn_size: int = 0
    path: str | None = None           # local checkpoint directory (glm4voice)
    speech_only: bool = False         # the Actor reads the Thinker's speech features only, none of its states (a
                                      # Thinker whose states it was not trained on: the `voice` preset)
    step_weights: str = "bf16"        # glm4voice: the decode step's weights, "bf16" or "int8" (weight-only; faster
                                      # tokens for a small loss of accuracy: docs/performance.md)


@dataclass
class ActorConfig:
    """Shape of the Actor transformer."""

    width: int = 128
    layers: int = 2
    heads: int = 4
    kv_heads: int = 4                 # grouped-query attention: heads % kv_heads == 0
    head_dim: int = 32
    ffn_size: int = 256
    patch: int = 4                    # latent cells per token side
    rope_theta: float = 10000.0
    qkv_bias: bool = True
    norm_eps: float = 1e-6
    identity_time: int = -1           # RoPE time id of the identity tokens (a slot before t = 0)
    position_span: int = 48           # streaming: chunks a position origin serves before it moves up (keep it
                                      # within the offsets training samples, 64 chunks; see Actor.rebase)
    frame_speech: bool = False        # add each latent frame's speech features to its video tokens through a
                                      # zero-initialised projection (a direct, time-aligned voice -> mouth path)
    frame_speech_gain: float = 1.0    # inference only: that projection's departure from silence is scaled by this
                                      # (folded into its weights by Engine.load; training always uses 1)
    token_stream: bool = False        # the Actor generates the reply's text and audio tokens itself: each chunk
                                      # starts with `max_hidden_tokens` token slots (engine_core/actor/tokens.py)
    identity_dim: int = 0             # > 0: identity tokens are vectors of this many numbers (the motion codec's
                                      # normalised landmarks) projected on their own; 0: patchified codec latents


@dataclass
class VAEConfig:
    """The video codec the Actor works in."""

    kind: str = "small"               # "small" (SmallVAE, per-frame) | "ltx" (LTX-Video adapter) | "motion" (motion
                                      # channels per frame, drawn by the portrait renderer: engine_core/motion)
    preset: str = "tiny"              # SmallVAEConfig preset name for kind == "small"
    latent_channels: int = 8
    spatial_factor: int = 16
    temporal_factor: int = 1
    image_size: int = 256
    path: str | None = None           # weights file/directory (None: random init / preset weights dir)


@dataclass
class ModelConfig:
    """Everything that fixes the shapes of a model (Thinker interface + Actor + VAE + streaming)."""

    name: str = "tiny"
    thinker: ThinkerConfig = field(default_factory=ThinkerConfig)
    actor: ActorConfig = field(default_factory=ActorConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    chunk_frames: int = 5             # video frames per chunk (40 ms each)
    steps: int = 2                    # denoising steps (pyramid depth)
    window: int = 3                   # clean chunks kept in the rolling KV cache (plus the identity sink)
    cross_chunks: int = 1             # cross-attention sees the hidden states of this many past chunks + current
    max_hidden_tokens: int = 16       # Thinker tokens per chunk the Actor reads (padded/truncated)
    train_chunks: int = 3             # chunks per training sample (diffusion forcing)
    time_shift: float = 1.0           # flow-matching time shift (SD3 style) of training's noise levels, and of
                                      # inference's unless sample_shift is set; 1 = none
    sample_shift: float | None = None # inference only: time shift of the pyramid's noise levels (None = time_shift)
    noise_scale: float = 1.0          # inference only: std of the noise a chunk starts from (sampling temperature)
    seed: int = 0
    version: int = CONFIG_VERSION

    def __post_init__(self) -> None:
        self.validate()

    # -- derived shapes --------------------------------------------------------------------------------------
    @property
    def latent_hw(self) -> int:
        """h = w of the latent grid."""
        return self.vae.image_size // self.vae.spatial_factor

    @property
    def tokens_per_frame(self) -> int:
        """P: video tokens per latent frame (also the number of identity tokens)."""
        return (self.latent_hw // self.actor.patch) ** 2

    @property
    def latent_frames(self) -> int:
        """Fl: latent frames per chunk."""
        return math.ceil(self.chunk_frames / self.vae.temporal_factor)

    @property
    def token_slots(self) -> int:
        """T: the Actor's text/audio token slots per chunk (`actor.token_stream`; 0 without it)."""
        return self.max_hidden_tokens if self.actor.token_stream else 0

    @property
    def chunk_tokens(self) -> int:
        """Lc: tokens per chunk (token slots + conditioning + video)."""
        return self.token_slots + self.chunk_frames + self.latent_frames * self.tokens_per_frame

    @property
    def token_dim(self) -> int:
        """Numbers per video token: C * patch * patch."""
        return self.vae.latent_channels * self.actor.patch ** 2

    @property
    def inference_shift(self) -> float:
        """The time shift of the noise levels the pyramid steps through."""
        return self.time_shift if self.sample_shift is None else self.sample_shift

    # -- inference-only settings ---------------------------------------------------------------------------
    def trained_dict(self) -> dict[str, Any]:
        """`to_dict` without the INFERENCE_ONLY settings: what a checkpoint's weights were trained for."""
        d = self.to_dict()
        for section, key in INFERENCE_ONLY.values():
            (d[section] if section else d).pop(key)
        return d

    def with_inference(self, **values: float | None) -> ModelConfig:
        """A copy with INFERENCE_ONLY settings replaced (None leaves one as it is); ConfigError on an unknown
        name or a value the config refuses."""
        unknown = set(values) - set(INFERENCE_ONLY)
        if unknown:
            raise ConfigError(f"unknown inference settings {sorted(unknown)}; known: {', '.join(INFERENCE_ONLY)}")
        d = self.to_dict()
        for name, value in values.items():
            if value is None:
                continue
            if name == "frame_speech_gain" and not self.actor.frame_speech:
                raise ConfigError("frame_speech_gain needs an Actor with the frame-speech path (actor.frame_speech)")
            section, key = INFERENCE_ONLY[name]
            (d[section] if section else d)[key] = float(value)
        return ModelConfig.from_dict(d)

    def validate(self) -> None:
        """ConfigError when the shapes do not fit together."""
        a, v = self.actor, self.vae
        checks = [
            (a.heads % max(a.kv_heads, 1) == 0 and a.kv_heads > 0, "actor.heads must be a multiple of kv_heads"),
            (a.head_dim % 8 == 0, "actor.head_dim must be a multiple of 8 (3D RoPE split)"),
            (v.image_size % v.spatial_factor == 0, "vae.image_size must be a multiple of spatial_factor"),
            (self.latent_hw % a.patch == 0, "the latent grid must be a multiple of actor.patch"),
            (self.chunk_frames >= 1 and self.steps >= 1 and self.window >= 1, "chunk_frames/steps/window >= 1"),
            (self.cross_chunks >= 0 and self.max_hidden_tokens >= 1, "cross_chunks >= 0, max_hidden_tokens >= 1"),
            (self.thinker.backend in BACKENDS, f"unknown thinker {self.thinker.backend!r}"),
            (self.thinker.step_weights in ("bf16", "int8"), "thinker.step_weights must be 'bf16' or 'int8'"),
            (v.kind in ("small", "ltx", "motion"), f"unknown vae kind {v.kind!r}"),
            (v.kind != "motion" or (self.latent_hw == 1 and a.patch == 1 and v.temporal_factor == 1
                                    and a.identity_dim > 0), "a motion codec needs one latent cell per frame "
                                                             "(spatial_factor = image_size, patch 1) and identity_dim"),
            (self.time_shift > 0 and (self.sample_shift is None or self.sample_shift > 0), "time shifts must be > 0"),
            (self.noise_scale > 0 and a.frame_speech_gain > 0, "noise_scale and actor.frame_speech_gain must be > 0"),
            (not a.token_stream or self.thinker.text_vocab + self.thinker.audio_vocab > 0,
             "actor.token_stream needs a text or audio vocabulary (thinker.text_vocab / audio_vocab)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"model config {self.name!r}: {msg}")

    # -- presets ---------------------------------------------------------------------------------------------
    @classmethod
    def from_name(cls, name: str) -> ModelConfig:
        """A named preset (PRESETS: tiny, tiny-motion, default, pixel, paper; ConfigError otherwise)."""
        if name not in PRESETS:
            raise ConfigError(f"unknown model preset {name!r}; known: {', '.join(sorted(PRESETS))}")
        return PRESETS[name]()

    # -- (de)serialisation -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Rebuild from `to_dict` output of the current version (unknown keys are a ConfigError)."""
        d = dict(d)
        subs = {"thinker": ThinkerConfig, "actor": ActorConfig, "vae": VAEConfig}
        for key, sub in subs.items():
            d[key] = _build(sub, d.get(key, {}), key)
        return _build(cls, d, "model")


def _build(cls: type, d: dict[str, Any], what: str) -> Any:
    known = {f.name for f in fields(cls)}
    unknown = set(d) - known
    if unknown:
        raise ConfigError(f"{what} config: unknown keys {sorted(unknown)}")
    return cls(**d)


def _tiny() -> ModelConfig:
    """CPU tests: a few seconds to load, far faster than real time on one core."""
    return ModelConfig(name="tiny")


def _default() -> ModelConfig:
    """The embedded default: cascade Thinker (SmolLM2-135M, hidden 576) + a motion-space Actor for a 2-core CPU.

    The Actor's video tokens are motion frames (one token per 40 ms frame: the facial-animation channels of
    sdk.protocol.MOTION_CHANNELS) and the portrait renderer moves the portrait's own pixels (engine_core/motion), so
    any portrait keeps its detail; the identity reference is the face's normalised landmarks (68 x 2 numbers)."""
    return ModelConfig(
        name="default",
        thinker=ThinkerConfig(backend="cascade", hidden_size=576, text_vocab=0, audio_vocab=0),
        actor=ActorConfig(width=256, layers=4, heads=4, kv_heads=4, head_dim=64, ffn_size=768, patch=1,
                          frame_speech=True, identity_dim=MOTION_IDENTITY_DIM),
        vae=VAEConfig(kind="motion", preset="motion", latent_channels=NUM_MOTION_CHANNELS, spatial_factor=256),
        chunk_frames=8, steps=3, window=6, cross_chunks=1, max_hidden_tokens=16, train_chunks=4,
    )


def _pixel() -> ModelConfig:
    """The small pixel-space model (the paper's video path at small scale): cascade Thinker + a small Actor over
    the project's own SmallVAE, trained on the procedural cartoons (docs/default-model.md, "The pixel model")."""
    return ModelConfig(
        name="pixel",
        # no text/audio heads: the cascade Thinker writes and speaks the reply (keeps the shipped weights small)
        thinker=ThinkerConfig(backend="cascade", hidden_size=576, text_vocab=0, audio_vocab=0),
        actor=ActorConfig(width=256, layers=4, heads=4, kv_heads=4, head_dim=64, ffn_size=768, patch=4,
                          frame_speech=True, frame_speech_gain=1.5),
        vae=VAEConfig(kind="small", preset="default", latent_channels=16, spatial_factor=16),
        chunk_frames=8, steps=3, window=3, cross_chunks=1, max_hidden_tokens=16, train_chunks=3,
        # sampling (chosen on held-out clips, docs/default-model.md): most of the denoising in the last step
        # (noise levels 1, 0.94, 0.8, 0) from noise of std 0.7
        sample_shift=8.0, noise_scale=0.7,
    )


def _tiny_motion() -> ModelConfig:
    """CPU tests of the motion path: the default's layout with a toy Thinker and a random two-layer Actor."""
    return ModelConfig(
        name="tiny-motion",
        actor=ActorConfig(patch=1, frame_speech=True, identity_dim=MOTION_IDENTITY_DIM),
        vae=VAEConfig(kind="motion", preset="motion", latent_channels=NUM_MOTION_CHANNELS, spatial_factor=256),
        chunk_frames=5, steps=2, window=3,
    )


def _paper() -> ModelConfig:
    """The paper's shapes: GLM-4-9B Thinker, an Actor body of the same shape + cross-attention, LTX VAE."""
    return ModelConfig(
        name="paper",
        thinker=ThinkerConfig(backend="glm4voice", hidden_size=4096, text_vocab=151552, audio_vocab=16384,
                              num_layers=40, num_heads=32, kv_groups=2, head_dim=128, ffn_size=13696),
        # the Actor generates the reply's text and audio tokens itself, as in the paper (actor/tokens.py)
        actor=ActorConfig(width=4096, layers=40, heads=32, kv_heads=2, head_dim=128, ffn_size=13696, patch=1,
                          token_stream=True),
        vae=VAEConfig(kind="ltx", preset="ltx", latent_channels=128, spatial_factor=32, temporal_factor=8),
        # 1 s chunks (the paper: ~2 s): 25 frames = exactly 4 LTX latent frames (1 + 8k), half the wait
        # for the first chunk; see docs/performance.md
        chunk_frames=25, steps=4, window=8, cross_chunks=1, max_hidden_tokens=32, train_chunks=4,
        time_shift=3.0,
    )


# Settings that shape no weight, only how a trained model is sampled: name -> (config section or None, key).
# A checkpoint may be exported with other values (`xstreamer export`) and fine-tuned from whatever it says.
INFERENCE_ONLY: dict[str, tuple[str | None, str]] = {
    "frame_speech_gain": ("actor", "frame_speech_gain"),
    "sample_shift": (None, "sample_shift"),
    "noise_scale": (None, "noise_scale"),
}

def _voice() -> ModelConfig:
    """GLM-4-Voice (its published files) speaking through the embedded default's Actor, which reads its speech
    features only (trained with the Thinker's states dropped for a share of chunks, so speech alone drives it)."""
    return speech_driven(_default(), "voice")


def speech_driven(cfg: ModelConfig, name: str = "voice") -> ModelConfig:
    """`cfg` (an Actor's config: the default preset's, or its checkpoint's) with GLM-4-Voice as its Thinker and the
    Actor reading only the speech features: the Actor's own Thinker interface (hidden_size) is kept for its weights'
    shapes and fed nothing; no text/audio heads (the Thinker writes and speaks the reply)."""
    d = cfg.to_dict()
    d["name"] = name
    d["thinker"] = {**d["thinker"], "backend": "glm4voice", "speech_only": True, "text_vocab": 0, "audio_vocab": 0,
                    "path": None}
    d["actor"] = {**d["actor"], "token_stream": False}
    return ModelConfig.from_dict(d)


TEST_PRESETS = ("tiny", "tiny-motion")    # random by design: no weights looked for, no warning, a drawn placeholder face
PRESETS = {"tiny": _tiny, "tiny-motion": _tiny_motion, "default": _default, "pixel": _pixel, "paper": _paper,
           "voice": _voice}
# presets whose Actor and VAE weights are another preset's (engine_core/weights/<that preset>)
PRESET_WEIGHTS = {"voice": "default"}
