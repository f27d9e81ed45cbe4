"""Speech decoders: Piper joe word alignment; the GLM-4-Voice decoder adapter refuses without its files."""

from __future__ import annotations

import numpy as np
import pytest

from engine_core.codecs.glm4voice_decoder import Glm4VoiceDecoder
from engine_core.codecs.speech import PiperSpeech, find_joe_voice, load_piper
from engine_core.errors import BackendUnavailableError, TextError


def test_joe_voice_files_found():
    model, config = find_joe_voice()
    assert model.suffix == ".onnx" and model.stat().st_size > 1_000_000 and config.name.endswith(".onnx.json")


def test_piper_words_aligned_in_order():
    voice = load_piper()
    assert isinstance(voice, PiperSpeech) and voice.sample_rate == 22050
    text = "Hello there, my friend. I like three apples!"
    out = voice.synthesize(text)
    assert out.audio.dtype == np.float32 and out.audio.size > 22050 and np.abs(out.audio).max() <= 1.0
    assert out.aligned and [w.word for w in out.words] == text.split()
    for a, b in zip(out.words, out.words[1:]):
        assert a.sample_start < a.sample_end <= b.sample_start
    assert out.words[-1].sample_end <= out.audio.size
    for w in out.words:                                   # each word's stretch carries sound
        assert np.abs(out.audio[w.sample_start:w.sample_end]).max() > 0.05
    assert text[out.words[2].char_start:out.words[2].char_end] == "my"
    # longer text takes longer to say
    assert voice.synthesize(text + " " + text).audio.size > 1.6 * out.audio.size


def test_piper_rejects_empty():
    with pytest.raises(TextError):
        load_piper().synthesize("  ")


def test_glm_decoder_unavailable_without_files(tmp_path):
    with pytest.raises(BackendUnavailableError):
        Glm4VoiceDecoder(None)
    (tmp_path / "config.yaml").write_text("x")
    with pytest.raises(BackendUnavailableError, match="flow.pt"):
        Glm4VoiceDecoder(tmp_path)
