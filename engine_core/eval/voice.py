"""The voice `xstreamer eval` gives the engine: Piper `joe` with the corpus generator's seeded noise.

The engine's own Piper draws fresh noise on every call, so its timing differs from any render of the truth.
`CorpusVoice` speaks each piece the engine hands it with `data.synth.speech.synthesize` (default voice, the
clip's seed) and keeps what it said; `speech()` joins the pieces exactly as the engine lays them out (each
padded with silence to whole 882-sample frames), so the truth rendered from it is frame-aligned with the
generated video: frame i of both is the same instant of the same audio.
"""

from __future__ import annotations

import numpy as np

from engine_core.codecs.speech import SAMPLE_RATE, SpokenText, TextSpeechDecoder, WordSpan
from engine_core.data.synth.speech import WORD_RE, Speech, VoiceParams, synthesize
from engine_core.thinker.base import SAMPLES_PER_FRAME, frames_holding


class CorpusVoice(TextSpeechDecoder):
    """A TextSpeechDecoder that speaks like the corpus generator and records every piece (see the module doc)."""

    name = "corpus-joe"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.pieces: list[Speech] = []

    def start(self, seed: int) -> None:
        """Begin a new utterance: forget the pieces spoken so far, draw the noise from `seed`."""
        self.seed, self.pieces = int(seed), []

    def synthesize(self, text: str) -> SpokenText:
        sp = synthesize(text, VoiceParams(), self.seed)
        self.pieces.append(sp)
        spans = list(WORD_RE.finditer(text))             # the words `synthesize` times, in order
        words = [WordSpan(m.group(), m.start(), m.end(), int(round(s * SAMPLE_RATE)), int(round(e * SAMPLE_RATE)))
                 for m, (_, s, e) in zip(spans, sp.words)]
        return SpokenText(sp.audio.astype(np.float32), words, aligned=len(words) == len(spans))

    def speech(self) -> Speech:
        """The pieces of this utterance as one Speech, laid out on whole frames as the engine plays them."""
        audio, phonemes, words, t = [], [], [], 0
        for sp in self.pieces:
            n = frames_holding(sp.audio.size) * SAMPLES_PER_FRAME
            padded = np.zeros(n, np.float32)
            padded[: sp.audio.size] = sp.audio
            audio.append(padded)
            off = t / SAMPLE_RATE
            phonemes += [(p, s + off, e + off) for p, s, e in sp.phonemes]
            words += [(w, s + off, e + off) for w, s, e in sp.words]
            t += n
        if not audio:
            raise ValueError("nothing was spoken")
        return Speech(audio=np.concatenate(audio), phonemes=phonemes, words=words)
