"""GLM-4-Voice's published conventions: vocabulary layout, prompt format, and the 13:26 interleave grammar.

Prompt (one user turn):
    <|system|>\\n{system}<|user|>\\n{user content}<|assistant|>streaming_transcription\\n
preceded by the tokenizer's `[gMASK]<sop>` prefix. User voice is `<|begin_of_audio|>` + `<|audio_k|>`... +
`<|end_of_audio|>`. The reply streams 13 text tokens then 26 audio tokens, repeating; once the text is
finished only audio follows; the reply ends with `<|user|>`. Audio id = token id - id(`<|audio_0|>`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from engine_core.errors import CheckpointError

from .base import Turn
from .context import fit_history

TEXT_PER_BLOCK = 13
AUDIO_PER_BLOCK = 26
NUM_AUDIO_TOKENS = 16384
AUDIO_TOKENS_PER_SECOND = 12.5
FRAMES_PER_AUDIO_TOKEN = 2            # 25 fps / 12.5 tokens per second
TEXT_INSTRUCTION = ("User will provide you with a text instruction. Do it step by step. First, think about the "
                    "instruction and respond in a interleaved manner, with 13 text token followed by 26 audio tokens.")
SPEECH_INSTRUCTION = ("User will provide you with a speech instruction. Do it step by step. First, think about the "
                      "instruction and respond in a interleaved manner, with 13 text token followed by 26 audio "
                      "tokens. ")
ASSISTANT_HEADER = "<|assistant|>streaming_transcription\n"
BEGIN_AUDIO, END_AUDIO, STOP = "<|begin_of_audio|>", "<|end_of_audio|>", "<|user|>"
SPECIAL_TOKENS = ("<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<|system|>", "<|user|>",
                  "<|assistant|>", "<|observation|>", "<|begin_of_image|>", "<|end_of_image|>",
                  "<|begin_of_video|>", "<|end_of_video|>", BEGIN_AUDIO, END_AUDIO)
PROMPT_PREFIX = ("[gMASK]", "<sop>")


def audio_token(k: int) -> str:
    """The token string of speech-token id `k`."""
    return f"<|audio_{k}|>"


def audio_string(audio_ids: list[int]) -> str:
    """User voice as prompt text: <|begin_of_audio|><|audio_a|>...<|end_of_audio|>."""
    return BEGIN_AUDIO + "".join(audio_token(int(k)) for k in audio_ids) + END_AUDIO


def is_audio_content(text: str) -> bool:
    """True if `text` is a user voice string made by `audio_string`."""
    return text.startswith(BEGIN_AUDIO) and text.endswith(END_AUDIO)


def format_prompt(user_content: str, history: Sequence[Turn] = (), persona: str = "") -> str:
    """The published prompt for `user_content` (text or an `audio_string`), after earlier turns.

    With no persona and no history this is exactly the published web-demo prompt. A persona is
    appended to the published instruction; past turns are rendered as text (their audio tokens dropped).
    Every turn of `history` is rendered: `fit_prompt` drops the oldest to fit a context.
    """
    system = SPEECH_INSTRUCTION if is_audio_content(user_content) else TEXT_INSTRUCTION
    if persona.strip():
        system = f"{system.rstrip()} {persona.strip()}"
    out = f"<|system|>\n{system}"
    for turn in history:
        if turn.role == "user":
            out += f"<|user|>\n{turn.text}"
        else:
            out += f"{ASSISTANT_HEADER}{turn.text}"
    return out + f"<|user|>\n{user_content}{ASSISTANT_HEADER}"


def fit_prompt(user_content: str, history: Sequence[Turn], persona: str,
               count_tokens: Callable[[str], int], max_prompt_tokens: int) -> str:
    """`format_prompt` with the oldest past turns dropped until count_tokens(prompt) <= max_prompt_tokens.

    The system instruction (+ persona) and the newest user content are always kept; ContextOverflowError
    (code text_too_long) when even they alone do not fit."""
    kept = fit_history(list(history), lambda h: count_tokens(format_prompt(user_content, h, persona)),
                       max_prompt_tokens, is_user=lambda t: t.role == "user")
    return format_prompt(user_content, kept, persona)


@dataclass
class Glm4VoiceVocab:
    """Where text, special and audio tokens sit in the LLM vocabulary.

    audio_offset: id of <|audio_0|>; audio ids are contiguous [audio_offset, audio_offset + num_audio)
    text_ids:     ids the reply may use as text (everything below audio_offset except special tokens)
    vocab_size:   the model's (padded) vocabulary size; ids >= audio_offset + num_audio are padding
    """

    audio_offset: int
    num_audio: int
    stop_id: int
    begin_audio_id: int
    end_audio_id: int
    vocab_size: int
    special_ids: set[int] = field(default_factory=set)
    prefix_ids: list[int] = field(default_factory=list)

    @classmethod
    def from_tokenizer(cls, tok, vocab_size: int) -> "Glm4VoiceVocab":
        """Read the layout from a tokenizer; `CheckpointError` if the GLM-4-Voice tokens are missing."""
        def tid(s: str) -> int | None:
            i = tok.convert_tokens_to_ids(s)
            return None if i is None or i == tok.unk_token_id and s != tok.unk_token else int(i)

        needed = {s: tid(s) for s in (STOP, BEGIN_AUDIO, END_AUDIO, audio_token(0))}
        missing = [s for s, i in needed.items() if i is None]
        if missing:
            raise CheckpointError(f"tokenizer lacks GLM-4-Voice tokens {missing}")
        offset = needed[audio_token(0)]
        n = 0
        while n < NUM_AUDIO_TOKENS and tid(audio_token(n)) == offset + n:
            n += 1
        if tid(audio_token(n)) is not None:
            raise CheckpointError(f"audio tokens are not contiguous: {audio_token(n)} is not id {offset + n}")
        if offset + n > vocab_size:
            raise CheckpointError(f"audio tokens end at {offset + n} > model vocabulary {vocab_size}")
        specials = {i for s in SPECIAL_TOKENS if (i := tid(s)) is not None}
        specials |= {int(i) for i in getattr(tok, "all_special_ids", []) if i is not None and i < offset}
        prefix = [i for s in PROMPT_PREFIX if (i := tid(s)) is not None]
        return cls(offset, n, needed[STOP], needed[BEGIN_AUDIO], needed[END_AUDIO], vocab_size, specials, prefix)

    @classmethod
    def synthetic(cls, vocab_size: int = 168960, audio_offset: int = 151552,
                  num_audio: int = NUM_AUDIO_TOKENS) -> "Glm4VoiceVocab":
        """The GLM-4-Voice-9B layout without a tokenizer (random-weight benchmarks): the 223 ids below
        <|audio_0|> are special (151329.. in the real vocabulary), <|user|> is the 8th of them."""
        base = audio_offset - 223
        if base < 0:
            raise ValueError(f"audio_offset {audio_offset} leaves no room for the 223 special ids")
        specials = set(range(base, audio_offset))
        return cls(audio_offset, num_audio, stop_id=base + 7, begin_audio_id=base + 14, end_audio_id=base + 15,
                   vocab_size=vocab_size, special_ids=specials, prefix_ids=[base + 2, base + 4])

    def is_audio(self, token_id: int) -> bool:
        return self.audio_offset <= token_id < self.audio_offset + self.num_audio

    def audio_id(self, token_id: int) -> int:
        """Speech-token id of LLM token `token_id` (= token id - id(<|audio_0|>))."""
        if not self.is_audio(token_id):
            raise ValueError(f"token {token_id} is not an audio token")
        return token_id - self.audio_offset

    def token_id(self, audio_id: int) -> int:
        """LLM token id of speech-token id `audio_id`."""
        if not 0 <= audio_id < self.num_audio:
            raise ValueError(f"audio id {audio_id} out of range [0, {self.num_audio})")
        return self.audio_offset + audio_id

    def masks(self, device: torch.device | str = "cpu", full_text_blocks: bool = False) -> dict[str, torch.Tensor]:
        """Additive logit masks [vocab_size] (0 allowed, -inf not) for the interleave grammar's states.

        full_text_blocks: no audio token in a text phase, so every text block has its 13 tokens (what a trained
        model does while its text lasts; random weights would pick one of the 16,384 audio tokens, ending the
        text, about one time in ten)."""
        v = self.vocab_size
        text = torch.zeros(v, dtype=torch.bool)
        text[: self.audio_offset] = True
        text[list(self.special_ids)] = False
        audio = torch.zeros(v, dtype=torch.bool)
        audio[self.audio_offset: self.audio_offset + self.num_audio] = True
        stop = torch.zeros(v, dtype=torch.bool)
        stop[self.stop_id] = True

        def bias(allowed: torch.Tensor) -> torch.Tensor:
            return torch.where(allowed, 0.0, float("-inf")).to(device)

        in_text = text if full_text_blocks else text | audio
        return {"text_first": bias(in_text), "text": bias(in_text | stop),
                "audio": bias(audio), "audio_tail": bias(audio | stop)}


@dataclass
class InterleaveState:
    """Where the reply is in the 13 text : 26 audio grammar.

    text phase: up to 13 text tokens; an audio token here means the text is finished (text_done) and
    only audio (and the stop token) follows. audio phase: exactly 26 audio tokens, then text again.
    The stop token is allowed once at least one audio block exists (text phase) or after the text is done.
    """

    phase: str = "text"
    count: int = 0                 # tokens in the current phase
    text_done: bool = False
    blocks: int = 0                # completed audio blocks
    stopped: bool = False

    def mask_key(self) -> str:
        """Which mask of `Glm4VoiceVocab.masks` applies to the next token."""
        if self.text_done:
            return "audio_tail"
        if self.phase == "audio":
            return "audio"
        return "text" if self.blocks > 0 else "text_first"

    def finish_text(self) -> None:
        """Declare the text finished (forced-text decoding ran out of text): only audio + stop follow."""
        self.text_done = True
        self.phase, self.count = "audio", 0

    def advance(self, token_id: int, vocab: Glm4VoiceVocab) -> str:
        """Record `token_id`; returns its kind: 'text', 'audio' or 'stop'."""
        if token_id == vocab.stop_id:
            self.stopped = True
            return "stop"
        if vocab.is_audio(token_id):
            if self.phase == "text":            # audio where text could go: the text is finished
                self.text_done = True
                self.phase, self.count = "audio", 0
            self.count += 1
            if self.count == AUDIO_PER_BLOCK and not self.text_done:
                self.phase, self.count, self.blocks = "text", 0, self.blocks + 1
            return "audio"
        if self.phase != "text" or self.text_done:
            raise ValueError(f"text token {token_id} where the grammar wants audio")
        self.count += 1
        if self.count == TEXT_PER_BLOCK:
            self.phase, self.count = "audio", 0
        return "text"
