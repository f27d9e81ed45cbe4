"""The cascade's ears: Whisper tiny.en (CTranslate2) transcribing the user's voice.

pcm (int16 or float mono, any rate) -> float32 16 kHz -> 80-bin log-mel (Whisper's own recipe, via
transformers' `WhisperFeatureExtractor` built with default arguments, no download) in 30 s windows ->
greedy decoding with the English-only prompt `<|startoftranscript|><|notimestamps|>`.
"""

from __future__ import annotations

import functools
import numpy as np

from engine_core.errors import AudioError

from .base import Transcript
from .cascade_assets import load_whisper

WHISPER_RATE = 16000
_WINDOW = 30 * WHISPER_RATE          # samples per Whisper window
MAX_SECONDS = 120.0


@functools.lru_cache(maxsize=1)
def _feature_extractor():
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor()  # defaults: 80 mels, 16 kHz, n_fft 400, hop 160, 30 s chunks


def to_float_mono(pcm: np.ndarray) -> np.ndarray:
    """int16 / float mono -> float32 in [-1, 1]; raises `AudioError` on anything else."""
    a = np.asarray(pcm)
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise AudioError(f"audio must be mono 1-D, got shape {a.shape}")
    if a.dtype == np.int16:
        return a.astype(np.float32) / 32768.0
    if np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)):
            raise AudioError("audio contains NaN or infinite samples")
        return np.clip(a.astype(np.float32), -1.0, 1.0)
    raise AudioError(f"audio must be int16 or float, got {a.dtype}")


def resample(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Band-limited (FFT) resampling of float32 [n] from `rate` to `target` Hz -> float32 [n * target / rate].

    scipy is not a dependency; for utterances of at most `MAX_SECONDS` one FFT is cheap and exact in
    the pass band (frequencies above the lower Nyquist are dropped, which is the anti-alias filter).
    """
    if rate == target or audio.size == 0:
        return audio.astype(np.float32)
    n_out = max(1, int(round(audio.size * target / rate)))
    spec = np.fft.rfft(audio.astype(np.float64))
    keep = min(spec.size, n_out // 2 + 1)
    out = np.fft.irfft(spec[:keep], n=n_out) * (n_out / audio.size)
    return out.astype(np.float32)


def transcribe(pcm: np.ndarray, sample_rate: int) -> Transcript:
    """Transcribe mono speech (int16 or float) at `sample_rate` Hz with Whisper tiny.en."""
    if not isinstance(sample_rate, (int, np.integer)) or not 4000 <= sample_rate <= 192000:
        raise AudioError(f"unsupported sample rate {sample_rate!r}")
    audio = to_float_mono(pcm)
    if audio.size / sample_rate > MAX_SECONDS:
        raise AudioError(f"audio longer than {MAX_SECONDS:.0f} s")
    audio = resample(audio, int(sample_rate), WHISPER_RATE)
    if audio.size < WHISPER_RATE // 10 or float(np.abs(audio).max(initial=0.0)) < 1e-4:
        return Transcript(text="")
    import ctranslate2

    model, tok = load_whisper()
    prompt = [tok.token_to_id("<|startoftranscript|>"), tok.token_to_id("<|notimestamps|>")]
    texts = []
    for start in range(0, audio.size, _WINDOW):
        window = audio[start:start + _WINDOW]
        feats = _feature_extractor()(window, sampling_rate=WHISPER_RATE, return_tensors="np").input_features
        feats = np.ascontiguousarray(feats, dtype=np.float32)          # [1, 80, 3000]
        res = model.generate(ctranslate2.StorageView.from_array(feats), [prompt], beam_size=1,
                             max_length=224, suppress_blank=True)
        texts.append(tok.decode(res[0].sequences_ids[0], skip_special_tokens=True).strip())
    return Transcript(text=" ".join(t for t in texts if t))
