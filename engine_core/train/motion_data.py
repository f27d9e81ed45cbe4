"""Training windows for the motion Actor, made straight from a speech bank (engine_core/data/synth/speech_bank.py).

A motion clip needs no pixels: per clip, a bank utterance with random silence before and after it (listening), its
speech features, the LM hidden state of each token at the middle of its word, the procedural motion of every frame
(engine_core/data/synth/motion_tracks.py: ground truth made by rules, not measured on people) and the normalised
landmarks of a training character (the identity reference), jittered towards and around the mean face so the
Actor meets photos' geometry too. The clips become `ClipTensors`, sampled by the Actor's `WindowSampler`.

A bank is either the speech bank itself (PCM per utterance) or its compact form (`compact_bank`: the speech
features of each utterance instead of its audio, the characters' landmarks included; ~4x smaller, so it travels to
a GPU machine). Silences are whole frames, so a clip's features are the utterance's framed by silent frames and
both forms give the same clips.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from engine_core.config import ModelConfig
from engine_core.data.synth.motion_tracks import motion_track
from engine_core.data.synth.speech_bank import token_frames
from engine_core.motion.codec import MotionCodec
from engine_core.thinker.base import SAMPLE_RATE, SAMPLES_PER_FRAME
from engine_core.thinker.features import silence_features, speech_features
from engine_core.train.data import ClipTensors
from sdk.portrait.template import MEAN_FACE, normalised

IDENTITY_JITTER = 0.03        # std (inter-ocular units) of the noise added to a character's landmarks
HELD_OUT = 10                 # bank utterances with index % HELD_OUT == 0 are kept out of training (validation)


def load_bank(path: str | Path) -> tuple[dict, np.lib.npyio.NpzFile]:
    """(meta, arrays) of a speech bank file."""
    z = np.load(path)
    return json.loads(bytes(z["meta"]).decode()), z


def character_landmarks(identities: list[list[int]], limit: int = 400) -> np.ndarray:
    """float32 [n, 68, 2] normalised landmarks of the bank's training characters (from their drawings' geometry)."""
    from engine_core.data.synth.characters import sample_identity
    from engine_core.data.synth.draw import landmarks68

    return np.stack([normalised(landmarks68(sample_identity(i, a))) for i, a in identities[:limit]])


def utterance_features(arrays, u: int) -> torch.Tensor:
    """float32 [T, 80] speech features of utterance `u` on whole frames (from a compact bank, or its audio)."""
    if f"features_{u}" in arrays:
        return torch.from_numpy(arrays[f"features_{u}"].astype(np.float32))
    speech = arrays[f"audio_{u}"].astype(np.float32) / 32767.0
    framed = np.zeros(-(-len(speech) // SAMPLES_PER_FRAME) * SAMPLES_PER_FRAME, np.float32)
    framed[:len(speech)] = speech
    return speech_features(framed)


def motion_clip(meta: dict, arrays, u: int, faces: np.ndarray, rng: np.random.Generator) -> ClipTensors:
    """One training clip of bank utterance `u` (see the module docstring)."""
    plan = meta["utterances"][u]
    feats = utterance_features(arrays, u)
    lead_f, tail_f = int(rng.integers(5, 40)), int(rng.integers(8, 40))       # 0.2-1.6 s, 0.3-1.6 s of silence
    n_frames = lead_f + len(feats) + tail_f
    silent = silence_features()[None]
    speech_feats = torch.cat([silent.expand(lead_f, -1), feats, silent.expand(tail_f, -1)])
    offset = lead_f * SAMPLES_PER_FRAME / SAMPLE_RATE
    motion = motion_track(plan["text"], [tuple(p) for p in plan["phonemes"]], [tuple(w) for w in plan["words"]],
                          n_frames, offset, rng)
    hidden = torch.from_numpy(arrays[f"hidden_{u}"].astype(np.float32))
    frames = token_frames(plan["text"], plan["words"], plan["token_chars"], offset)
    face = faces[int(rng.integers(len(faces)))].astype(np.float64)
    face = face + rng.uniform(0.0, 0.6) * (MEAN_FACE - face) + rng.normal(0.0, IDENTITY_JITTER, face.shape)
    return ClipTensors(latents=MotionCodec.encode_motion(motion).half(), speech=speech_feats,
                       hidden=hidden, hidden_frames=torch.from_numpy(np.clip(frames, 0, n_frames - 1)),
                       text_targets=torch.full((n_frames,), -100, dtype=torch.long),
                       identity=torch.from_numpy(face.astype(np.float32).reshape(1, -1)),
                       mouth=torch.zeros(1, 1))


def motion_clips(bank: str | Path, cfg: ModelConfig, clips: int, seed: int = 0, split: str = "train",
                 faces: np.ndarray | None = None) -> list[ClipTensors]:
    """`clips` motion clips from the bank's utterances of `split` ("train": index % HELD_OUT != 0, "val": the
    rest), each utterance with its own random silences, volume, character and motion."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', not {split!r}")
    meta, arrays = load_bank(bank)
    width = arrays["hidden_0"].shape[1]
    if width != cfg.thinker.hidden_size:
        raise ValueError(f"{bank}: its LM states are {width} wide; preset {cfg.name!r} reads "
                         f"{cfg.thinker.hidden_size}")
    n = len(meta["utterances"])
    pool = [u for u in range(n) if (u % HELD_OUT == 0) == (split == "val")]
    if not pool:
        raise ValueError(f"{bank}: no utterances of split {split!r}")
    if faces is None:
        faces = np.asarray(meta["landmarks"]) if "landmarks" in meta else character_landmarks(meta["identities"])
    rng = np.random.default_rng([int(seed), 17])
    return [motion_clip(meta, arrays, pool[i % len(pool)], faces, rng) for i in range(clips)]


def compact_bank(bank: str | Path, out: str | Path) -> dict:
    """Write the compact form of a speech bank (see the module docstring) to `out`; returns its size."""
    meta, arrays = load_bank(bank)
    meta = dict(meta, landmarks=character_landmarks(meta["identities"]).round(4).tolist())
    packed = {}
    for u in range(len(meta["utterances"])):
        packed[f"features_{u}"] = utterance_features(arrays, u).numpy().astype(np.float16)
        packed[f"hidden_{u}"] = arrays[f"hidden_{u}"]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **packed)
    return {"utterances": len(meta["utterances"]), "bytes": out.stat().st_size}
