"""Actor training data: clips of a corpus directory turned into latents + conditioning, and random windows.

Corpus layout (engine_core/data/synth): DIR/manifest.json {"clips": [{"id", "dir", "split", ...}]};
each clip dir has frames.npz ("frames" uint8 [T,256,256,3]), audio.wav (22,050 Hz PCM16 mono),
meta.json ("text", "words": [[word, start_s, end_s], ...], ...), portrait.png.

Conditioning per clip:
  - speech features (engine_core.thinker.features) of the clip's audio, 80 per frame;
  - hidden states: `hidden.npz` in the clip dir when the dataset provides it ("hidden" float [n,D],
    "frames" int [n]); otherwise one token per word, embedded by a frozen seeded table (the toy Thinker's
    embedding, i.e. exactly what the tiny preset's Thinker produces) at the word's first frame. For the
    default preset this is a stand-in for the cascade LM's states (documented in docs/engine.md).
"""

from __future__ import annotations

import json
import wave
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from engine_core.config import ModelConfig
from engine_core.thinker.base import SAMPLES_PER_FRAME
from engine_core.thinker.features import speech_features
from engine_core.thinker.toy import ToyThinker


@dataclass
class ClipTensors:
    """One clip ready for training. latents [T,C,h,w] (float16); speech [T,S]; hidden [n,D]; hidden_frames [n];
    text_targets [T] (token id at a word's first frame, -100 elsewhere); identity [C,h,w];
    mouth [h,w] (1 on the latent cells of the clip's mouth box, dilated by one cell; zeros when unknown)."""

    latents: torch.Tensor
    speech: torch.Tensor
    hidden: torch.Tensor
    hidden_frames: torch.Tensor
    text_targets: torch.Tensor
    identity: torch.Tensor
    mouth: torch.Tensor


def mouth_cells(box: list[int] | None, cfg: ModelConfig) -> torch.Tensor:
    """Latent-grid mask [h,w] of a pixel box [x0, y0, x1, y1] (dilated by one cell); zeros for None."""
    hw, f = cfg.latent_hw, cfg.vae.spatial_factor
    mask = torch.zeros(hw, hw)
    if box:
        x0, y0, x1, y1 = (int(v) for v in box)
        c0, r0 = max(0, x0 // f - 1), max(0, y0 // f - 1)
        c1, r1 = min(hw, -(-x1 // f) + 1), min(hw, -(-y1 // f) + 1)
        mask[r0:r1, c0:c1] = 1.0
    return mask


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{path}: expected PCM16 mono")
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0


def list_clips(data_dir: str | Path, split: str | None = "train") -> list[Path]:
    """Clip directories of the manifest (those of `split` when the manifest names splits)."""
    data_dir = Path(data_dir)
    man = data_dir / "manifest.json"
    if not man.is_file():
        raise FileNotFoundError(f"no manifest.json in {data_dir}")
    clips = json.loads(man.read_text(encoding="utf-8"))["clips"]
    chosen = [c for c in clips if split is None or c.get("split", split) == split]
    if not chosen:
        raise ValueError(f"{man}: no clips of split {split!r}")
    return [data_dir / c["dir"] for c in chosen]


@torch.no_grad()
def load_clip_tensors(clip_dir: Path, cfg: ModelConfig, vae, words: ToyThinker, batch: int = 32) -> ClipTensors:
    """Encode one clip with the frozen VAE and compute its conditioning."""
    with np.load(clip_dir / "frames.npz") as z:
        frames = z["frames"]
    t = frames.shape[0]
    audio = _read_wav(clip_dir / "audio.wav")
    audio = np.pad(audio, (0, max(0, t * SAMPLES_PER_FRAME - audio.size)))[: t * SAMPLES_PER_FRAME]
    meta = json.loads((clip_dir / "meta.json").read_text(encoding="utf-8"))
    lat = torch.cat([vae.encode(frames[i:i + batch]).float().cpu() for i in range(0, t, batch)])
    portrait = cv2.imread(str(clip_dir / "portrait.png"), cv2.IMREAD_COLOR)
    portrait = frames[0] if portrait is None else cv2.resize(portrait[..., ::-1], (256, 256))
    identity = vae.encode(np.ascontiguousarray(portrait)[None]).float().cpu()[0]
    targets = torch.full((t,), -100, dtype=torch.long)
    if (clip_dir / "hidden.npz").is_file():
        with np.load(clip_dir / "hidden.npz") as z:
            hidden, hframes = torch.from_numpy(z["hidden"]).float(), torch.from_numpy(z["frames"]).long()
    else:
        ws = meta.get("words") or [[w, 0.0, 0.0] for w in str(meta.get("text", "")).split()]
        hframes = torch.tensor([min(t - 1, int(s * 25)) for _, s, _ in ws], dtype=torch.long)
        ids = torch.tensor([words.token_id(w) for w, _, _ in ws], dtype=torch.long)
        hidden = words.embedding[ids] if len(ws) else torch.zeros(0, cfg.thinker.hidden_size)
        if len(ws):
            targets[hframes] = ids % max(cfg.thinker.text_vocab, 1)
    mouth = mouth_cells(meta.get("mouth_box"), cfg)
    return ClipTensors(lat.half(), speech_features(audio), hidden, hframes, targets, identity, mouth)


def sample_batch(clips: list[ClipTensors], cfg: ModelConfig, batch: int, gen: torch.Generator,
                 max_offset: int = 64) -> dict[str, torch.Tensor | int]:
    """B random windows of K = train_chunks chunks -> tensors for Actor.forward (full-sequence mode).

    Returns x0 [B,K,Fl,C,h,w], speech [B,K,F,S], hidden [B,R+K,M,D], hidden_frames, hidden_mask,
    text_targets [B,K,F], identity [B,C,h,w], mouth [B,h,w], first_chunk (a random absolute offset, shared by
    the batch).
    """
    f, k, r, m = cfg.chunk_frames, cfg.train_chunks, cfg.cross_chunks, cfg.max_hidden_tokens
    tf, fl = cfg.vae.temporal_factor, cfg.latent_frames
    first = int(torch.randint(0, max_offset + 1, (1,), generator=gen))
    xs, sp, hid, hfr, hmask, tt, ids, mouths = [], [], [], [], [], [], [], []
    for _ in range(batch):
        c = clips[int(torch.randint(0, len(clips), (1,), generator=gen))]
        t = c.speech.shape[0]
        need = k * f
        start = int(torch.randint(0, max(1, t - need + 1), (1,), generator=gen))
        idx = (torch.arange(need) + start).clamp(max=t - 1)                          # frames of the window
        lat_idx = (torch.arange(k * fl) * tf + start).clamp(max=c.latents.shape[0] - 1)
        xs.append(c.latents[lat_idx].float().view(k, fl, *c.latents.shape[1:]))
        sp.append(c.speech[idx].view(k, f, -1))
        tt.append(c.text_targets[idx].view(k, f))
        h = torch.zeros(r + k, m, cfg.thinker.hidden_size)
        fr = torch.zeros(r + k, m, dtype=torch.long)
        mk = torch.zeros(r + k, m, dtype=torch.bool)
        for j in range(-r, k):
            sel = ((c.hidden_frames >= start + j * f) & (c.hidden_frames < start + (j + 1) * f)).nonzero().flatten()
            sel = sel[:m]
            h[j + r, :len(sel)] = c.hidden[sel]
            fr[j + r, :len(sel)] = c.hidden_frames[sel] - start + first * f
            mk[j + r, :len(sel)] = True
        hid.append(h), hfr.append(fr), hmask.append(mk)
        ids.append(c.identity)
        mouths.append(c.mouth)
    return {"x0": torch.stack(xs), "speech": torch.stack(sp), "hidden": torch.stack(hid),
            "hidden_frames": torch.stack(hfr), "hidden_mask": torch.stack(hmask), "text_targets": torch.stack(tt),
            "identity": torch.stack(ids), "mouth": torch.stack(mouths), "first_chunk": first}
