"""Lip-sync scores from mouth-opening tracks (see docs/metrics.md).

- `lipsync_mouth_corr`: Pearson correlation between the generated and the true per-frame mouth opening
  (both measured from pixels with `mouth.mouth_opening`), after resampling the generated track to the true
  length when the two differ. Stands in for Sync-C/Sync-D, which need SyncNet (not available here).
- `audio_mouth_corr`: Pearson correlation between per-frame audio loudness (dB of the RMS of each 882-sample
  frame, floored at -60 dB) and the measured mouth opening; needs no ground truth.
A generated mouth that never moves scores 0 on both (a mean over clips must not skip it as undefined).
"""

from __future__ import annotations

import numpy as np

from sdk.protocol.constants import SAMPLES_PER_FRAME


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equal-length 1-D arrays; NaN when either is constant or shorter than 3."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"length mismatch: {a.shape} vs {b.shape}")
    if len(a) < 3:
        return float("nan")
    a, b = a - a.mean(), b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 1e-12 else float("nan")


def resample_track(x: np.ndarray, n: int) -> np.ndarray:
    """Linearly resample a 1-D track to length n (end points kept)."""
    x = np.asarray(x, np.float64)
    if len(x) == n:
        return x
    if len(x) == 0 or n == 0:
        raise ValueError("cannot resample an empty track")
    return np.interp(np.linspace(0, len(x) - 1, n), np.arange(len(x)), x)


def _still(x: np.ndarray) -> bool:
    return len(x) >= 3 and float(np.ptp(x)) <= 1e-12


def lipsync_mouth_corr(generated_open: np.ndarray, true_open: np.ndarray) -> float:
    """Pearson(generated opening resampled to the true length, true opening); 0 when the generated mouth
    never moves while the true one does (no sync at all, not an undefined score), NaN when the truth is still."""
    t = np.asarray(true_open, np.float64)
    g = resample_track(generated_open, len(t))
    return 0.0 if _still(g) and not _still(t) else pearson(g, t)


def frame_loudness_db(audio: np.ndarray, num_frames: int | None = None) -> np.ndarray:
    """float64 [T] dB (re full scale) of the RMS of each 882-sample frame of int16 or float audio."""
    a = np.asarray(audio)
    a = a.astype(np.float64) / 32768.0 if a.dtype == np.int16 else a.astype(np.float64)
    t = num_frames if num_frames is not None else len(a) // SAMPLES_PER_FRAME
    a = np.pad(a, (0, max(0, t * SAMPLES_PER_FRAME - len(a))))[: t * SAMPLES_PER_FRAME]
    rms = np.sqrt((a.reshape(t, SAMPLES_PER_FRAME) ** 2).mean(1))
    return np.maximum(20 * np.log10(rms + 1e-9), -60.0)


def audio_mouth_corr(audio: np.ndarray, mouth_open: np.ndarray, max_lag: int = 0) -> float:
    """Pearson(frame loudness dB, mouth opening); with max_lag > 0 the best over lags in [-max_lag, max_lag]
    frames (positive lag = mouth after sound)."""
    m = np.asarray(mouth_open, np.float64)
    db = frame_loudness_db(audio, len(m))
    if _still(m) and not _still(db):
        return 0.0                                    # a mouth that never moves while the voice does
    best = float("nan")
    for lag in range(-max_lag, max_lag + 1):
        if lag >= 0:
            c = pearson(db[: len(m) - lag], m[lag:])
        else:
            c = pearson(db[-lag:], m[: len(m) + lag])
        if np.isnan(best) or (not np.isnan(c) and c > best):
            best = c
    return best
