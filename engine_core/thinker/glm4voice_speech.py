"""Adapter for GLM-4-Voice's speech tokenizer (Whisper-large-v3 encoder + VQ, 12.5 tokens/s, 16,384 codes).

Its model class (`WhisperVQEncoder`) is not part of transformers: the adapter imports it from a local
GLM-4-Voice source checkout (`speech_tokenizer/` in `code_dir`) and loads weights and the feature
extractor settings from a local tokenizer directory. Without both it raises `BackendUnavailableError`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from engine_core.errors import BackendUnavailableError

from .cascade_asr import resample, to_float_mono

TOKENIZER_RATE = 16000


class Glm4VoiceSpeechTokenizer:
    """pcm -> list of speech-token ids (0..16383) with GLM-4-Voice's tokenizer."""

    def __init__(self, tokenizer_dir: str | Path | None, code_dir: str | Path | None, device: str = "cpu") -> None:
        if tokenizer_dir is None or code_dir is None:
            raise BackendUnavailableError(
                "GLM-4-Voice speech tokenizer needs tokenizer_dir (glm-4-voice-tokenizer weights) and code_dir "
                "(a GLM-4-Voice source checkout with speech_tokenizer/)")
        tokenizer_dir, code_dir = Path(tokenizer_dir), Path(code_dir)
        if not (tokenizer_dir / "config.json").is_file():
            raise BackendUnavailableError(f"no speech tokenizer weights in {tokenizer_dir}")
        if not (code_dir / "speech_tokenizer" / "modeling_whisper.py").is_file():
            raise BackendUnavailableError(f"no GLM-4-Voice speech_tokenizer code in {code_dir}")
        if str(code_dir) not in sys.path:
            sys.path.insert(0, str(code_dir))
        try:
            from speech_tokenizer.modeling_whisper import WhisperVQEncoder  # type: ignore[import-not-found]
            from speech_tokenizer.utils import extract_speech_token  # type: ignore[import-not-found]
            from transformers import WhisperFeatureExtractor

            self._model = WhisperVQEncoder.from_pretrained(str(tokenizer_dir)).eval().to(device)
            self._features = WhisperFeatureExtractor.from_pretrained(str(tokenizer_dir))
            self._extract = extract_speech_token
        except Exception as exc:  # noqa: BLE001 - foreign code: any failure means unavailable
            raise BackendUnavailableError(f"GLM-4-Voice speech tokenizer could not be loaded: {exc}") from exc

    def tokenize(self, pcm: np.ndarray, sample_rate: int) -> list[int]:
        """Speech-token ids of mono int16/float `pcm` at `sample_rate` Hz."""
        import torch

        audio = resample(to_float_mono(pcm), int(sample_rate), TOKENIZER_RATE)
        utt = (torch.from_numpy(audio).unsqueeze(0), TOKENIZER_RATE)      # ([1, n], rate)
        return [int(t) for t in self._extract(self._model, self._features, [utt])[0]]
