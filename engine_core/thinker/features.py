"""Speech features on the 25 Hz video clock: what the Actor reads of the voice (all Thinker backends).

Each 40 ms video frame gets two 20 ms sub-frames of 40 log-mel bands, concatenated: 80 numbers per frame.
The features are normalised to roughly zero mean / unit variance over typical speech, so silence sits near
the bottom of the range and loud vowels near the top.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from .base import SAMPLE_RATE, SAMPLES_PER_FRAME

SPEECH_FEATURE_SIZE = 80
_N_MELS = 40
_HOP = SAMPLES_PER_FRAME // 2     # 441 samples = 20 ms
_N_FFT = 1024
_LOG_FLOOR = 1e-5
_MEAN, _STD = -6.0, 3.0           # rough log-mel statistics of speech, for normalisation


@functools.lru_cache(maxsize=1)
def _mel_filterbank() -> np.ndarray:
    """[n_fft//2+1, n_mels] triangular mel filters (HTK mel scale), 0-8 kHz."""
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    freqs = np.linspace(0, SAMPLE_RATE / 2, _N_FFT // 2 + 1)
    mels = np.linspace(hz_to_mel(40.0), hz_to_mel(8000.0), _N_MELS + 2)
    edges = mel_to_hz(mels)
    fb = np.zeros((freqs.size, _N_MELS), np.float32)
    for i in range(_N_MELS):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        up = (freqs - lo) / (mid - lo)
        down = (hi - freqs) / (hi - mid)
        fb[:, i] = np.clip(np.minimum(up, down), 0, None)
    return fb


def speech_features(audio: np.ndarray) -> torch.Tensor:
    """float32 audio [num_frames * 882] at 22,050 Hz -> float32 [num_frames, 80] features."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or audio.size % SAMPLES_PER_FRAME:
        raise ValueError(f"audio must be 1-D with a multiple of {SAMPLES_PER_FRAME} samples, got {audio.shape}")
    num_frames = audio.size // SAMPLES_PER_FRAME
    if num_frames == 0:
        return torch.zeros(0, SPEECH_FEATURE_SIZE)
    n_sub = 2 * num_frames
    pad = _N_FFT // 2
    padded = np.pad(audio, (pad, pad + _N_FFT))
    starts = np.arange(n_sub) * _HOP + _HOP // 2        # window centred on each 20 ms sub-frame
    idx = starts[:, None] + np.arange(_N_FFT)[None, :]
    windows = padded[idx] * np.hanning(_N_FFT).astype(np.float32)
    power = np.abs(np.fft.rfft(windows, axis=1)) ** 2   # [n_sub, n_fft//2+1]
    logmel = np.log(power @ _mel_filterbank() + _LOG_FLOOR)
    feats = ((logmel - _MEAN) / _STD).astype(np.float32).reshape(num_frames, SPEECH_FEATURE_SIZE)
    return torch.from_numpy(feats)


@functools.lru_cache(maxsize=1)
def silence_features() -> torch.Tensor:
    """float32 [80] features of one silent frame (computed once; callers copy, never write into it)."""
    return speech_features(np.zeros(SAMPLES_PER_FRAME, np.float32))[0]
