"""Generate a corpus directory: plan clips from (seed, index), render them in worker processes, write manifest.

Split by identity AND sentence: identities and sentences with id % 10 == 0 are held out. Clip index i is
assigned `SPLIT_CYCLE[i % 20]`: 17/20 train (both seen), 1/20 each of heldout_identity, heldout_sentence,
heldout_both. Each clip's content is a function of (seed, index) only, so any worker count gives the same bytes.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine_core.data.synth.characters import NUM_IDENTITIES
from engine_core.data.synth.identities import identity_params
from engine_core.data.synth.render import SAMPLES_PER_FRAME, render_clip, write_clip
from engine_core.data.synth.sentences import NUM_SENTENCES, sentence_text
from engine_core.data.synth.speech import SAMPLE_RATE, VoiceParams, sample_voice, synthesize
from sdk.protocol.constants import FPS, FRAME_SIZE

MANIFEST_VERSION = 1
SPLITS = ("train", "heldout_identity", "heldout_sentence", "heldout_both")
SPLIT_CYCLE = ["heldout_both", "heldout_identity", "heldout_sentence"] + ["train"] * 17


@dataclass(frozen=True)
class CorpusOptions:
    """What `generate_corpus` makes."""

    out: Path
    clips: int
    seed: int = 0
    seconds_min: float = 2.0
    seconds_max: float = 8.0
    workers: int = 1
    mp4: bool = False
    identities: int = NUM_IDENTITIES   # size of the identity pool (ids 0..identities-1)

    def validate(self) -> None:
        """Raise ValueError on inconsistent options."""
        if self.clips < 1:
            raise ValueError("--clips must be >= 1")
        if not 0.5 <= self.seconds_min <= self.seconds_max:
            raise ValueError("need 0.5 <= --seconds-min <= --seconds-max")
        if self.workers < 1:
            raise ValueError("--workers must be >= 1")
        if not 20 <= self.identities <= NUM_IDENTITIES:
            raise ValueError(f"--identities must be in [20, {NUM_IDENTITIES}]")


def pick_id(rng: np.random.Generator, pool: int, held: bool) -> int:
    """An id below `pool` with id % 10 == 0 when `held`, else id % 10 != 0."""
    tens = max(1, pool // 10)
    base = 10 * int(rng.integers(tens))
    return base if held else base + int(rng.integers(1, 10))


def plan_clip(index: int, opt: CorpusOptions) -> dict:
    """Render and write clip `index`; returns its manifest entry."""
    rng = np.random.default_rng([int(opt.seed), int(index), 5])
    split = SPLIT_CYCLE[index % len(SPLIT_CYCLE)]
    held_id = split in ("heldout_identity", "heldout_both")
    held_sent = split in ("heldout_sentence", "heldout_both")
    identity = pick_id(rng, opt.identities, held_id)
    voice: VoiceParams = sample_voice(rng)
    clip_seed = int(rng.integers(2**31 - 1))
    budget = opt.seconds_max - 0.6  # leave room for lead/tail silence
    for _attempt in range(6):  # re-draw the sentence while the speech is too long for --seconds-max
        sentence = pick_id(rng, NUM_SENTENCES, held_sent)
        text = sentence_text(sentence)
        speech = synthesize(text, voice, clip_seed)
        if len(speech.audio) / SAMPLE_RATE <= budget:
            break
    room = max(0.0, opt.seconds_max - len(speech.audio) / SAMPLE_RATE)
    lead = float(rng.uniform(0.2, 0.35 + 0.5 * min(1.0, room / 2)))
    tail = float(rng.uniform(0.2, 0.35 + 0.5 * min(1.0, room / 2)))
    clip = render_clip(identity_params(identity), text, voice, clip_seed, lead_s=lead, tail_s=tail,
                       min_seconds=opt.seconds_min, speech=speech)
    cid = f"{index:06d}"
    rel = f"clips/{cid}"
    clip.meta.update({"id": cid, "split": split, "identity_id": identity, "sentence_id": sentence})
    write_clip(clip, Path(opt.out) / rel, mp4=opt.mp4)
    assert clip.audio.shape[0] == clip.frames.shape[0] * SAMPLES_PER_FRAME
    return {"id": cid, "dir": rel, "split": split, "identity": identity, "sentence": sentence, "text": text,
            "frames": int(clip.frames.shape[0]), "seed": clip_seed}


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)


def _work(args: tuple[int, CorpusOptions]) -> dict:
    return plan_clip(*args)


def write_manifest(out: Path, entries: list[dict]) -> Path:
    """DIR/manifest.json with the clips sorted by id."""
    path = Path(out) / "manifest.json"
    doc = {"version": MANIFEST_VERSION, "fps": FPS, "sample_rate": SAMPLE_RATE, "size": FRAME_SIZE,
           "clips": sorted(entries, key=lambda e: e["id"])}
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return path


def read_manifest(data_dir: Path) -> dict:
    """Load and check DIR/manifest.json."""
    path = Path(data_dir) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"no manifest.json in {data_dir}")
    doc = json.loads(path.read_text(encoding="utf-8"))
    if doc.get("version") != MANIFEST_VERSION:
        raise ValueError(f"{path}: unsupported manifest version {doc.get('version')}")
    return doc


def generate_corpus(opt: CorpusOptions, progress: bool = True) -> dict:
    """Render `opt.clips` clips into `opt.out` (with `opt.workers` processes) and write the manifest.

    Returns {"manifest": path, "clips": n, "seconds": wall time, "clips_per_s": rate, "bytes": size on disk}.
    """
    from tqdm import tqdm

    opt.validate()
    out = Path(opt.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(i, opt) for i in range(opt.clips)]
    entries: list[dict] = []
    t0 = time.perf_counter()
    bar = tqdm(total=opt.clips, unit="clip", disable=not progress, desc="synth")

    def tick(e: dict) -> None:
        entries.append(e)
        bar.update(1)
        bar.set_postfix(clips_per_s=f"{len(entries) / max(1e-9, time.perf_counter() - t0):.2f}")

    if opt.workers == 1:
        _init_worker()
        for job in jobs:
            tick(_work(job))
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")  # onnxruntime and fork do not mix
        with ctx.Pool(opt.workers, initializer=_init_worker) as pool:
            for e in pool.imap_unordered(_work, jobs, chunksize=1):
                tick(e)
    bar.close()
    path = write_manifest(out, entries)
    secs = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return {"manifest": str(path), "clips": len(entries), "seconds": secs, "clips_per_s": len(entries) / secs,
            "bytes": size, "workers": opt.workers, "cpu_count": os.cpu_count()}
