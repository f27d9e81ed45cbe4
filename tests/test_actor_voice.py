"""A streamed reply's text and audio come from the Actor's heads when the token stream is on (`tiny`, toy Thinker with
audio tokens), and from the Thinker's with it off (today's path)."""

from __future__ import annotations

import numpy as np
import torch

from engine_core.engine import Engine
from engine_core.thinker.base import SAMPLES_PER_FRAME
from engine_core.thinker.toy import ToyTokenDecoder

WORD, CODE = "banana", 7


def reply(eng: Engine, text: str, chunks: int = 14):
    s = eng.open_session()
    try:
        s.chat(text)
        out = [s.next_chunk() for _ in range(chunks)]
        return out, s.voice
    finally:
        s.close()


def spoken(chunks, utt=1):
    texts = "".join(t.text for c in chunks for t in c.texts if t.role == "assistant")
    audio = np.concatenate([c.audio for c in chunks if c.utt == utt]).astype(np.float32) / 32767.0
    return texts, audio


@torch.no_grad()
def test_streamed_text_and_audio_come_from_the_actors_heads():
    eng = Engine.load("tiny", actor_tokens=True)
    word_id = eng.thinker.token_id(WORD)
    a = eng.actor
    for head, best in ((a.text_head, word_id), (a.audio_head, CODE)):   # heads that always say WORD and CODE
        head.weight.zero_()
        head.bias.fill_(-10.0)
        head.bias[best] = 10.0
    chunks, voice = reply(eng, "hello there friend")
    text, audio = spoken(chunks)
    assert text == " ".join([WORD] * 5)               # one text token per word of "You said: hello there friend."
    assert voice.tokens > 5 and voice.forwards >= len(chunks)
    want = ToyTokenDecoder.wave([CODE] * (voice.tokens - 5))
    n = min(audio.size, want.size)
    assert n >= 20 * SAMPLES_PER_FRAME
    assert np.abs(audio[:n] - want[:n]).max() < 2e-4                  # the Actor's codes, voiced (int16 rounding)
    # the Thinker's own speech (tones of each word's syllables) is not what is played
    thinker_audio = np.concatenate(
        [seg.audio for seg in eng.thinker.speak("You said: hello there friend.")])[:n]
    assert np.abs(audio[:n] - thinker_audio).max() > 0.1


def test_the_flag_keeps_the_thinkers_text_and_speech():
    eng = Engine.load("tiny", actor_tokens=False)
    chunks, voice = reply(eng, "hello there friend")
    text, audio = spoken(chunks)
    assert voice is None
    assert text == "You said: hello there friend."
    thinker_audio = np.concatenate([seg.audio for seg in eng.thinker.speak("You said: hello there friend.")])
    n = min(audio.size, thinker_audio.size)
    assert np.abs(audio[:n] - thinker_audio[:n]).max() < 2e-4
