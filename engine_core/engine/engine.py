"""The Engine: loads a model (Thinker + Actor + VAE) once and opens streaming Sessions on it.

    engine = Engine.load(model="tiny" | "default" | "paper" | <checkpoint dir>, device="cpu")
    session = engine.open_session(portrait=png_bytes, persona=Persona(...))

Where the weights come from:
  - a checkpoint directory: actor.safetensors (config in its metadata) [+ vae.safetensors];
  - a trained preset (`default`, `pixel`): engine_core/weights/<preset>/ when present, else random init with a
    warning (`default`'s motion codec has no weights: the renderer moves the portrait's pixels);
  - `tiny`: seeded random init (tests); `paper`: needs the GLM-4-Voice and LTX-Video weights on disk
    (`glm4voice=DIR` / `--glm4voice DIR` or XSTREAMER_GLM4VOICE_DIR: the published glm-4-voice-9b,
    glm-4-voice-tokenizer and glm-4-voice-decoder under DIR; XSTREAMER_LTX_VAE_DIR) or a checkpoint directory
    naming them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from engine_core.actor.model import Actor
from engine_core.checkpoint import ACTOR_FILE, VAE_FILE, load_state_checked, read_actor_checkpoint
from engine_core.config import PRESET_WEIGHTS, TEST_PRESETS, ModelConfig, speech_driven
from engine_core.engine.inputs import check_persona, decode_portrait
from engine_core.engine.stepper import Stepper
from engine_core.errors import BackendUnavailableError, CheckpointError, ConfigError
from engine_core.thinker.base import Thinker
from engine_core.thinker.features import silence_features
from sdk.protocol.constants import FRAME_SIZE

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


def build_thinker(cfg: ModelConfig, device: str, random_weights: bool = False) -> Thinker:
    """The Thinker of a config, from the backend table (engine_core.thinker.registry)."""
    from engine_core.thinker.registry import thinker_from_config

    return thinker_from_config(cfg, device, random_weights)


def build_vae(cfg: ModelConfig, model_dir: Path | None, device: str, warnings: list[str],
              random_weights: bool = False):
    """The video VAE of a config: weights from the model dir, the preset's weights dir, or seeded random init."""
    v = cfg.vae
    if v.kind == "motion":
        from engine_core.motion.codec import MotionCodec

        return MotionCodec()
    if v.kind == "ltx":
        from engine_core.codecs.ltx import LTXVideoVAE

        if random_weights:
            dtype = torch.bfloat16 if str(device).startswith("cuda") else torch.float32
            warnings.append("random LTX-Video VAE weights (timing only: frames are noise)")
            return LTXVideoVAE.random(device=device, dtype=dtype)
        path = v.path or os.environ.get("XSTREAMER_LTX_VAE_DIR")
        if not path:
            raise BackendUnavailableError("the paper preset needs the LTX-Video VAE weights (XSTREAMER_LTX_VAE_DIR)")
        return LTXVideoVAE(path, device=device)
    from engine_core.codecs.vae import SmallVAE, SmallVAEConfig
    from engine_core.codecs.vae_io import load_small_vae

    candidates = [Path(v.path)] if v.path else []
    if model_dir is not None:
        candidates.append(model_dir / VAE_FILE)
    candidates.append(WEIGHTS_DIR / cfg.name / VAE_FILE)
    for c in candidates:
        if c.is_file() or (c.is_dir() and (c / VAE_FILE).is_file()):
            return load_small_vae(c, device=device)
    torch.manual_seed(cfg.seed)
    vae = SmallVAE(SmallVAEConfig.from_name(v.preset))
    if vae.latent_channels != v.latent_channels or vae.spatial_factor != v.spatial_factor:
        raise BackendUnavailableError(f"SmallVAE preset {v.preset!r} does not match the model's latent shape")
    if cfg.name not in TEST_PRESETS:
        warnings.append(f"no trained VAE weights for model {cfg.name!r}: using a random VAE (frames are noise)")
    return vae.to(device).eval()


def check_model_name(model: str) -> None:
    """A `--model` value that is neither a checkpoint directory nor a preset: a clear error saying which.

    CheckpointError for a directory without actor.safetensors; ConfigError for anything else that is not a
    preset name (a path that does not exist, a misspelt preset)."""
    from engine_core.config import PRESETS

    if model in PRESETS:
        return
    p = Path(model)
    if p.is_dir():
        raise CheckpointError(f"model directory {str(p)!r} has no {ACTOR_FILE}")
    raise ConfigError(f"no such model directory or preset {model!r} (presets: {', '.join(sorted(PRESETS))}; "
                      f"a model directory holds {ACTOR_FILE})")


class Engine:
    """A loaded model; `open_session` starts a conversation on it."""

    def __init__(self, config: ModelConfig, thinker: Thinker, actor: Actor, vae: Any, device: str,
                 warnings: list[str] | None = None) -> None:
        self.config = config
        self.thinker = thinker
        self.actor = actor
        self.vae = vae
        self.device = device
        self.warnings = list(warnings or [])
        self.stepper = Stepper(self)          # the block loop of every session of this engine (engine/stepper.py)

    @classmethod
    def load(cls, model: str = "tiny", device: str = "cpu", attn_impl: str = "sdpa",
             devices: list[str] | str | None = None, dtype: torch.dtype | None = None,
             random_weights: bool = False, thinker_weights: str | None = None,
             actor_tokens: bool | None = None, glm4voice: str | None = None, max_batch: int | None = None) -> Engine:
        """Load a preset name ("tiny" | "default" | "paper" | "voice") or a checkpoint directory.

        devices: optional [thinker_device, actor_device] or "cuda:0,cuda:1" (Thinker and Actor+VAE on separate
        GPUs); overrides
        `device`. attn_impl: "sdpa" | "reference" (the Actor's attention, for equivalence checks).
        dtype: the Actor's weights (default float32; bfloat16 for `paper` on CUDA).
        random_weights: build every part at its full shape with random weights and no checkpoint (the
        `paper` timing path: `xstreamer bench --random-weights`); the Thinker's audio is then silent.
        thinker_weights: "bf16" | "int8", the glm4voice decode step's weights (config `thinker.step_weights`;
        None: the config's).
        actor_tokens: whether the Actor generates the reply's text and audio tokens (`actor.token_stream`;
        None: the config's). Off, the Thinker's tokens, text and speech are streamed (the Actor reads them).
        glm4voice: a directory with GLM-4-Voice's published parts (engine_core/thinker/glm4voice_files.py), for a
        model whose Thinker is glm4voice (config `thinker.path`; None: the config's, else XSTREAMER_GLM4VOICE_DIR).
        max_batch: sessions the engine's Stepper may pass through the Actor as one batch (None: the Stepper's 8); on
        CUDA the batched passes' graphs are captured now for every batch size up to it (engine/stepper.py; without
        it, none are, and on CUDA sessions pass one by one).
        """
        thinker_device = device
        if isinstance(devices, str):
            devices = [d.strip() for d in devices.split(",") if d.strip()]
        if devices:
            thinker_device, device = devices[0], devices[-1]
        warnings: list[str] = []
        model_dir: Path | None = None
        tensors = None
        if Path(model).is_dir() and (Path(model) / ACTOR_FILE).is_file():
            model_dir = Path(model)
            cfg, tensors, _ = read_actor_checkpoint(model_dir)
        else:
            check_model_name(model)
            cfg = ModelConfig.from_name(model)
            preset_dir = WEIGHTS_DIR / PRESET_WEIGHTS.get(cfg.name, cfg.name)
            if cfg.name not in TEST_PRESETS and (preset_dir / ACTOR_FILE).is_file():
                model_dir = preset_dir
                stored, tensors, _ = read_actor_checkpoint(preset_dir)
                # a preset on another's weights (voice: the default's Actor, GLM-4-Voice's speech driving it)
                cfg = stored if stored.name == cfg.name else speech_driven(stored, cfg.name)
        if thinker_weights is not None:
            cfg = replace(cfg, thinker=replace(cfg.thinker, step_weights=thinker_weights))
            cfg.validate()
        if glm4voice is not None:
            if cfg.thinker.backend != "glm4voice":
                raise ConfigError(f"--glm4voice: model {cfg.name!r} has the {cfg.thinker.backend!r} Thinker, not glm4voice")
            cfg = replace(cfg, thinker=replace(cfg.thinker, path=str(glm4voice)))
        if actor_tokens is not None and actor_tokens != cfg.actor.token_stream:
            if tensors is not None and actor_tokens:
                raise ConfigError("this Actor checkpoint was trained without the token stream (actor.token_stream)")
            cfg = replace(cfg, actor=replace(cfg.actor, token_stream=actor_tokens))
            cfg.validate()
            if tensors is not None:      # a token-stream checkpoint without it: its token weights are not used
                tensors = {k: v for k, v in tensors.items() if not k.startswith("tokens.")}
        # codec and Thinker first: a missing backend fails fast, before a (possibly huge) Actor is built
        vae = build_vae(cfg, model_dir, device, warnings, random_weights)
        thinker = build_thinker(cfg, thinker_device, random_weights)
        if thinker.hidden_size != cfg.thinker.hidden_size and not cfg.thinker.speech_only:
            raise BackendUnavailableError(f"Thinker hidden size {thinker.hidden_size} != model config "
                                          f"{cfg.thinker.hidden_size}")
        if dtype is None:
            dtype = torch.bfloat16 if cfg.name == "paper" and str(device).startswith("cuda") else torch.float32
        torch.manual_seed(cfg.seed)
        actor = Actor.build(cfg, device, dtype, attn_impl)
        if tensors is not None:
            load_state_checked(actor, {k: v.to(dtype) for k, v in tensors.items()}, str(model_dir / ACTOR_FILE))
            actor.fold_frame_speech_gain(silence_features())
        elif cfg.name not in TEST_PRESETS:
            msg = (f"no trained Actor weights for model {cfg.name!r} (looked in {WEIGHTS_DIR / cfg.name}): "
                   "using a random Actor (frames are noise)")
            log.warning(msg)
            warnings.append(msg)
        actor = actor.eval()
        thinker.warm()               # CUDA: the decode step's kernels compiled and graphs captured now, not in a reply
        decoder = getattr(thinker, "speech_decoder", None)
        if hasattr(decoder, "warm"):
            decoder.warm()           # CUDA: the speech decoder's graphs for a reply's first blocks
        engine = cls(cfg, thinker, actor, vae, device, warnings)
        if max_batch is not None:
            engine.stepper.max_batch = max(1, max_batch)
            if max_batch > 1:
                actor.warm_batch_graphs(max_batch)   # CUDA: the steady pass of 2..max_batch sessions (no-op elsewhere)
            if max_batch > 1 and getattr(vae, "kind", None) == "motion" and str(device) == "cpu" \
                    and (os.cpu_count() or 1) > 1:
                from engine_core.motion.render_pool import RenderPool

                vae.pool = RenderPool(min(2, os.cpu_count() or 1))   # frames drawn by worker processes
                engine.stepper.decode_wait(max_batch)                # (several sessions' draws waited for at once)
        return engine

    def utilization(self) -> float:
        """How busy the engine is: the share of the last seconds its block loop spent stepping (0..1)."""
        return self.stepper.utilization()

    def open_session(self, portrait: bytes | None = None, persona=None, face_points=None,
                     video_size: int = FRAME_SIZE):
        """A new Session (PortraitError / PersonaError on bad input, e.g. a voice the Thinker does not have). A
        persona with a greeting says it as the session's first utterance.

        portrait: image file bytes (None: the persona's built-in character, or the first one; `tiny`: a plain
        drawn face); face_points: five [x, y] points where the picture's face cannot be found (sdk.portrait);
        video_size: the frames' side, one of sdk.protocol.VIDEO_SIZES."""
        from engine_core.engine.session import Session

        persona = check_persona(persona)
        self.thinker.check_voice(getattr(persona, "voice", ""))
        image = decode_portrait(portrait, face_points=face_points, size=video_size,
                                character=getattr(persona, "character", None),
                                placeholder=self.config.name in TEST_PRESETS)
        return Session(self, image, persona, self.warnings + list(image.warnings))
