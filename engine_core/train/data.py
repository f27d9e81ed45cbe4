"""Actor training data: clips of a corpus directory turned into latents + conditioning, and random windows.

Corpus layout (engine_core/data/synth): DIR/manifest.json {"clips": [{"id", "dir", "split", ...}]};
each clip dir has frames.npz ("frames" uint8 [T,256,256,3]), audio.wav (22,050 Hz PCM16 mono),
meta.json ("text", "words": [[word, start_s, end_s], ...], ...), portrait.png.

Conditioning per clip:
  - speech features (engine_core.thinker.features) of the clip's audio, 80 per frame;
  - hidden states: `hidden.npz` in the clip dir when the dataset provides it ("hidden" float [n,D],
    "frames" int [n], optionally "tokens" int [n]: each state's token as a joint id, a text id or text_vocab + an
    audio code, the Actor's token-stream targets); otherwise one token per word, embedded by a frozen seeded table (the toy Thinker's
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
    """One clip ready for training. latents [T,C,h,w] (float16; with a temporal codec, temporal_factor > 1, the
    latents of its whole chunks, each chunk encoded alone as the engine decodes it: [(T // F) * Fl, C,h,w]);
    speech [T,S]; hidden [n,D]; hidden_frames [n];
    text_targets [T] (token id at a word's first frame, -100 elsewhere); identity [C,h,w];
    mouth [h,w] (1 on the latent cells of the clip's mouth box, dilated by one cell; zeros when unknown);
    token_ids [n]: the joint id of each hidden state's token (-100 unknown), the token stream's targets."""

    latents: torch.Tensor
    speech: torch.Tensor
    hidden: torch.Tensor
    hidden_frames: torch.Tensor
    text_targets: torch.Tensor
    identity: torch.Tensor
    mouth: torch.Tensor
    token_ids: torch.Tensor | None = None


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
    if cfg.vae.temporal_factor > 1:       # a causal video codec (LTX): 1 + tf*k frames in, so chunk by chunk
        f = cfg.chunk_frames
        if t < f:
            raise ValueError(f"{clip_dir}: {t} frames, fewer than one {f}-frame chunk")
        lat = torch.cat([vae.encode(frames[j * f:(j + 1) * f]).float().cpu() for j in range(t // f)])
    else:
        lat = torch.cat([vae.encode(frames[i:i + batch]).float().cpu() for i in range(0, t, batch)])
    portrait = cv2.imread(str(clip_dir / "portrait.png"), cv2.IMREAD_COLOR)
    portrait = frames[0] if portrait is None else cv2.resize(portrait[..., ::-1], (256, 256))
    identity = vae.encode(np.ascontiguousarray(portrait)[None]).float().cpu()[0]
    targets = torch.full((t,), -100, dtype=torch.long)
    if (clip_dir / "hidden.npz").is_file():
        with np.load(clip_dir / "hidden.npz") as z:
            hidden, hframes = torch.from_numpy(z["hidden"]).float(), torch.from_numpy(z["frames"]).long()
            token_ids = (torch.from_numpy(z["tokens"]).long() if "tokens" in z.files
                         else torch.full((len(hframes),), -100, dtype=torch.long))
    else:
        ws = meta.get("words") or [[w, 0.0, 0.0] for w in str(meta.get("text", "")).split()]
        hframes = torch.tensor([min(t - 1, int(s * 25)) for _, s, _ in ws], dtype=torch.long)
        ids = torch.tensor([words.token_id(w) for w, _, _ in ws], dtype=torch.long)
        hidden = words.embedding[ids] if len(ws) else torch.zeros(0, cfg.thinker.hidden_size)
        if len(ws):
            targets[hframes] = ids % max(cfg.thinker.text_vocab, 1)
        token_ids = ids % max(cfg.thinker.text_vocab, 1) if cfg.thinker.text_vocab else torch.full_like(ids, -100)
    mouth = mouth_cells(meta.get("mouth_box"), cfg)
    return ClipTensors(lat.half(), speech_features(audio), hidden, hframes, targets, identity, mouth, token_ids)


class WindowSampler:
    """Random training windows of K = train_chunks chunks, gathered from all clips at once.

    The clips' tensors are concatenated once (latents, speech, text targets, hidden states sorted by frame),
    so drawing a batch is a few index gathers rather than a Python loop per sample and chunk (default preset,
    2-core CPU: 2.0 ms at batch 32 and 16 ms at batch 256, against 21 and 74 ms for the loop; docs/default-model.md).
    Only the random draws (one window offset per batch, one clip and one start frame per sample) are made one by
    one, from `gen`.
    """

    def __init__(self, clips: list[ClipTensors], cfg: ModelConfig) -> None:
        if not clips:
            raise ValueError("no clips to sample from")
        self.cfg = cfg
        self.n_frames = torch.tensor([c.speech.shape[0] for c in clips])
        self.n_latents = torch.tensor([c.latents.shape[0] for c in clips])
        self.frame0 = torch.cumsum(self.n_frames, 0) - self.n_frames
        self.latent0 = torch.cumsum(self.n_latents, 0) - self.n_latents
        self.latents = torch.cat([c.latents for c in clips])                       # float16 [sum T_lat, C,h,w]
        self.speech = torch.cat([c.speech for c in clips])
        self.targets = torch.cat([c.text_targets for c in clips])
        self.identity = torch.stack([c.identity for c in clips])
        self.mouth = torch.stack([c.mouth for c in clips])
        hidden, frames, first_tok, n_tok, ids, prev = [], [], [], 0, [], []
        bos = cfg.thinker.text_vocab + cfg.thinker.audio_vocab
        for c in clips:
            order = torch.argsort(c.hidden_frames, stable=True)
            hf = c.hidden_frames[order]
            hidden.append(c.hidden[order].float())
            frames.append(hf)
            tid = (c.token_ids[order] if c.token_ids is not None else torch.full((len(hf),), -100, dtype=torch.long))
            ids.append(tid)
            prev.append(torch.cat([torch.tensor([bos]), tid[:-1].clamp(min=0)]) if len(hf) else tid)  # BOS, then the last
            # first_tok[f]: index (into the concatenation) of the clip's first token at frame >= f, f = 0..T
            first_tok.append(n_tok + torch.searchsorted(hf, torch.arange(c.speech.shape[0] + 1)))
            n_tok += len(hf)
        dim = cfg.thinker.hidden_size
        self.hidden = torch.cat([*hidden, torch.zeros(1, dim)])                     # + one zero row: padding
        self.hidden_frames = torch.cat([*frames, torch.zeros(1, dtype=torch.long)])
        self.first_tok = torch.cat(first_tok)
        self.token_ids = torch.cat([*ids, torch.full((1,), -100, dtype=torch.long)])   # targets of the token slots
        self.token_prev = torch.cat([*prev, torch.full((1,), bos + 1, dtype=torch.long)])  # their inputs (PAD last)
        self.first_tok0 = torch.cumsum(self.n_frames + 1, 0) - (self.n_frames + 1)
        self.pad_tok = n_tok

    def sample(self, batch: int, gen: torch.Generator, max_offset: int = 64) -> dict[str, torch.Tensor | int]:
        """B random windows -> tensors for Actor.forward (full-sequence mode).

        Returns x0 [B,K,Fl,C,h,w] (float16, as stored), speech [B,K,F,S], hidden [B,R+K,M,D], hidden_frames, hidden_mask,
        text_targets [B,K,F], identity [B,C,h,w], mouth [B,h,w], first_chunk (a random absolute offset, shared
        by the batch), token_targets / token_inputs [B,K,M] (the token slots' joint ids and inputs: -100 / PAD where
        a slot has no token). Hidden slots hold a chunk's first M tokens by frame, zeros (and mask False) after them.
        """
        cfg = self.cfg
        f, k, r, m = cfg.chunk_frames, cfg.train_chunks, cfg.cross_chunks, cfg.max_hidden_tokens
        tf, fl, need = cfg.vae.temporal_factor, cfg.latent_frames, cfg.train_chunks * cfg.chunk_frames
        first = int(torch.randint(0, max_offset + 1, (1,), generator=gen))
        ci, st = [], []
        for _ in range(batch):
            c = int(torch.randint(0, len(self.n_frames), (1,), generator=gen))
            t = int(self.n_frames[c])
            ci.append(c)
            if tf > 1:      # windows start on the clip's chunk grid, where its latents were encoded
                st.append(f * int(torch.randint(0, max(1, t // f - k + 1), (1,), generator=gen)))
            else:
                st.append(int(torch.randint(0, max(1, t - need + 1), (1,), generator=gen)))
        ci_t, start = torch.tensor(ci), torch.tensor(st)
        t, tl = self.n_frames[ci_t][:, None], self.n_latents[ci_t][:, None]
        idx = torch.minimum(start[:, None] + torch.arange(need), t - 1) + self.frame0[ci_t][:, None]        # [B,KF]
        lat_start = start // f * fl if tf > 1 else start
        lat_idx = torch.minimum(lat_start[:, None] + torch.arange(k * fl), tl - 1) + self.latent0[ci_t][:, None]
        x0 = self.latents[lat_idx].view(batch, k, fl, *self.latents.shape[1:])       # float16: cast on the device
        # hidden tokens of chunks -r .. k-1 of each window: frames [start + j*f, start + (j+1)*f)
        edges = start[:, None] + torch.arange(-r, k + 1) * f                                              # [B,R+K+1]
        tok = self.first_tok[self.first_tok0[ci_t][:, None] + torch.minimum(edges.clamp(min=0), t)]
        lo, hi = tok[:, :-1], tok[:, 1:]                                                                  # [B,R+K]
        slot = lo[..., None] + torch.arange(m)                                                            # [B,R+K,M]
        mask = slot < hi[..., None]
        slot = torch.where(mask, slot, self.pad_tok)
        hidden = self.hidden[slot]
        frames = torch.where(mask, self.hidden_frames[slot] - start[:, None, None] + first * f, 0)
        return {"x0": x0, "speech": self.speech[idx].view(batch, k, f, -1), "hidden": hidden,
                "hidden_frames": frames, "hidden_mask": mask, "text_targets": self.targets[idx].view(batch, k, f),
                "identity": self.identity[ci_t], "mouth": self.mouth[ci_t], "first_chunk": first,
                "token_targets": self.token_ids[slot[:, r:]], "token_inputs": self.token_prev[slot[:, r:]]}
