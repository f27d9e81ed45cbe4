"""Procedural ground truth for the motion Actor: every motion channel, per 40 ms frame, of a clip of speech.

This is made up by rules, not measured on people (no talking-face data can be had here); the rules follow what
animators and the lip-sync literature do:
  - mouth: each phoneme's viseme is a target blendshape vector (VISEME_SHAPES); targets are sampled at 200 Hz,
    smoothed with a 30 ms Gaussian (coarticulation) and averaged per frame, as `visemes.mouth_tracks` does for the
    drawn corpus, so jawOpen follows the drawn characters' mouth opening;
  - blinks every 1.5-5 s (both eyes, the second sometimes a frame late);
  - brows rise on stressed words (content words, a random share) and at the end of a question; the head nods a
    little on stressed words and at phrase ends (a comma, a full stop);
  - a smile where the text is warm (WARM_WORDS, "!"), held a second past the word, over a per-clip resting smile;
  - idle motion while listening and between phrases: slow head sway (livelier while speaking), slow brow drift.
"""

from __future__ import annotations

import re

import numpy as np

from engine_core.data.synth.visemes import FPS, blink_track, per_frame, viseme_track
from engine_core.motion.channels import INDEX, NUM_CHANNELS

VISEME_SHAPES: dict[str, dict[str, float]] = {
    "sil": {},
    # p/b/m: the lips meet whatever the jaw does (mouthClose undoes the jaw's opening of the lips), pressed
    "PBM": {"mouthClose": 0.6, "mouthPressLeft": 0.5, "mouthPressRight": 0.5, "mouthRollLower": 0.25,
            "mouthRollUpper": 0.2},
    "FV": {"jawOpen": 0.1, "mouthRollLower": 0.6},
    "TH": {"jawOpen": 0.2},
    "DNL": {"jawOpen": 0.27, "mouthStretchLeft": 0.1, "mouthStretchRight": 0.1},
    "KG": {"jawOpen": 0.36},
    "CH": {"jawOpen": 0.25, "mouthFunnel": 0.5, "mouthPucker": 0.3},
    "R": {"jawOpen": 0.27, "mouthPucker": 0.45, "mouthFunnel": 0.2},
    "W": {"jawOpen": 0.18, "mouthPucker": 0.85},
    "O": {"jawOpen": 0.56, "mouthFunnel": 0.7},
    "AA": {"jawOpen": 0.86},
    "EH": {"jawOpen": 0.54, "mouthStretchLeft": 0.3, "mouthStretchRight": 0.3},
    "IY": {"jawOpen": 0.32, "mouthStretchLeft": 0.5, "mouthStretchRight": 0.5, "mouthSmileLeft": 0.15,
           "mouthSmileRight": 0.15},
}
WARM_WORDS = {"welcome", "thanks", "thank", "love", "lovely", "wonderful", "amazing", "happy", "glad", "great",
              "perfect", "exciting", "funny", "nice", "fun", "enjoy", "hello", "hi", "favourite", "lucky", "warm",
              "gentle", "brave", "bright", "agree", "honestly", "friend", "friends", "beautiful", "awesome"}
_FUNCTION_WORDS = {"a", "an", "the", "to", "in", "on", "at", "of", "and", "i", "it", "is", "was", "that", "my",
                   "you", "we", "me", "with", "for", "did", "do", "there", "are", "about", "let", "near", "be"}


def _shape_matrix() -> tuple[list[str], np.ndarray]:
    names = list(VISEME_SHAPES)
    m = np.zeros((len(names), NUM_CHANNELS), np.float32)
    for i, v in enumerate(names):
        for ch, w in VISEME_SHAPES[v].items():
            m[i, INDEX[ch]] = w
    return names, m


def mouth_channels(phonemes: list[tuple[str, float, float]], num_frames: int, offset: float = 0.0) -> np.ndarray:
    """float32 [num_frames, NUM_CHANNELS]: the mouth blendshapes of the speech (other channels 0), smoothed as
    `visemes.mouth_tracks` smooths the drawn corpus's mouths (so jawOpen follows their opening)."""
    names, shapes = _shape_matrix()
    idx = np.array([names.index(v) for v in viseme_track(phonemes, num_frames, offset)])
    return per_frame(shapes[idx], num_frames)


def _bump(n: int, centre: float, width: float) -> np.ndarray:
    """A smooth raised-cosine bump [n] centred at frame `centre`, `width` frames wide."""
    t = np.arange(n) - centre
    return np.where(np.abs(t) < width / 2, 0.5 + 0.5 * np.cos(2 * np.pi * t / width), 0.0)


def _noise(n: int, rng: np.random.Generator, amp: float, f_lo: float = 0.08, f_hi: float = 0.5) -> np.ndarray:
    t = np.arange(n) / FPS
    sig = np.zeros(n)
    for _ in range(3):
        sig += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * rng.uniform(f_lo, f_hi) * t + rng.uniform(0, 2 * np.pi))
    return amp / 3.0 * sig


def _clean(word: str) -> str:
    return re.sub(r"[^a-z']", "", word.lower())


def motion_track(text: str, phonemes: list[tuple[str, float, float]], words: list[tuple[str, float, float]],
                 num_frames: int, offset: float, rng: np.random.Generator) -> np.ndarray:
    """float32 [num_frames, NUM_CHANNELS]: every channel of a clip whose speech (`phonemes`, `words` timed from
    the speech's start) begins `offset` seconds in; the rest is listening/idle. Deterministic in `rng`."""
    n = num_frames
    out = mouth_channels(phonemes, n, offset)
    speaking = out[:, INDEX["jawOpen"]] > 0.05
    energy = 1.0 + 0.8 * np.convolve(np.pad(speaking.astype(np.float64), 6, mode="edge"), np.ones(13) / 13, "valid")
    # blinks
    blink = blink_track(n, rng)
    late = rng.random() < 0.3
    out[:, INDEX["eyeBlinkRight"]] = blink
    out[:, INDEX["eyeBlinkLeft"]] = np.concatenate([blink[:1], blink[:-1]]) if late else blink
    # head: idle sway, livelier while speaking
    out[:, INDEX["headYaw"]] = _noise(n, rng, 3.0) * energy
    out[:, INDEX["headPitch"]] = _noise(n, rng, 2.0) * energy
    out[:, INDEX["headRoll"]] = _noise(n, rng, 2.0) * energy
    out[:, INDEX["headX"]] = _noise(n, rng, 0.015, 0.05, 0.3)
    out[:, INDEX["headY"]] = _noise(n, rng, 0.01, 0.05, 0.3)
    brow = np.clip(_noise(n, rng, 0.08, 0.05, 0.2), 0, None)
    smile = np.full(n, rng.uniform(0.0, 0.15))
    # words: stress (brows up, a nod), warmth (a smile), phrase ends (a nod), questions (brows up at the end)
    pos = 0
    for w, s, e in words:
        at = text.find(w, pos)
        pos = at + len(w) if at >= 0 else pos
        start, end = (s + offset) * FPS, (e + offset) * FPS
        word = _clean(w)
        follows = text[pos:pos + 1] if at >= 0 else ""
        if word and word not in _FUNCTION_WORDS and (len(word) >= 5 or w[:1].isupper()) and rng.random() < 0.5:
            amp = rng.uniform(0.25, 0.6)
            brow += amp * _bump(n, start + 2, 12)
            out[:, INDEX["headPitch"]] += rng.uniform(1.5, 3.5) * _bump(n, start + 4, 10)
        if word in WARM_WORDS or follows == "!":
            smile += rng.uniform(0.3, 0.6) * np.clip(_bump(n, (start + end) / 2 + 8, end - start + 40) * 1.5, 0, 1)
        if follows in (",", ".", "!"):
            out[:, INDEX["headPitch"]] += rng.uniform(1.0, 3.0) * _bump(n, end + 2, 12)
        if follows == "?":
            brow += rng.uniform(0.4, 0.7) * _bump(n, end, 20)
    out[:, INDEX["browInnerUp"]] = np.clip(brow, 0, 1)
    outer = np.clip(brow * rng.uniform(0.6, 1.0), 0, 1)
    out[:, INDEX["browOuterUpLeft"]] = outer
    out[:, INDEX["browOuterUpRight"]] = outer
    smile = np.clip(smile, 0, 1)
    for side in ("Left", "Right"):
        out[:, INDEX[f"mouthSmile{side}"]] = np.clip(out[:, INDEX[f"mouthSmile{side}"]] + smile, 0, 1)
        out[:, INDEX[f"eyeSquint{side}"]] = 0.4 * smile
    return out.astype(np.float32)
