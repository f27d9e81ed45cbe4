"""The `glm4voice` Thinker (the paper's): GLM-4-Voice-9B run through transformers' native `GlmForCausalLM`.

Loading: the published GLM-4-Voice-9B directory (ChatGLM format, read in memory into the native classes without
running its code: glm4voice_files) or a native GLM directory (model_type "glm"); the published speech decoder and
tokenizer from their directories (engine_core/codecs/glm4voice_decoder.py, glm4voice_tokenizer.py).
`from_config` builds the same classes with random weights at any shape (the GPU benchmark uses `paper_config()`).

Decoding (glm4voice_decode): a token is drawn on the model's device and fed to the next forward before the host
reads it, so the GPU does not wait for the host between tokens; the 13 text : 26 audio interleave and the
`<|user|>` stop are enforced by logit masks from `InterleaveState` (glm4voice_format). Each generated token is fed back, so every token has its own
last-layer hidden state. Audio tokens (12.5/s) sit two video frames apart; text tokens sit on the frame
of the audio that follows them. Segments are cut at 13, 20, then 40 audio tokens (a first segment of one whole 1 s
chunk, then the published decoder's streaming block sizes); each segment holds the speech decoded so far, in whole
frames (the decoder's last few samples come with the next one). Without a decoder the Thinker refuses to load
unless `allow_silent_audio=True` (then the audio is silence, on purpose). With `decode_audio=False` (the Actor's
token stream speaks instead) the segments are silent and the decoder is left to the Actor's tokens.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from engine_core.codecs.speech import TokenSpeechDecoder
from engine_core.errors import BackendUnavailableError, CheckpointError, ContextOverflowError, TextError

from .base import (SAMPLES_PER_FRAME, VOICE_PLACEHOLDER, Conversation, Gate, Segment, Thinker, Transcript,
                   UserTurn, frames_holding, go_on, turn_content, turn_text)
from .context import prompt_budget
from .features import SPEECH_FEATURE_SIZE, speech_features
from .glm4voice_format import (FRAMES_PER_AUDIO_TOKEN, TEXT_PER_BLOCK, Glm4VoiceVocab, InterleaveState,
                               audio_string, fit_prompt, format_prompt, is_audio_content)
from .glm4voice_decode import Decoding, HostCopy, draw_token

log = logging.getLogger(__name__)

# audio tokens per emitted segment: first, second, then every later one. The first, 13 tokens = 26 frames, holds
# one whole 1 s (25-frame) chunk, so a reply's first chunk can enter the Actor from the first segment.
BLOCK_SCHEDULE = (13, 20, 40)
WARM_UP_PROMPT = "<|user|>\nHello!<|assistant|>streaming_transcription\n"   # `Glm4VoiceThinker.warm`'s reply
STEP_WEIGHTS = ("bf16", "int8")    # what the "fast" decode step's products read (see `Glm4VoiceThinker`)


def paper_config(**overrides):
    """`GlmConfig` of GLM-4-Voice-9B: hidden 4096, 40 layers, 32 heads, 2 KV groups, FFN 13696, vocab 168,960."""
    from transformers import GlmConfig

    kw = dict(vocab_size=168960, hidden_size=4096, intermediate_size=13696, num_hidden_layers=40,
              num_attention_heads=32, num_key_value_heads=2, head_dim=128, rms_norm_eps=1.5625e-07,
              max_position_embeddings=8192, attention_bias=True, tie_word_embeddings=False,
              rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5})
    kw.update(overrides)
    return GlmConfig(**kw)


class Glm4VoiceThinker(Thinker):
    """GLM-4-Voice as a Thinker. Build it with `from_pretrained(dir, ...)` or `from_config(cfg, ...)`.

    model:              a transformers `GlmForCausalLM`
    tokenizer:          its tokenizer (None only for random-weight benchmarks: text then decodes to '')
    vocab:              the token layout (`Glm4VoiceVocab`)
    speech_decoder:     GLM-4-Voice's speech decoder (codecs.glm4voice_decoder); None -> BackendUnavailableError unless
                        allow_silent_audio
    speech_tokenizer:   GLM-4-Voice's speech tokenizer for `hear` (codecs.glm4voice_tokenizer; None -> hear raises)
    decode_audio:       False: segments carry silence (of the tokens' length) and no speech is decoded here; the
                        Actor's token stream decodes its own tokens with `speech_decoder` (engine/actor_voice.py)
    asr:                optional (pcm, sample_rate) -> text, the transcript `hear` shows for the user's voice
                        (GLM-4-Voice itself has none: without it the transcript is VOICE_PLACEHOLDER)
    full_text_blocks:   no audio token where text may go, so each text block has all 13 tokens before its audio, as
                        a trained model's reply does while its text lasts (`Glm4VoiceVocab.masks`): random weights
                        would end the text early and reach the first chunk's speech sooner than real ones. The
                        random-weight benchmarks set it.
    max_context:        tokens of the static KV cache ("fast"); the context is the smaller of it and the
                        model's max_position_embeddings. A prompt gets the context minus max_new_tokens
                        (at most half reserved); older turns are dropped to fit (`prompt_for`).
    step_weights:       the "fast" decode step's weights: "bf16" (the model's own) or "int8" (weight-only int8,
                        half the bytes a token reads, made once and shared by the decoders: glm_fast.py,
                        docs/performance.md); the prompt's prefill always runs on the model's own.
    batch_slots:        > 0: the replies in flight (every session's) decode as one batch, a row each of a static
                        cache of this many rows, one step for all (glm_batch.py; continuous batching); a reply past
                        the rows gets a decoder of its own. 0: each reply its own decoder ("fast" only).
    """

    speech_feature_size = SPEECH_FEATURE_SIZE

    def __init__(self, model, tokenizer, vocab: Glm4VoiceVocab, *, speech_decoder: TokenSpeechDecoder | None = None,
                 speech_tokenizer=None, allow_silent_audio: bool = False, decode_audio: bool = True,
                 temperature: float = 0.2, top_p: float = 0.8, max_new_tokens: int = 2000, seed: int = 0,
                 persona_in_system: bool = True, decode_impl: str = "fast", max_context: int = 8192,
                 asr: Callable[[np.ndarray, int], str] | None = None, full_text_blocks: bool = False,
                 step_weights: str = "bf16", batch_slots: int = 0) -> None:
        if speech_decoder is None and not allow_silent_audio:
            raise BackendUnavailableError(
                "glm4voice needs the GLM-4-Voice speech decoder (decoder_dir: the published glm-4-voice-decoder); pass "
                "allow_silent_audio=True to run with SILENT audio (benchmarks, tests)")
        self.model, self.tok, self.vocab = model.eval(), tokenizer, vocab
        self.hidden_size = int(model.config.hidden_size)
        self.speech_decoder, self.speech_tokenizer = speech_decoder, speech_tokenizer
        self.silent_audio = speech_decoder is None
        self.decode_audio = decode_audio and speech_decoder is not None
        self.temperature, self.top_p, self.max_new_tokens, self.seed = temperature, top_p, max_new_tokens, seed
        self.persona_in_system = persona_in_system
        self.device = next(model.parameters()).device
        self._masks = vocab.masks(self.device, full_text_blocks)
        if decode_impl not in ("fast", "hf"):
            raise ValueError(f"decode_impl must be 'fast' or 'hf', not {decode_impl!r}")
        self.decode_impl, self.max_context = decode_impl, max_context
        if step_weights not in STEP_WEIGHTS:
            raise ValueError(f"step_weights must be one of {', '.join(STEP_WEIGHTS)}, not {step_weights!r}")
        self.step_weights = step_weights
        self._int8 = None            # glm_fast.StepWeights in int8, made by the first decoder that needs it
        self.asr = asr
        self._fast_free: list = []   # idle GlmFastDecoders (static cache of max_context tokens each), built on use
        self._fast_lock = threading.Lock()
        self.batch_slots = batch_slots if decode_impl == "fast" else 0
        self._batch = None           # glm_batch.GlmBatchDecoder: every session's reply decoded as one batch

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(cls, model_dir: str | Path, device: str = "cpu", dtype: torch.dtype = torch.bfloat16, *,
                        decoder_dir: str | Path | None = None, speech_tokenizer_dir: str | Path | None = None,
                        allow_silent_audio: bool = False, **kw) -> "Glm4VoiceThinker":
        """Load the published GLM-4-Voice-9B directory (ChatGLM format) or a native GLM one, + the published speech
        decoder / speech tokenizer directories when given."""
        from transformers import AutoTokenizer, GlmForCausalLM

        from engine_core.codecs.glm4voice_decoder import Glm4VoiceDecoder
        from engine_core.codecs.glm4voice_tokenizer import Glm4VoiceSpeechTokenizer

        from .glm4voice_files import load_chatglm

        model_dir = Path(model_dir)
        try:
            cfg = json.loads((model_dir / "config.json").read_text())
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"no readable config.json in {model_dir}: {exc}") from exc
        if cfg.get("model_type") not in ("chatglm", "glm"):
            raise CheckpointError(f"{model_dir}: model_type {cfg.get('model_type')!r}, expected 'chatglm' (the "
                                  "published GLM-4-Voice-9B) or 'glm'")
        try:
            if cfg.get("model_type") == "chatglm":
                model, tok = load_chatglm(model_dir, device, dtype)
            else:
                tok = AutoTokenizer.from_pretrained(model_dir)
                model = GlmForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device)
        except (OSError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"cannot load GLM checkpoint {model_dir}: {exc}") from exc
        vocab = Glm4VoiceVocab.from_tokenizer(tok, int(model.config.vocab_size))
        decoder = Glm4VoiceDecoder(decoder_dir, device) if decoder_dir is not None else None
        speech_tok = Glm4VoiceSpeechTokenizer(speech_tokenizer_dir, device) if speech_tokenizer_dir is not None else None
        return cls(model, tok, vocab, speech_decoder=decoder, speech_tokenizer=speech_tok,
                   allow_silent_audio=allow_silent_audio, **kw)

    @classmethod
    def from_config(cls, cfg=None, device: str = "cpu", dtype: torch.dtype = torch.bfloat16, *,
                    tokenizer=None, allow_silent_audio: bool = False, seed: int = 0, **kw) -> "Glm4VoiceThinker":
        """Random weights of the same classes at `cfg`'s shape (default `paper_config()`), built on `device` (a
        `speech_decoder` may be given: e.g. the published decoder's shapes with random weights)."""
        from transformers import GlmForCausalLM

        cfg = cfg if cfg is not None else paper_config()
        torch.manual_seed(seed)
        with torch.device(device):
            model = GlmForCausalLM._from_config(cfg, dtype=dtype)
        vocab = (Glm4VoiceVocab.from_tokenizer(tokenizer, cfg.vocab_size) if tokenizer is not None
                 else Glm4VoiceVocab.synthetic(cfg.vocab_size, audio_offset=min(151552, cfg.vocab_size // 2),
                                               num_audio=min(16384, cfg.vocab_size // 4)))
        return cls(model, tokenizer, vocab, allow_silent_audio=allow_silent_audio, seed=seed, **kw)

    # ------------------------------------------------------------------ prompt + decoding
    def prompt_ids(self, prompt: str) -> list[int]:
        """[gMASK]<sop> + the prompt's token ids (a stand-in byte mapping when there is no tokenizer)."""
        if self.tok is None:        # random-weight benchmark: any deterministic ids in the text range
            body = [b % max(1, min(self.vocab.audio_offset, 150000)) for b in prompt.encode()]
        else:
            body = self.tok.encode(prompt, add_special_tokens=False)
        return list(self.vocab.prefix_ids) + list(body)

    @property
    def context_tokens(self) -> int:
        """Positions a prompt and its reply share: the model's max_position_embeddings, and for the "fast"
        decoder at most its static cache (`max_context`)."""
        n = int(getattr(self.model.config, "max_position_embeddings", self.max_context) or self.max_context)
        return min(n, int(self.max_context)) if self.decode_impl == "fast" else n

    @property
    def max_prompt_tokens(self) -> int:
        """Tokens a prompt may use: the context minus the reply's max_new_tokens (at most half of it)."""
        return prompt_budget(self.context_tokens, self.max_new_tokens)

    def prompt_for(self, conversation: Conversation, user: UserTurn) -> list[int]:
        """Prompt ids of a reply to `user` (a Transcript is read as its `content`) after the
        conversation's turns, the oldest dropped to fit `max_prompt_tokens` (ContextOverflowError if even
        the newest turn alone cannot)."""
        persona = conversation.system_prompt if self.persona_in_system else ""
        prompt = fit_prompt(turn_content(user), conversation.turns, persona,
                            lambda p: len(self.prompt_ids(p)), self.max_prompt_tokens)
        return self.prompt_ids(prompt)

    def generate(self, prompt_ids: list[int], forced_text: list[int] | None = None, max_new_tokens: int | None = None,
                 gate: Gate | None = None) -> Iterator[tuple[int, str, torch.Tensor]]:
        """Yield (token id, kind 'text'|'audio', hidden [H]) for each reply token, stopping at <|user|>, when
        the context is full, or when `gate` (asked before each token's forward) says stop.

        forced_text: if given, the text slots are filled with these ids (verbatim speech); the model
        only chooses the audio tokens; when they run out the text is declared finished.

        Token i's forward is launched before the host reads token i (glm4voice_decode), and token i - 1 is handed
        on while it runs; a forward given the reply's end is taken back (`Decoding.undo`).
        """
        if len(prompt_ids) >= self.context_tokens:
            raise ContextOverflowError(f"the prompt has {len(prompt_ids)} tokens; the context holds "
                                       f"{self.context_tokens}")
        limit = min(max_new_tokens or self.max_new_tokens, self.context_tokens - len(prompt_ids))
        gen = torch.Generator().manual_seed(self.seed)
        dec = self._decoding(prompt_ids)
        try:
            logits = dec.prompt(prompt_ids)
            state, forced = InterleaveState(), list(forced_text or [])
            forced_mode = forced_text is not None
            ahead = None                 # (id, kind, its hidden on its way to the host): handed on one token late
            for _ in range(limit):
                if not go_on(gate):
                    break
                key = state.mask_key()
                if forced_mode and key in ("text", "text_first") and not forced:
                    state.finish_text()
                    key = state.mask_key()
                if forced_mode and key in ("text", "text_first"):
                    token = torch.tensor([forced.pop(0)], device=self.device)
                else:
                    u = float(torch.rand((), generator=gen))
                    token = draw_token(logits, self._masks[key], self.temperature, self.top_p, u)
                token_id = HostCopy(token)
                logits, h = dec.step(token)                       # launched; the host goes on meanwhile
                if ahead is not None:
                    yield ahead[0], ahead[1], ahead[2].get()
                    ahead = None
                t = int(token_id.get())
                kind = state.advance(t, self.vocab)
                if kind == "stop":
                    dec.undo()                                    # its forward was for nothing
                    break
                dec.tell(t)
                ahead = (t, kind, HostCopy(h.float()))
            if ahead is not None:
                yield ahead[0], ahead[1], ahead[2].get()
        finally:
            dec.release()

    def _take_fast(self, prompt_ids: list[int] | None = None):
        """A "fast" decoder of this Thinker's own, for one generation: sessions share the Thinker, each reply has a
        static cache to itself. The free one holding most of `prompt_ids` already is taken; none free: a new one."""
        from engine_core.thinker.glm_fast import GlmFastDecoder, int8_step_weights

        with self._fast_lock:
            if self._fast_free:
                best = max(self._fast_free, key=lambda d: d.cached_prefix(prompt_ids or []))
                self._fast_free.remove(best)
                return best
            if self.step_weights == "int8" and self._int8 is None:
                self._int8 = int8_step_weights(self.model)
        fast = GlmFastDecoder(self.model, max_len=self.max_context, step_weights=self._int8)
        fast.warm()
        return fast

    def _batcher(self):
        """The batched decoder of every session's replies (built on first use, sharing the int8 step weights)."""
        from engine_core.thinker.glm_batch import GlmBatchDecoder
        from engine_core.thinker.glm_fast import int8_step_weights

        with self._fast_lock:
            if self._batch is None:
                if self.step_weights == "int8" and self._int8 is None:
                    self._int8 = int8_step_weights(self.model)
                self._batch = GlmBatchDecoder(self.model, slots=self.batch_slots, max_len=self.max_context,
                                              step_weights=self._int8)
            return self._batch

    def _give_back(self, fast) -> None:
        with self._fast_lock:
            self._fast_free.append(fast)

    def warm(self, reply: bool | None = None) -> None:
        """With the "fast" decoder on CUDA: its fused regions compiled and every span's step graph captured. Then
        (`reply`; None: on CUDA) a short reply generated and thrown away, up to its first segment of speech: what a
        process does only once (CUDA loads each kernel's module at its first launch; the sampler's, the pinned host
        copies') is then not paid by the first user. At the paper's shape on an H200 the process's first reply
        had its speech ready ~67 ms later than the next ones. The reply's draws come
        from its own seeded generator, so the replies after it are the ones they would have been."""
        if self.batch_slots:
            try:
                self._batcher().warm()
            except Exception:              # (its graphs could not be made: each reply decodes on its own, as before)
                log.exception("the batched decode step could not be warmed: replies decode one by one")
                self.batch_slots, self._batch = 0, None
        if not self.batch_slots and self.decode_impl == "fast":
            self._give_back(self._take_fast())
        if reply if reply is not None else self.device.type == "cuda":
            first_block = TEXT_PER_BLOCK + BLOCK_SCHEDULE[0]
            tokens = self.generate(self.prompt_ids(WARM_UP_PROMPT), max_new_tokens=first_block)
            for _ in self._segments(tokens, []):
                pass

    def _decoding(self, prompt_ids: list[int]) -> Decoding:
        """A reply's decoder state (glm4voice_decode.Decoding): "fast" (a static cache of this Thinker's own, the
        free one holding most of the prompt) or "hf" (the transformers reference)."""
        if self.batch_slots and self._batcher().broken:       # (a batched step failed: one by one from now on)
            self.batch_slots = 0
        if self.batch_slots:
            slot = self._batcher().take(prompt_ids)
            if slot is not None:
                if len(prompt_ids) >= slot.max_len:
                    self._batch.give_back(slot)
                    raise ValueError(f"the prompt has {len(prompt_ids)} tokens; the context holds {slot.max_len}")
                return Decoding.fast(slot, lambda: self._batch.give_back(slot))
        if self.decode_impl == "fast":
            fast = self._take_fast(prompt_ids)
            if len(prompt_ids) >= fast.max_len:
                self._give_back(fast)
                raise ValueError(f"the prompt has {len(prompt_ids)} tokens; the context holds {fast.max_len}")
            return Decoding.fast(fast, lambda: self._give_back(fast))
        return Decoding.hf(self.model, self.device)

    # ------------------------------------------------------------------ segments
    def detokenize(self, ids: list[int]) -> str:
        """Text of text token ids ('' without a tokenizer)."""
        return self.tok.decode(ids) if (self.tok is not None and ids) else ""

    def _segments(self, tokens: Iterator[tuple[int, str, torch.Tensor]], text_out: list[str]) -> Iterator[Segment]:
        pending: list[tuple[int, str, torch.Tensor, int]] = []      # (id, kind, hidden, frame)
        audio_total, n_block, start_frame = 0, 0, 0
        wave_buf = np.zeros(0, np.float32)
        stream = self.speech_decoder.start_stream() if self.decode_audio else None
        decoded = [0]                                               # audio tokens handed to the decoder

        def emit(final: bool) -> Segment | None:
            """The pending tokens as a Segment; its frames: the speech decoded so far (whole frames; the rest with the
            next segment), or two per audio token when nothing is decoded here. None: not one frame yet."""
            nonlocal pending, start_frame, wave_buf, n_block
            audio_ids = [self.vocab.audio_id(t) for t, k, _, _ in pending if k == "audio"]
            if stream is not None:
                new = audio_ids[decoded[0]:]
                if new or final:
                    wave_buf = np.concatenate([wave_buf, self.speech_decoder.decode(stream, new, final)])
                    decoded[0] += len(new)
                n_frames = frames_holding(wave_buf.size) if final else wave_buf.size // SAMPLES_PER_FRAME
            else:
                n_frames = FRAMES_PER_AUDIO_TOKEN * len(audio_ids)
                n_frames = max(n_frames, 1) if final else n_frames
            if n_frames == 0:
                return None
            audio = np.zeros(n_frames * SAMPLES_PER_FRAME, np.float32)
            take = min(audio.size, wave_buf.size)
            audio[:take] = np.clip(wave_buf[:take], -1.0, 1.0)
            wave_buf = wave_buf[take:]
            text_ids = [t for t, k, _, _ in pending if k == "text"]
            text = self.detokenize(text_ids)
            text_out.append(text)
            hidden = (torch.stack([h for _, _, h, _ in pending]) if pending
                      else torch.zeros(0, self.hidden_size))
            frames = torch.tensor([min(max(f, start_frame), start_frame + n_frames - 1) for *_, f in pending],
                                  dtype=torch.long)
            audio_kind = [k == "audio" for _, k, _, _ in pending]
            ids = [self.vocab.audio_id(t) if a else t for (t, *_), a in zip(pending, audio_kind)]
            seg = Segment(start_frame=start_frame, num_frames=n_frames, audio=audio, text=text, hidden=hidden,
                          hidden_frames=frames, speech_features=speech_features(audio),
                          token_ids=torch.tensor(ids, dtype=torch.long),
                          token_audio=torch.tensor(audio_kind, dtype=torch.bool))
            start_frame += n_frames
            pending, n_block = [], n_block + 1
            decoded[0] = 0
            return seg

        for t, kind, h in tokens:
            pending.append((t, kind, h, FRAMES_PER_AUDIO_TOKEN * audio_total))
            if kind == "audio":
                audio_total += 1
                block = BLOCK_SCHEDULE[min(n_block, len(BLOCK_SCHEDULE) - 1)]
                if sum(1 for p in pending if p[1] == "audio") >= block and (seg := emit(final=False)) is not None:
                    yield seg
        if pending or (stream is not None and audio_total):
            if (seg := emit(final=True)) is not None:
                yield seg

    # ------------------------------------------------------------------ Thinker API
    def reply(self, conversation: Conversation, user: UserTurn, gate: Gate | None = None) -> Iterator[Segment]:
        """Answer `user` in the published prompt format: text, a voice string (`audio_string`), or the
        Transcript `hear` returned (the model reads its speech tokens, the conversation records its text).
        Older turns are dropped to fit the context; ContextOverflowError when this one cannot."""
        if not isinstance(user, (str, Transcript)) or not turn_content(user).strip():
            raise TextError("text is empty")
        prompt_ids = self.prompt_for(conversation, user)
        shown = turn_text(user).strip()
        if not shown or is_audio_content(shown):
            shown = VOICE_PLACEHOLDER
        texts: list[str] = []
        try:
            yield from self._segments(self.generate(prompt_ids, gate=gate), texts)
        finally:
            conversation.add("user", shown)
            conversation.add("assistant", "".join(texts).strip() or "...")

    def speak(self, text: str, gate: Gate | None = None) -> Iterator[Segment]:
        """Say `text` verbatim: its tokens are forced into the text slots; the model voices them."""
        if not isinstance(text, str) or not text.strip():
            raise TextError("text is empty")
        forced = (self.tok.encode(text, add_special_tokens=False) if self.tok is not None
                  else [b % max(1, min(self.vocab.audio_offset, 150000)) for b in text.encode()])
        prompt = self.prompt_ids(format_prompt(f"Repeat after me: {text}"))
        if len(prompt) > self.max_prompt_tokens:
            raise ContextOverflowError(f"the line needs {len(prompt)} prompt tokens; the Thinker's context "
                                       f"leaves {self.max_prompt_tokens} for the prompt")
        yield from self._segments(self.generate(prompt, forced_text=forced, gate=gate), [])

    def hear(self, pcm: np.ndarray, sample_rate: int) -> Transcript:
        """The user's voice as a Transcript: its text is the `asr` transcript when there is one, else
        VOICE_PLACEHOLDER (never token strings); its content, what `reply` feeds the model, is the speech
        tokens as the published user-content string (`audio_string`)."""
        if self.speech_tokenizer is None:
            raise BackendUnavailableError("glm4voice.hear needs the speech tokenizer (speech_tokenizer_dir: the "
                                          "published glm-4-voice-tokenizer)")
        content = audio_string(self.speech_tokenizer.tokenize(pcm, sample_rate))
        text = (self.asr(pcm, sample_rate) or "").strip() if self.asr is not None else ""
        return Transcript(text=text or VOICE_PLACEHOLDER, content=content)
