"""The `toy` Thinker of the tiny preset: deterministic, instant, no downloads (tests and live demos).

- chat: replies "You said: <text>." (multi-turn context kept in the Conversation); its "prompt" is one token
  per word of the system prompt and the turns, fitted into `context_tokens` like a real LM's (the oldest
  turns are dropped; ContextOverflowError when the newest alone does not fit);
- speech: each word is a run of syllable tones (200 ms each, pitch from the word's hash) + a 40 ms pause;
- hidden states: a seeded embedding of each word's id (a token per word, aligned to its first frame);
- hear: "I heard N.N seconds of audio." (a stand-in transcript; real ASR lives in the cascade Thinker);
- tokens: each word's token (its id), and with `audio_vocab` > 0 audio tokens too, one per 2 frames of the word's
  speech (codes from the word's hash), each with a state of a second seeded table: what the Actor's token stream
  reads on `tiny`. `speech_decoder` (`ToyTokenDecoder`) voices audio codes and `detokenize` reads ids back as words.
One Segment per word, so consumers see segment boundaries that do not align with chunks.
"""

from __future__ import annotations

import re
import zlib
from typing import Iterator

import numpy as np
import torch

from engine_core.codecs.speech import TokenSpeechDecoder
from engine_core.errors import TextError
from engine_core.thinker.base import (SAMPLE_RATE, SAMPLES_PER_FRAME, Conversation, Gate, Segment, Thinker,
                                      Transcript, Turn, UserTurn, go_on, turn_text)
from engine_core.thinker.context import fit_history, prompt_budget
from engine_core.thinker.features import SPEECH_FEATURE_SIZE, speech_features

FRAMES_PER_SYLLABLE = 5
PAUSE_FRAMES = 1
REPLY_TOKENS = 64            # kept free in the context for the reply


class ToyThinker(Thinker):
    """Deterministic stand-in for a language-speech model."""

    voices = ("joe",)          # stands in for the cascade (the tiny preset): the same personas open on both

    def __init__(self, hidden_size: int = 32, vocab: int = 512, seed: int = 0,
                 context_tokens: int = 2048, audio_vocab: int = 0) -> None:
        self.hidden_size = hidden_size
        self.context_tokens = context_tokens
        self.speech_feature_size = SPEECH_FEATURE_SIZE
        self.vocab, self.audio_vocab = vocab, audio_vocab
        g = torch.Generator().manual_seed(seed)
        self.embedding = torch.randn(vocab, hidden_size, generator=g)      # [V, hidden]
        self.audio_embedding = torch.randn(max(audio_vocab, 1), hidden_size, generator=g)
        self.speech_decoder = ToyTokenDecoder() if audio_vocab else None
        self._words: dict[int, str] = {}

    def token_id(self, word: str) -> int:
        """Stable id of a word in [0, vocab)."""
        i = zlib.crc32(word.lower().encode()) % self.vocab
        self._words.setdefault(i, word)
        return i

    def detokenize(self, ids: list[int]) -> str:
        """Words of text ids this Thinker has produced (`<id>` for one it never did), joined by spaces."""
        return " ".join(self._words.get(int(i), f"<{int(i)}>") for i in ids)

    def _audio_codes(self, word: str, n_frames: int) -> list[int]:
        return [zlib.crc32(f"{word}/{k}".encode()) % self.audio_vocab for k in range(0, n_frames, 2)]

    def _word_audio(self, word: str) -> np.ndarray:
        """float32 [frames * 882] syllable tones of one word followed by a short pause."""
        syllables = max(1, len(re.findall(r"[aeiouy]+", word.lower())))
        n_voiced = syllables * FRAMES_PER_SYLLABLE * SAMPLES_PER_FRAME
        t = np.arange(n_voiced) / SAMPLE_RATE
        pitch = 110.0 + (zlib.crc32(word.encode()) % 120)
        seg_len = FRAMES_PER_SYLLABLE * SAMPLES_PER_FRAME
        env = np.sin(np.pi * (np.arange(n_voiced) % seg_len) / seg_len) ** 2
        tone = 0.3 * env * (np.sin(2 * np.pi * pitch * t) + 0.5 * np.sin(4 * np.pi * pitch * t))
        return np.concatenate([tone, np.zeros(PAUSE_FRAMES * SAMPLES_PER_FRAME)]).astype(np.float32)

    def _segments(self, text: str, gate: Gate | None) -> Iterator[Segment]:
        words = text.split()
        frame = 0
        for i, word in enumerate(words):
            if not go_on(gate):         # one "decoding step" per word
                return
            audio = self._word_audio(word)
            n = audio.size // SAMPLES_PER_FRAME
            ids, frames = [self.token_id(word)], [frame]
            hidden = [self.embedding[ids[0]]]
            codes = self._audio_codes(word, n) if self.audio_vocab else []
            for k, c in enumerate(codes):                       # one audio token per 2 frames of the word
                hidden.append(self.audio_embedding[c])
                frames.append(frame + 2 * k)
            yield Segment(start_frame=frame, num_frames=n, audio=audio,
                          text=word if i == 0 else " " + word, hidden=torch.stack(hidden),
                          hidden_frames=torch.tensor(frames, dtype=torch.long),
                          speech_features=speech_features(audio),
                          token_ids=torch.tensor(ids + codes, dtype=torch.long),
                          token_audio=torch.tensor([False] + [True] * len(codes)))
            frame += n

    @property
    def max_prompt_tokens(self) -> int:
        return prompt_budget(self.context_tokens, REPLY_TOKENS)

    def _prompt(self, system: str, history: list[Turn], user_text: str) -> list[int]:
        ids = [self.token_id(w) for w in system.split()]
        for turn in [*history, Turn("user", user_text)]:
            ids += [self.token_id("<" + turn.role + ">")] + [self.token_id(w) for w in turn.text.split()]
        return ids

    def prompt_tokens(self, conversation: Conversation, user_text: str) -> list[int]:
        """Token ids of the prompt of a reply to `user_text`: one per word of the system prompt and the turns
        (plus one per turn for its role), the oldest turns dropped to fit `max_prompt_tokens`."""
        def cost(h) -> int:
            return len(self._prompt(conversation.system_prompt, list(h), user_text))

        kept = fit_history(conversation.turns, cost, self.max_prompt_tokens,
                           is_user=lambda t: t.role == "user")
        return self._prompt(conversation.system_prompt, kept, user_text)

    def reply(self, conversation: Conversation, user: UserTurn, gate: Gate | None = None) -> Iterator[Segment]:
        """Answer "You said: <text>." and record both turns (ContextOverflowError, recording nothing, when the
        turn cannot fit in the context)."""
        user_text = turn_text(user)
        if not user_text.strip():
            raise TextError("chat text is empty")
        self.prompt_tokens(conversation, user_text)
        answer = f"You said: {user_text.strip()}."
        conversation.add("user", user_text)
        conversation.add("assistant", answer)
        return self._segments(answer, gate)

    def speak(self, text: str, gate: Gate | None = None) -> Iterator[Segment]:
        """Say `text` verbatim."""
        if not text.strip():
            raise TextError("speak text is empty")
        return self._segments(text.strip(), gate)

    def hear(self, pcm: np.ndarray, sample_rate: int) -> Transcript:
        """A deterministic stand-in transcript naming the audio's duration."""
        seconds = len(pcm) / float(sample_rate)
        return Transcript(text=f"I heard {seconds:.1f} seconds of audio.")


class ToyTokenDecoder(TokenSpeechDecoder):
    """Audio codes to speech for the toy: code c is 80 ms (two frames) of a tone at 120 + 4 c Hz (tests can tell
    whose codes a reply's audio voices)."""

    name = "toy-token-decoder"

    def start_stream(self) -> str:
        return "toy"

    def decode(self, stream_id: str, tokens: list[int], finalize: bool) -> np.ndarray:
        t = np.arange(2 * SAMPLES_PER_FRAME) / SAMPLE_RATE
        waves = [0.3 * np.sin(2 * np.pi * (120.0 + 4.0 * c) * t) for c in tokens]
        return np.concatenate(waves).astype(np.float32) if waves else np.zeros(0, np.float32)

    @staticmethod
    def wave(codes: list[int]) -> np.ndarray:
        """What `decode` makes of `codes`."""
        return ToyTokenDecoder().decode("toy", codes, True)
