"""The Thinker interface: what every language-speech backend (glm4voice, cascade, toy) yields.

A Thinker turns a user turn (text or voice) into a time-stamped stream of `Segment`s on the 25 Hz
video clock: the speech waveform of the stretch, the text spoken in it, and the hidden state of every
token (with the frame each token belongs to), plus speech features at 25 Hz. The Actor reads the
hidden states and the speech features; the packets carry the audio and the text.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional, Union

import numpy as np
import torch

from sdk.protocol.constants import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME  # noqa: F401  (every Thinker's clock)


def frames_holding(n_samples: int) -> int:
    """Whole video frames (at least one) that hold `n_samples` of audio: a segment's audio is padded to them."""
    return max(1, -(-int(n_samples) // SAMPLES_PER_FRAME))


@dataclass
class Segment:
    """One stretch of the reply on the 25 Hz clock (frame 0 = start of the utterance).

    audio:            float32 [num_frames * 882] mono waveform at 22,050 Hz, in [-1, 1]
    text:             the text whose speech lies in this stretch ('' for silence)
    hidden:           float32 [n_tok, hidden_size] Thinker hidden state of each token of the stretch
    hidden_frames:    int64 [n_tok] the frame (relative to the utterance) each token is aligned to
    speech_features:  float32 [num_frames, speech_feature_size] speech features at 25 Hz
    token_ids:        int64 [n_tok] or None: each token's text id, or its audio code where token_audio says so
                      (what the Actor's token stream is given as drafts and kinds; None: the Thinker has no tokens)
    token_audio:      bool [n_tok] or None: which tokens are audio
    """

    start_frame: int
    num_frames: int
    audio: np.ndarray
    text: str
    hidden: torch.Tensor
    hidden_frames: torch.Tensor
    speech_features: torch.Tensor
    token_ids: torch.Tensor | None = None
    token_audio: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.audio.shape != (self.num_frames * SAMPLES_PER_FRAME,):
            raise ValueError(f"audio has shape {self.audio.shape}, expected ({self.num_frames * SAMPLES_PER_FRAME},)")
        if self.speech_features.shape[0] != self.num_frames:
            raise ValueError("speech_features must have one row per frame")
        if self.hidden.shape[0] != self.hidden_frames.shape[0]:
            raise ValueError("hidden and hidden_frames disagree on the token count")
        if self.token_ids is not None and (self.token_audio is None or self.token_ids.shape[0] != self.hidden.shape[0]
                                           or self.token_audio.shape != self.token_ids.shape):
            raise ValueError("token_ids and token_audio must both give one entry per hidden state")


VOICE_PLACEHOLDER = "(voice)"     # the user's transcript when a Thinker hears speech but has no text for it


@dataclass
class Transcript:
    """What the Thinker heard the user say (from `hear`); `reply` takes it as the user's turn.

    text:    human-readable transcript (ASR text, or VOICE_PLACEHOLDER): what the user is shown and the
             conversation records; never model token strings
    content: what `reply` feeds the model instead of `text` (GLM-4-Voice: the speech-token string);
             None: the text itself
    """

    text: str
    content: str | None = None


UserTurn = Union[str, Transcript]   # what `Thinker.reply` answers: typed text, or a `hear` transcript

# Called by a Thinker before each decoding step (token, or piece for a Thinker without a token loop):
# True = go on, False = stop now (the reply was interrupted; end the stream without further output). It may
# block for a while: the session holds its Thinker while the Actor works on a reply's first chunk.
Gate = Callable[[], bool]


def go_on(gate: Optional[Gate]) -> bool:
    """Whether a Thinker may take its next decoding step (no gate: always)."""
    return gate is None or gate()


def turn_text(user: UserTurn) -> str:
    """The human-readable text of a user turn (what the conversation records)."""
    return user.text if isinstance(user, Transcript) else user


def turn_content(user: UserTurn) -> str:
    """What a Thinker reads for a user turn: a transcript's `content` when it has one, else its text."""
    if isinstance(user, Transcript):
        return user.content or user.text
    return user


@dataclass
class Turn:
    """One turn of the conversation."""

    role: str          # "user" or "assistant"
    text: str


@dataclass
class Conversation:
    """Persona system prompt + the turns so far. The Thinker appends the assistant's reply."""

    system_prompt: str
    turns: list[Turn] = field(default_factory=list)
    max_turns: int = 16     # past it, the oldest turns are dropped down to half of it, in one go: between two drops
                            # each prompt starts with the one before it, which a Thinker may hold cached
    max_sentences: int = 0  # the persona's reply cap (Persona.max_reply_sentences); 0: the Thinker's own limit

    def add(self, role: str, text: str) -> None:
        self.turns.append(Turn(role, text))
        if len(self.turns) > self.max_turns:
            del self.turns[: len(self.turns) - self.max_turns // 2]


class Thinker(ABC):
    """A language-speech model. Implementations: glm4voice, cascade, toy (tests)."""

    hidden_size: int
    speech_feature_size: int
    sample_rate: int = SAMPLE_RATE
    voices: tuple[str, ...] = ()     # names Persona.voice may take; (): one voice of its own, any name taken

    def check_voice(self, voice: str) -> None:
        """PersonaError unless this Thinker speaks with `voice` (see `voices`)."""
        if self.voices and voice not in self.voices:
            from engine_core.errors import PersonaError

            raise PersonaError(f"voice {voice!r} is not one of this model's voices: {', '.join(self.voices)}")

    @abstractmethod
    def reply(self, conversation: Conversation, user: UserTurn, gate: Gate | None = None) -> Iterator[Segment]:
        """Answer `user` (typed text or a `hear` transcript) in the persona of `conversation`; appends both
        turns to it. `gate` is asked before each decoding step (see `Gate`)."""

    @abstractmethod
    def speak(self, text: str, gate: Gate | None = None) -> Iterator[Segment]:
        """Say `text` verbatim (`gate` as for `reply`)."""

    @abstractmethod
    def hear(self, pcm: np.ndarray, sample_rate: int) -> Transcript:
        """Transcribe the user's voice (int16 or float32 mono)."""

    def warm(self) -> None:
        """Prepare what the first reply would otherwise wait for (compiled kernels, CUDA graphs); the engine
        calls it once, at load. Nothing by default."""

    def silence(self, start_frame: int, num_frames: int) -> Segment:
        """An idle stretch: no speech, no tokens."""
        return Segment(
            start_frame=start_frame, num_frames=num_frames,
            audio=np.zeros(num_frames * SAMPLES_PER_FRAME, np.float32), text="",
            hidden=torch.zeros(0, self.hidden_size), hidden_frames=torch.zeros(0, dtype=torch.long),
            speech_features=torch.zeros(num_frames, self.speech_feature_size),
        )
