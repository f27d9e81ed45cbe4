"""`xstreamer eval portraits`: how faithfully a motion-space model animates given portraits (photos, paintings,
drawings, the built-in characters), with no ground truth needed.

Per portrait the engine speaks held-out corpus sentences (the eval's `CorpusVoice`, so each phoneme's time is known)
and the frames are measured against the portrait itself:
  - sharpness: variance of the Laplacian of each frame over the portrait's (the frame shows the portrait's region);
  - eye_band_psnr: PSNR of the eyes-and-forehead band (from above the brows to below the lower lids, jaw to jaw)
    against the portrait, on frames whose eyes are open (no blink), re-drawn from the generated motion without the
    head's pose, i.e. while only the face moves; `eye_band_psnr_posed` is the same band of the frames as made
    (the head sways and nods, so the band moves: a measure of how much, not of fidelity);
  - id_sim: cosine of dlib's 128-d face embeddings, portrait vs frames;
  - open vowels vs p/b/m: how far the lips are apart as drawn (the rig's inner-lip gap, in inter-ocular units,
    beyond the portrait's own) at the widest frame of each open vowel (viseme AA, O) and the narrowest of each p/b/m
    (PBM), and the share of p/b/m whose lips meet (gap < SHUT); the jawOpen channel at both, for reference.
Also `--frames-png`: a strip of the portrait and frames at chosen moments, for docs/default-model.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from engine_core.data.synth.visemes import viseme_of
from engine_core.motion.channels import INDEX, NUM_BLENDSHAPES

OPEN_VISEMES, CLOSED_VISEMES = ("AA", "O"), ("PBM",)
SHUT = 0.03          # lips this close (inter-ocular units) are shut


def lapvar(img: np.ndarray) -> float:
    """Variance of the Laplacian of an RGB(A) image's luminance."""
    return float(cv2.Laplacian(cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def eye_band(landmarks: np.ndarray, size: int) -> tuple[slice, slice]:
    """(rows, cols) of the eyes-and-forehead band of a face with 68 landmarks."""
    lm = np.asarray(landmarks)
    iod = float(np.hypot(*(lm[36:42].mean(0) - lm[42:48].mean(0))))
    y0 = int(max(0, lm[17:27, 1].min() - 0.6 * iod))
    y1 = int(min(size, lm[36:48, 1].max() + 0.1 * iod))
    x0, x1 = int(max(0, lm[0, 0])), int(min(size, lm[16, 0]))
    return slice(y0, y1), slice(x0, x1)


def phoneme_frames(phonemes: list, n_frames: int, visemes: tuple[str, ...]) -> list[np.ndarray]:
    """For each phoneme of one of `visemes`: the frames (25 fps, from the speech's start) it spans."""
    out = []
    for ph, s, e in phonemes:
        if viseme_of(ph) in visemes:
            a, b = int(np.floor(s * 25)), int(np.ceil(e * 25))
            idx = np.arange(max(0, a), min(n_frames, max(b, a + 1)))
            if len(idx):
                out.append(idx)
    return out


def measure(portrait, frames: np.ndarray, motion: np.ndarray, phonemes: list, renderer, with_id_sim: bool = True
            ) -> dict:  # noqa: ANN001
    """The metrics of one portrait's frames [T, S, S, C] and motion [T, K] (see the module docstring)."""
    from engine_core.eval.identity import id_sim

    rest = portrait.image
    rows, cols = eye_band(portrait.landmarks, portrait.size)
    sharp = [lapvar(f) / max(1e-9, lapvar(rest)) for f in frames[::5]]
    open_eyes = motion[:, [INDEX["eyeBlinkLeft"], INDEX["eyeBlinkRight"]]].max(1) < 0.1
    still = motion.copy()
    still[:, NUM_BLENDSHAPES:] = 0.0
    band = [psnr(renderer.render(m)[rows, cols], rest[rows, cols]) for m in still[open_eyes][::3]]
    posed = [psnr(f[rows, cols], rest[rows, cols]) for f in frames[open_eyes][::3]]
    jaw = motion[:, INDEX["jawOpen"]]
    rig = renderer.rig
    gap = np.array([rig.mouth_gap(rig.face_points(m)) - rig.rest_gap for m in motion])
    open_idx = phoneme_frames(phonemes, len(jaw), OPEN_VISEMES)
    pbm_idx = phoneme_frames(phonemes, len(jaw), CLOSED_VISEMES)
    opened, closed = [float(gap[i].max()) for i in open_idx], [float(gap[i].min()) for i in pbm_idx]
    out = {
        "frames": int(len(frames)),
        "sharpness": float(np.mean(sharp)),
        "sharpness_min": float(np.min(sharp)),
        "eye_band_psnr": float(np.median(band)) if band else None,
        "eye_band_psnr_min": float(np.min(band)) if band else None,
        "eye_band_psnr_posed": float(np.median(posed)) if posed else None,
        "lips_open_vowels": float(np.mean(opened)) if opened else None,
        "lips_pbm": float(np.mean(closed)) if closed else None,
        "pbm_shut_share": float(np.mean([c < SHUT for c in closed])) if closed else None,
        "jaw_open_vowels": float(np.mean([jaw[i].max() for i in open_idx])) if open_idx else None,
        "jaw_pbm": float(np.mean([jaw[i].min() for i in pbm_idx])) if pbm_idx else None,
        "open_vowels": len(opened),
        "pbm": len(closed),
    }
    if with_id_sim:
        out.update(id_sim(np.ascontiguousarray(rest[..., :3]), np.ascontiguousarray(frames[..., :3]), every=10))
    return out


def strip(portrait, frames: np.ndarray, motion: np.ndarray, phonemes: list, height: int = 192) -> np.ndarray:  # noqa: ANN001
    """The portrait, then five frames: at the widest open vowel, a p/b/m, a blink (where there are such), then
    evenly spread ones, side by side (RGB, always six tiles)."""
    jaw = motion[:, INDEX["jawOpen"]]
    picks = []
    opened = phoneme_frames(phonemes, len(jaw), OPEN_VISEMES)
    if opened:
        idx = np.concatenate(opened)
        picks.append(int(idx[np.argmax(jaw[idx])]))
    closed = phoneme_frames(phonemes, len(jaw), CLOSED_VISEMES)
    if closed:
        picks.append(int(closed[len(closed) // 2][0]))
    blinks = np.flatnonzero(motion[:, INDEX["eyeBlinkLeft"]] > 0.8)
    if len(blinks):
        picks.append(int(blinks[0]))
    picks += [int(i) for i in np.linspace(0, len(frames) - 1, 7)[1:-1]]    # then evenly spread frames
    tiles = [portrait.image] + [frames[i] for i in picks[:5]]
    tiles = [cv2.resize(np.ascontiguousarray(t[..., :3]), (height, height), interpolation=cv2.INTER_AREA) for t in tiles]
    return np.concatenate(tiles, axis=1)


def run_portraits(model: str, portraits: list[str], sentences: int, size: int, out: Path, frames_png: Path | None,
                  with_id_sim: bool, face_points: list | None = None, device: str = "cpu") -> dict:
    """Speak `sentences` held-out sentences with each portrait; write and return the per-portrait metrics."""
    from engine_core.data.synth.sentences import NUM_SENTENCES, sentence_text
    from engine_core.engine import Engine
    from engine_core.eval.utterance import generate_utterance
    from engine_core.eval.voice import CorpusVoice
    from sdk.portrait import load_portrait
    from sdk.portrait.characters import character

    engine = Engine.load(model=model, device=device)
    if engine.config.vae.kind != "motion":
        raise ValueError(f"model {model!r} does not work in motion space")
    voice = engine.thinker.voice = CorpusVoice()
    results, strips = {}, []
    for name in portraits:
        p = character(name[5:]).portrait(size) if name.startswith("char:") else \
            load_portrait(name, face_points=face_points, size=size)
        session = engine.open_session(portrait=p)
        frames, motion, phonemes = [], [], []
        offset = 0.0
        for k in range(sentences):
            voice.start(k)
            chunks: list = []
            f, _ = generate_utterance(session, sentence_text(10 * (7 + 13 * k) % NUM_SENTENCES),
                                      200, motion=chunks)
            sp = voice.speech()
            phonemes += [(ph, s + offset, e + offset) for ph, s, e in sp.phonemes]
            offset += len(f) / 25
            frames.append(f)
            motion.append(np.concatenate(chunks)[: len(f)])
        session.close()
        frames_a, motion_a = np.concatenate(frames), np.concatenate(motion)
        results[name] = measure(p, frames_a, motion_a, phonemes, session.frames.renderer, with_id_sim)
        results[name]["found_by"] = p.found_by
        strips.append(strip(p, frames_a, motion_a, phonemes))
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"model": model, "size": size, "sentences": sentences, "portraits": results}
    out.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    if frames_png is not None:
        frames_png.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(frames_png), cv2.cvtColor(np.concatenate(strips, axis=0), cv2.COLOR_RGB2BGR))
    return doc
