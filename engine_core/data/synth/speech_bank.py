"""A speech bank: the corpus's speech made once (Piper + the cascade LM), its video drawn anywhere.

The GPU training machines have neither Piper's voice (60 MB) nor SmolLM2 (98 MB), and a corpus's frames are far
too large to carry there. So the corpus is made in two steps:

    xstreamer data bank --out bank.npz --utterances 300 --seed 1        # here: speech + LM hidden states
    xstreamer data render --bank bank.npz --out corpus --clips 2400     # there: characters drawn with numpy/cv2

The bank holds, per utterance: PCM16 speech, its phoneme and word timings, the voice variation, the
SmolLM2 hidden state of every token of the text (what the cascade Thinker hands the Actor) with each token's
character offset, and a list of training identities with the candidate index that passed the face check
(so drawing needs no face detector). `render` writes the corpus format of `engine_core.data.synth.corpus`
plus `hidden.npz` (hidden [n, 576], frames [n]) per clip.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from engine_core.data.synth.characters import NUM_IDENTITIES, sample_identity
from engine_core.data.synth.identities import MAX_ATTEMPTS, face_detected
from engine_core.data.synth.corpus import pick_id, write_manifest
from engine_core.data.synth.render import SAMPLE_RATE, SAMPLES_PER_FRAME, render_clip, write_clip
from engine_core.data.synth.sentences import NUM_SENTENCES, sentence_text
from engine_core.data.synth.speech import Speech, VoiceParams, sample_voice, synthesize

BANK_VERSION = 1


def _passing_attempt(identity: int) -> int:
    from engine_core.data.synth.draw import FaceState, draw_frame

    for attempt in range(MAX_ATTEMPTS):
        if face_detected(draw_frame(sample_identity(identity, attempt), FaceState())):
            return attempt
    return MAX_ATTEMPTS - 1


def build_bank(out: Path, utterances: int, seed: int = 0, identities: int = 4000, seconds_max: float = 5.5,
               progress: bool = True) -> dict:
    """Synthesize `utterances` training sentences (and pick `identities` training characters) into `out`."""
    from tqdm import tqdm

    from engine_core.thinker.cascade_assets import load_smollm2
    from engine_core.thinker.cascade_text import StreamingLM

    lm = StreamingLM(*load_smollm2())
    arrays: dict[str, np.ndarray] = {}
    plans = []
    for u in tqdm(range(utterances), desc="speech bank", disable=not progress):
        rng = np.random.default_rng([int(seed), u, 7])
        voice = sample_voice(rng)
        clip_seed = int(rng.integers(2**31 - 1))
        for _ in range(8):       # a training sentence (never a held-out one) whose speech fits the clip length
            sentence = pick_id(rng, NUM_SENTENCES, held=False)
            text = sentence_text(sentence)
            speech = synthesize(text, voice, clip_seed)
            if len(speech.audio) / SAMPLE_RATE <= seconds_max:
                break
        starts, hidden = lm.encode_text(text)
        arrays[f"audio_{u}"] = np.round(np.clip(speech.audio, -1, 1) * 32767).astype(np.int16)
        arrays[f"hidden_{u}"] = hidden.detach().numpy().astype(np.float16)
        plans.append({"text": text, "sentence": sentence, "voice": voice.to_dict(), "seed": clip_seed,
                      "phonemes": speech.phonemes, "words": speech.words, "token_chars": list(starts)})
    rng = np.random.default_rng([int(seed), 99])
    ids = sorted({pick_id(rng, NUM_IDENTITIES, held=False) for _ in range(identities)})
    chars = [[i, _passing_attempt(i)] for i in tqdm(ids, desc="identities", disable=not progress)]
    meta = {"version": BANK_VERSION, "seed": seed, "utterances": plans, "identities": chars}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    return {"utterances": utterances, "identities": len(chars), "bytes": out.stat().st_size}


def token_frames(text: str, words: list, token_chars: list[int], lead_s: float) -> np.ndarray:
    """Frame (25 Hz, from the clip's start) of each token: the middle of the word its first character is in."""
    spans, pos = [], 0
    for w, s, e in words:
        at = text.find(w, pos)
        at = pos if at < 0 else at
        spans.append((at, at + len(w), (s + e) / 2))
        pos = at + len(w)
    frames = []
    for c in token_chars:
        t = next((mid for a, b, mid in spans if c < b), spans[-1][2] if spans else 0.0)
        frames.append(int((lead_s + t) * 25))
    return np.asarray(frames, np.int64)


def _render_one(args: tuple[str, int, int, str]) -> dict:
    bank_path, index, seed, out = args
    bank = _load(bank_path)
    meta = bank["meta"]
    plans, chars = meta["utterances"], meta["identities"]
    rng = np.random.default_rng([int(seed), int(index), 13])
    u = index % len(plans)
    plan = plans[u]
    identity, attempt = chars[int(rng.integers(len(chars)))]
    audio = bank["z"][f"audio_{u}"].astype(np.float32) / 32767.0
    speech = Speech(audio=audio, phonemes=[tuple(p) for p in plan["phonemes"]], words=[tuple(w) for w in plan["words"]])
    lead, tail = float(rng.uniform(0.2, 0.9)), float(rng.uniform(0.2, 0.9))
    clip = render_clip(sample_identity(identity, attempt), plan["text"], VoiceParams(**plan["voice"]), plan["seed"],
                       lead_s=lead, tail_s=tail, min_seconds=2.0, speech=speech)
    cid = f"{index:06d}"
    rel = f"clips/{cid}"
    clip.meta.update({"id": cid, "split": "train", "identity_id": identity, "sentence_id": plan["sentence"]})
    write_clip(clip, Path(out) / rel)
    lead_audio = round(lead * SAMPLE_RATE) / SAMPLE_RATE
    frames = token_frames(plan["text"], plan["words"], plan["token_chars"], lead_audio)
    np.savez(Path(out) / rel / "hidden.npz", hidden=bank["z"][f"hidden_{u}"].astype(np.float32),
             frames=np.clip(frames, 0, clip.frames.shape[0] - 1))
    assert clip.audio.shape[0] == clip.frames.shape[0] * SAMPLES_PER_FRAME
    return {"id": cid, "dir": rel, "split": "train", "identity": identity, "sentence": plan["sentence"],
            "text": plan["text"], "frames": int(clip.frames.shape[0]), "seed": plan["seed"]}


_BANKS: dict[str, dict] = {}


def _load(path: str) -> dict:
    if path not in _BANKS:
        z = np.load(path)
        _BANKS[path] = {"z": z, "meta": json.loads(bytes(z["meta"]).decode())}
    return _BANKS[path]


def render_corpus(bank: Path, out: Path, clips: int, seed: int = 0, workers: int = 1, progress: bool = True) -> dict:
    """Draw `clips` training clips from the bank's speech and characters (no Piper, no LM, no face detector)."""
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(str(bank), i, seed, str(out)) for i in range(clips)]
    workers = max(1, min(workers, os.cpu_count() or 1))
    if workers == 1:
        entries = [_render_one(j) for j in tqdm(jobs, desc="render", disable=not progress)]
    else:
        with ProcessPoolExecutor(workers) as pool:
            entries = list(tqdm(pool.map(_render_one, jobs, chunksize=4), total=clips, desc="render",
                                disable=not progress))
    write_manifest(out, entries)
    return {"clips": clips, "frames": sum(e["frames"] for e in entries)}
