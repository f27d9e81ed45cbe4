"""The session's side of the Actor's token stream (`actor.token_stream`): what a reply says comes from the Actor.

When a chunk enters the pyramid (`Session._enter_chunk`, step 2 of the block loop) `ActorVoice.enter`:
  1. draws the chunk's text and audio tokens with the Actor (engine_core/actor/tokens.py: one token per Thinker token
     of the chunk, of the same kind, the Thinker's tokens as drafts; a chunk without tokens fills its slots with pads);
  2. replaces the chunk's reply text with the Actor's (detokenized by the Thinker's tokenizer, per utterance, so a
     word cut by a chunk boundary comes out whole);
  3. hands the Actor's audio codes to the speech decoder (one stream per utterance, finished on its last frame) and
     computes the chunk's speech features from what is decoded of its frames;
  4. returns the token slots' inputs, which the chunk carries through its passes (the pass recomputes the same slots).
When the chunk is emitted (step 5) `fill` puts its frames' decoded samples into its audio: the decoder may run a few
samples behind a chunk's tokens, and by then the chunks after it have entered.

The Thinker still writes the reply (its hidden states are the Actor's cross-attention context, its tokens the
drafts); its own audio is not used.
"""

from __future__ import annotations

import numpy as np
import torch

from engine_core.actor.model import ChunkCond
from engine_core.actor.tokens import AUDIO, TEXT, ReplyVoice, TokenStream
from engine_core.errors import BackendUnavailableError
from engine_core.thinker.base import SAMPLES_PER_FRAME
from engine_core.thinker.features import speech_features


class ActorVoice:
    """A session's Actor tokens, the speech they decode to and the text they read as (module docstring)."""

    def __init__(self, engine, cache, seed: int = 0) -> None:
        thinker = engine.thinker
        self.cfg = engine.config
        self.device = engine.device
        temperature = float(getattr(thinker, "temperature", 0.2))
        top_p = float(getattr(thinker, "top_p", 0.8))
        self.stream = TokenStream(engine.actor, cache, seed=seed, temperature=temperature, top_p=top_p)
        decoder = getattr(thinker, "speech_decoder", None)
        if decoder is None and not getattr(thinker, "silent_audio", False):
            raise BackendUnavailableError("the Actor's token stream needs the Thinker's speech decoder")
        self.reply = ReplyVoice(decoder, getattr(thinker, "detokenize", None))
        self._history: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self._utt_frames: dict[int, int] = {}            # frames of each utterance taken so far
        self._text_ids: dict[int, list[int]] = {}        # text ids of each utterance so far
        self._said: dict[int, str] = {}                  # their text so far
        self.forwards = 0                                # Actor forwards of the token stream (bench)
        self.tokens = 0                                  # tokens drawn

    def enter(self, index: int, items: list, hidden: torch.Tensor, frames: torch.Tensor, mask: torch.Tensor,
              meta) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Chunk `index` enters with the feed's `items` and its hidden slots (hidden [M, D], frames [M] absolute,
        mask [M]); rewrites meta's text and marks its audio for `fill`. Returns (the token slots' inputs [T],
        speech features [F, S] of its decoded frames, or None when the chunk says nothing)."""
        cfg, t = self.cfg, self.cfg.token_slots
        r, m = cfg.cross_chunks, cfg.max_hidden_tokens
        ids, audio = self._tokens_of(items, m)
        n = int(mask.sum())
        if len(ids) < n:
            raise BackendUnavailableError("the Actor's token stream needs a Thinker that gives its token ids")
        n = min(n, t)
        kinds = [AUDIO if a else TEXT for a in audio[:n]]
        drafts = [i + cfg.thinker.text_vocab if a else i for i, a in zip(ids[:n], audio[:n])]
        if items and items[0].first:
            self.stream.start_reply()
        cond = self._cond(index, hidden, frames, mask)
        ct = self.stream.chunk(index, cond, kinds, drafts)
        self.forwards += ct.forwards
        self.tokens += n
        self._history[index] = (hidden, frames, mask)
        for k in [k for k in self._history if k < index - r]:
            del self._history[k]
        if not items:
            return ct.inputs, None
        utt = items[0].utt
        meta.texts = [x for x in meta.texts if x[1] != "assistant"]
        text = self._text(utt, ct.text_ids)
        if text:
            first = next((i for i, k in enumerate(kinds) if k == TEXT), 0)
            frame = int(frames[first]) - index * cfg.chunk_frames if n else 0
            meta.texts.append((max(0, min(frame, cfg.chunk_frames - 1)), "assistant", text))
        self.reply.add(utt, ct.audio_codes, final=any(it.last for it in items))
        start = self._utt_frames.get(utt, 0) * SAMPLES_PER_FRAME
        self._utt_frames[utt] = self._utt_frames.get(utt, 0) + len(items)
        meta.voice = (utt, start, len(items) * SAMPLES_PER_FRAME)
        wave = np.zeros(cfg.chunk_frames * SAMPLES_PER_FRAME, np.float32)
        wave[:len(items) * SAMPLES_PER_FRAME] = self.reply.samples(utt, start, len(items) * SAMPLES_PER_FRAME,
                                                                   forget=False)
        return ct.inputs, speech_features(wave)

    def fill(self, meta) -> None:
        """Step 5: the chunk's frames' audio, decoded from the Actor's audio codes."""
        voice = getattr(meta, "voice", None)
        if voice is not None:
            utt, start, n = voice
            meta.audio[:n] = self.reply.samples(utt, start, n)

    def drop(self, utts) -> None:
        """Forget interrupted utterances."""
        for u in utts:
            self.reply.drop(u)
            for d in (self._utt_frames, self._text_ids, self._said):
                d.pop(u, None)

    # -- parts ----------------------------------------------------------------------------------------------------
    @staticmethod
    def _tokens_of(items: list, m: int) -> tuple[list[int], list[bool]]:
        ids: list[int] = []
        audio: list[bool] = []
        for it in items:
            if it.token_ids is not None:
                ids += it.token_ids.tolist()
                audio += it.token_audio.tolist()
        return ids[:m], audio[:m]

    def _cond(self, index: int, hidden: torch.Tensor, frames: torch.Tensor, mask: torch.Tensor) -> ChunkCond:
        """ChunkCond of chunk `index` alone, with the Thinker states of the `cross_chunks` before it."""
        r = self.cfg.cross_chunks
        hs, fs, ms = [], [], []
        for k in range(index - r, index + 1):
            h, f, mk = (hidden, frames, mask) if k == index else self._history.get(
                k, (torch.zeros_like(hidden), torch.zeros_like(frames), torch.zeros_like(mask)))
            hs.append(h), fs.append(f), ms.append(mk)
        dev = self.device
        speech = torch.zeros(1, 1, self.cfg.chunk_frames, self.cfg.thinker.speech_feature_size, device=dev)
        return ChunkCond(speech, torch.stack(hs)[None].to(dev), torch.stack(fs)[None].to(dev),
                         torch.stack(ms)[None].to(dev))

    def _text(self, utt: int, text_ids: list[int]) -> str:
        """The utterance's text added by `text_ids` (the whole detokenized again: pieces that join stay whole)."""
        if not text_ids:
            return ""
        ids = self._text_ids.setdefault(utt, [])
        ids += text_ids
        whole = self.reply.text(ids)
        said = self._said.get(utt, "")
        self._said[utt] = whole
        if whole.startswith(said):
            return whole[len(said):]
        return whole[len(said):] if len(whole) > len(said) else ""


__all__ = ["ActorVoice"]
