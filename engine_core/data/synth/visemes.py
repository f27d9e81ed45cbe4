"""Phonemes (espeak IPA from Piper) -> visemes -> smoothed per-frame mouth tracks; blinks and head sway.

Each viseme is a mouth target (open, width, round) in [0,1]. Targets are sampled at 200 Hz from the phoneme
timings, smoothed with a Gaussian (sigma 30 ms: coarticulation), and averaged over each 40 ms frame.
"""

from __future__ import annotations

import numpy as np

from sdk.protocol.constants import FPS

_RATE = 200  # Hz of the internal target track

# viseme -> (open, width, round)
VISEMES: dict[str, tuple[float, float, float]] = {
    "sil": (0.0, 0.5, 0.0),
    "PBM": (0.0, 0.45, 0.1),
    "FV": (0.12, 0.6, 0.0),
    "TH": (0.22, 0.55, 0.0),
    "DNL": (0.3, 0.6, 0.0),
    "KG": (0.4, 0.55, 0.0),
    "CH": (0.28, 0.35, 0.6),
    "R": (0.3, 0.4, 0.45),
    "W": (0.2, 0.2, 0.9),
    "O": (0.62, 0.35, 0.7),
    "AA": (0.95, 0.6, 0.0),
    "EH": (0.6, 0.7, 0.0),
    "IY": (0.35, 0.9, 0.0),
}

_PHONEME_VISEME: dict[str, str] = {}
for _v, _chars in {
    "PBM": "pbm", "FV": "fv", "TH": "θð", "DNL": "tdnlszɾɬ", "KG": "kgɡŋhxʔ", "CH": "ʃʒʧʤ", "R": "ɹɚɝr",
    "W": "wuʊ", "O": "oɔɒɵ", "AA": "aɑæʌɐ", "EH": "ɛeəɜ", "IY": "iɪjy",
}.items():
    for _c in _chars:
        _PHONEME_VISEME[_c] = _v


def viseme_of(phoneme: str) -> str:
    """The viseme of one Piper/espeak phoneme symbol ('sil' for pauses, punctuation and unknown symbols)."""
    return _PHONEME_VISEME.get(phoneme[:1], "sil") if phoneme else "sil"


def viseme_track(phonemes: list[tuple[str, float, float]], num_frames: int, offset: float = 0.0) -> list[str]:
    """The viseme at each 200 Hz instant of `num_frames` frames ('sil' outside the speech).

    phonemes: (symbol, start_s, end_s) relative to the speech start, placed at `offset` seconds in the clip.
    A word gap ' ' shorter than 80 ms keeps the previous mouth target (no closing between words).
    """
    n = max(1, int(np.ceil(num_frames * _RATE / FPS)))
    track = ["sil"] * n
    prev = "sil"
    for ph, s, e in phonemes:
        v = viseme_of(ph)
        if ph == " " and e - s < 0.08:
            v = prev
        a, b = int(round((s + offset) * _RATE)), int(round((e + offset) * _RATE))
        a, b = max(0, a), min(n, max(b, a + 1))
        if a < n:
            track[a:b] = [v] * (b - a)
        prev = v
    return track


def per_frame(targets: np.ndarray, num_frames: int) -> np.ndarray:
    """200 Hz targets [n, C] smoothed by a 30 ms Gaussian (coarticulation) and averaged per 40 ms frame ->
    float32 [num_frames, C] clipped to [0, 1]."""
    sigma = 0.03 * _RATE
    k = np.arange(-int(3 * sigma), int(3 * sigma) + 1)
    ker = np.exp(-0.5 * (k / sigma) ** 2)
    ker /= ker.sum()
    pad = len(k) // 2
    c = targets.shape[1]
    sm = np.stack([np.convolve(np.pad(targets[:, j], pad, mode="edge"), ker, mode="valid") for j in range(c)], 1)
    per = _RATE // FPS
    sm = sm[: num_frames * per].reshape(num_frames, per, c).mean(1)
    return np.clip(sm, 0.0, 1.0).astype(np.float32)


def mouth_tracks(phonemes: list[tuple[str, float, float]], num_frames: int, offset: float = 0.0
                 ) -> dict[str, np.ndarray]:
    """Per-frame float32 [num_frames] tracks 'mouth_open', 'mouth_width', 'mouth_round' in [0,1] of the speech's
    visemes (`viseme_track`: phonemes from the speech's start, placed at `offset` seconds)."""
    tgt = np.array([VISEMES[v] for v in viseme_track(phonemes, num_frames, offset)], np.float32)
    sm = per_frame(tgt, num_frames)
    return {"mouth_open": sm[:, 0], "mouth_width": sm[:, 1], "mouth_round": sm[:, 2]}


def blink_track(num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """float32 [num_frames] eyelid closure in [0,1]: blinks every 1.5-5 s, each ~5 frames."""
    out = np.zeros(num_frames, np.float32)
    shape = np.array([0.4, 1.0, 1.0, 0.6, 0.2], np.float32)
    t = int(rng.uniform(0.3, 3.0) * FPS)
    while t < num_frames:
        seg = shape[: num_frames - t]
        out[t:t + len(seg)] = np.maximum(out[t:t + len(seg)], seg)
        t += int(rng.uniform(1.5, 5.0) * FPS)
    return out


def head_pose_track(num_frames: int, rng: np.random.Generator, speaking: np.ndarray) -> dict[str, np.ndarray]:
    """Smooth head sway: float32 [num_frames] 'dx', 'dy' (px) and 'angle' (deg); livelier while speaking."""
    t = np.arange(num_frames) / FPS
    k = np.ones(9) / 9
    energy = 1.0 + 0.8 * np.convolve(np.pad(speaking.astype(np.float64), 4, mode="edge"), k, mode="valid")
    out = {}
    for name, amp in (("dx", 3.0), ("dy", 2.0), ("angle", 3.0)):
        sig = np.zeros(num_frames)
        for _ in range(3):
            f = rng.uniform(0.08, 0.6)
            sig += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
        out[name] = (amp / 3.0 * sig * energy).astype(np.float32)
    return out
