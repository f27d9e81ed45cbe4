"""A streaming session: the ONE block loop (`next_chunk`) that daemon, `say`, benchmark and eval all call.

`next_chunk` in numbered steps:
  1. interrupt: cancel the Thinker's output, drop the chunks in flight, note the "interrupted" event;
  2. gather the conditioning of the chunk that enters the pipeline: its frames from the Thinker feed
     (speech features, hidden states aligned to frames, audio, text) or silence when nothing is said; when
     a reply starts while only silence is in flight, that silence is dropped so the reply comes out first;
  3. denoise: one pyramid pass advances every chunk in flight (and writes the previous clean chunk's KV
     cache at noise 0 in the same pass); after a flush/start the pipeline is refilled (up to N passes; a
     chunk enters only when its frames are ready, so the first one out needs only its own speech);
  4. decode the chunk that became clean with the VAE;
  5. emit it as an AVChunk (pts on the 22,050 Hz clock, continuous);
  6. advance: the clean chunk is carried at noise 0 by the next pass, which writes its cache.
The steps are phases (`_begin` = 1.+2., `_refill` when a pass made no chunk clean, `_end` = 4.+5.) that the engine's
Stepper (engine_core/engine/stepper.py) runs for every session due at once, the passes of all of them as one
batched Actor pass: `next_chunk` hands the session to it, so one session or many go through the same loop.
The Thinker runs on a background thread (engine_core/engine/feed.py); chat/speak/hear/interrupt/set_persona
are thread-safe.

How a reply out of silence starts (`start`, one of START_POLICIES; the first chunk is what the user waits for):
  - "alone" (the default off CUDA): nothing else enters until the reply's first chunk is out, so its passes are
    as narrow as can be, and the next chunk follows `steps` passes later;
  - "own" (the default on CUDA): as "alone", and the Thinker is held from the moment that chunk enters until it is
    decoded, so the chunk has the device to itself (for a GPU fast enough that the next chunk's speech, made
    afterwards, still comes before the first chunk has played);
  - "pyramid": the reply's next chunks enter the pyramid as soon as their speech is there;
  - "hold": as "pyramid", and the Thinker is held while the first chunk is denoised and decoded, once it has
    queued the next chunk's speech.
Measured (docs/performance.md; docs/default-model.md): on the 2-core CPU (`default`, speak) "alone" gave the first
packet in 563 ms, "pyramid" 575 ms, "hold" 415 ms but with the next chunk up to 65 ms late (a gap in the audio). On
one H100 at the paper shape (medians of 6 trials, none with a gap): "own" 312 ms, "alone" 366, "pyramid" 365, "hold"
366. A reply queued behind speech in flight changes nothing.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np
import torch

from engine_core.actor.schedule import InFlight, PyramidDenoiser, sigma_schedule
from engine_core.engine.actor_voice import ActorVoice
from engine_core.engine.chunk import AVChunk, EventItem, TextItem
from engine_core.engine.cuda_streams import running_on
from engine_core.engine.feed import SpeechFeed
from engine_core.engine.frames import frame_maker
from engine_core.engine.stepper import Stepper
from engine_core.engine.inputs import check_audio, check_persona, check_text
from engine_core.thinker.base import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME, Conversation
from engine_core.thinker.features import silence_features
from sdk.protocol.constants import MOTION_CHANNELS



class EngineParts(Protocol):
    """What a session uses of its `Engine` (engine_core.engine.engine), which creates it."""

    config: Any           # ModelConfig
    device: torch.device
    actor: Any            # Actor
    vae: Any              # VideoVAE
    thinker: Any          # Thinker


@dataclass
class ChunkMeta:
    """What a chunk carries besides its latents: audio, text, events (offsets in frames within the chunk)."""

    utt: int
    audio: np.ndarray                                   # float32 [F * 882]
    texts: list[tuple[int, str, str]] = field(default_factory=list)   # (frame, role, text)
    events: list[tuple[int, str, int, str]] = field(default_factory=list)  # (frame, event, utt, reason)
    voice: tuple[int, int, int] | None = None           # (utt, first sample, samples) of the Actor's speech to emit


START_POLICIES = ("alone", "own", "pyramid", "hold")
ALONE = ("alone", "own")          # the policies under which the reply's first chunk goes through by itself


def default_start(device: torch.device | str) -> str:
    """The start policy a session takes on `device`: "own" on CUDA, "alone" elsewhere (docs/performance.md)."""
    return "own" if torch.device(device).type == "cuda" else "alone"


class Session:
    """One avatar conversation (see the module docstring)."""

    sample_rate = SAMPLE_RATE
    fps = FPS

    def __init__(self, engine: EngineParts, portrait, persona, warnings: list[str]) -> None:
        """`portrait`: an sdk.portrait.Portrait at the session's frame size."""
        self.engine = engine
        self.id = uuid.uuid4().hex[:12]
        self.warnings = list(warnings)
        cfg = engine.config
        self.chunk_frames = cfg.chunk_frames
        self.persona = persona
        self._lock = threading.RLock()
        self._next_utt = 1
        self._interrupt = False
        self._dropped: set[int] = set()             # utterances the pending interrupt took from the Thinker
        self._speaking: int = 0                     # utterance whose start was emitted and end not yet
        self._hear_buf: list[np.ndarray] = []
        self._hear_rate: int | None = None
        self._notes: list[tuple[int, str, int, str]] = []     # events waiting for the next entering chunk
        self._user_texts: list[str] = []
        self._closed = False
        self._first_of_reply: int | None = None     # index of a reply's first chunk out of silence, while in flight
        self.start = default_start(engine.device)   # how a reply out of silence starts (module docstring)
        self.conversation = Conversation(system_prompt=persona.system_prompt,
                                         max_sentences=int(getattr(persona, "max_reply_sentences", 0) or 0))
        self.feed = SpeechFeed(engine.thinker, self.conversation)
        dev = engine.device
        self._gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 1)
        self._stepper: Stepper = getattr(engine, "stepper", None) or Stepper(engine)   # runs the block loop
        self.feed.listen(self._stepper.poke)                # speech wakes a step waiting for this session
        self._stream = self._stepper.stream                 # the block loop's own (engine/cuda_streams.py)
        self.frames = frame_maker(engine.vae, portrait, cfg.chunk_frames)   # identity reference + latents -> frames
        with running_on(self._stream):
            identity = self.frames.identity.to(dev)
            self.cache = engine.actor.new_cache()
            engine.actor.prefill_identity(self.cache, identity)
            engine.actor.warm_graphs(self.cache)            # CUDA: every pass shape captured before the first
            sigmas = sigma_schedule(cfg.steps, cfg.inference_shift).to(dev)
        self.portrait = portrait
        self.video_size = int(portrait.size)                          # frames are video_size x video_size
        motion = engine.config.vae.kind == "motion"
        # alpha comes through where the portrait's own pixels are drawn (the motion renderer); a pixel codec makes RGB
        self.video_format = "rgba32" if portrait.has_alpha and motion else "rgb24"
        self.motion_channels = list(MOTION_CHANNELS) if motion else []
        self.denoiser = PyramidDenoiser(engine.actor, self.cache, sigmas)
        # the Actor's own text and speech (actor.token_stream): engine/actor_voice.py
        self.voice = ActorVoice(engine, self.cache, cfg.seed + 2) if engine.actor.tokens is not None else None
        if (getattr(persona, "greeting", "") or "").strip():
            self.speak(persona.greeting)            # the persona greets as the session opens (utterance 1)

    # -- control (any thread) ----------------------------------------------------------------------------------
    def _new_utt(self) -> int:
        with self._lock:
            utt, self._next_utt = self._next_utt, self._next_utt + 1
            return utt

    def chat(self, text: str) -> int:
        """Queue a user turn; returns the utterance id of the reply."""
        text = check_text(text)
        utt = self._new_utt()
        self.feed.submit(utt, "chat", text)
        return utt

    def speak(self, text: str) -> int:
        """Queue a line spoken verbatim; returns its utterance id."""
        text = check_text(text)
        utt = self._new_utt()
        self.feed.submit(utt, "speak", text)
        return utt

    def hear(self, pcm: np.ndarray, sample_rate: int, final: bool = False) -> int | None:
        """Append user voice (int16 mono); on `final` transcribe and answer it. Returns the reply's utt."""
        pcm = check_audio(pcm, sample_rate, self._hear_rate)
        with self._lock:
            self._hear_rate = sample_rate
            if pcm.size:
                self._hear_buf.append(pcm)
            if not final:
                return None
            audio = np.concatenate(self._hear_buf) if self._hear_buf else np.zeros(0, np.int16)
            self._hear_buf, self._hear_rate = [], None
        if audio.size == 0:
            from engine_core.errors import AudioError

            raise AudioError("hear(final=True) without any audio")
        utt = self._new_utt()
        self.feed.submit(utt, "hear", (audio, sample_rate))
        return utt

    def interrupt(self) -> None:
        """Stop the current reply; the next chunk carries an "interrupted" event.

        The Thinker's queued and running work is dropped at once, so a chat/speak/hear made right after
        `interrupt` is the next reply (never dropped with the one it replaces); the chunks in flight are
        dropped by the next `next_chunk`."""
        with self._lock:
            self._interrupt = True
            self._dropped |= self.feed.cancel()
        self._stepper.poke()

    def set_persona(self, persona) -> None:
        """Switch persona (system prompt and reply cap of the next turns; PersonaError for a voice the model
        does not have). The greeting is said at open only."""
        persona = check_persona(persona)
        self.engine.thinker.check_voice(persona.voice)
        with self._lock:
            self.persona = persona
            self.conversation.system_prompt = persona.system_prompt
            self.conversation.max_sentences = int(getattr(persona, "max_reply_sentences", 0) or 0)

    @property
    def state(self) -> str:
        """"idle" | "thinking" | "speaking"."""
        if self._speaking:
            return "speaking"
        if self.feed.pending() or any(c.meta.utt for c in self.denoiser.in_flight):
            return "thinking"
        return "idle"

    def reply_ready(self) -> bool:
        """Whether a reply out of silence can start now: nothing but silence in flight, and its first chunk's
        speech in the feed. A caller pacing the block loop (the daemon's worker) then runs it at once, however far
        ahead of real time its idle media is (media the reply replaces). Call it from the block loop's thread."""
        return not any(c.meta.utt for c in self.denoiser.in_flight) and self.feed.speech_ready(self.chunk_frames)

    def on_speech(self, fn: Callable[[], None]) -> None:
        """Call `fn()` (from the Thinker's thread) whenever the Thinker queues speech or ends a reply: a caller
        pacing the block loop waits on it and then asks `reply_ready`, instead of polling."""
        self.feed.listen(fn)

    # -- the block loop, in phases ------------------------------------------------------------------------------
    # `next_chunk` hands the session to its engine's Stepper (engine/stepper.py), which runs the phases below for
    # every session due at that moment, the Actor's passes of all of them batched: the ONE block loop, for one
    # session or many.
    def next_chunk(self) -> AVChunk:
        """Compute and return the next chunk (idle chunks when nothing is said)."""
        if self._closed:
            raise RuntimeError("session is closed")
        return self._stepper.next_chunk(self)

    def due(self, waited: bool) -> bool:
        """Whether the next chunk can be made now: its speech is there (or nothing is on its way), an interrupt is
        pending, or the session waited the chunk's wait for late speech (`waited`)."""
        return waited or self._interrupt or self._closed or self.feed.ready(self.chunk_frames)

    @property
    def chunk_wait_s(self) -> float:
        """How long the next chunk waits for a reply's late speech before it enters with what there is."""
        return self.chunk_frames / self.fps

    def _begin(self) -> InFlight:
        """Steps 1 and 2: the interrupt (drop the Thinker's output and every chunk in flight), then the entering
        chunk's conditioning (the Stepper calls this once the session is `due`: its frames are taken at once)."""
        with self._lock:
            interrupted, self._interrupt = self._interrupt, False
            dropped, self._dropped = self._dropped, set()
        if interrupted:
            self._release_thinker()
            in_flight = {c.meta.utt for c in self.denoiser.flush() if c.meta.utt}
            victim = self._speaking or max(dropped | in_flight, default=0)
            if self.voice is not None:
                self.voice.drop(dropped | in_flight)
            self._notes.append((0, "interrupted", victim, "interrupt"))
            self._speaking = 0
        return self._enter_chunk(0.0)

    def _refill(self) -> InFlight | None:
        """Step 3 when a pass made no chunk clean (refilling after a start or an interrupt): the chunk that enters the
        next pass, or None. The next chunk enters once its frames are ready; while the reply's next words are still
        on their way the chunks in flight advance without it (diffusion forcing trains every level mix), so the
        first chunk needs only its own speech and a late word leaves no silent hole."""
        alone = self.start in ALONE and self._first_of_reply is not None    # the reply's first chunk, by itself
        ready = not alone and (self.feed.ready(self.chunk_frames) or not self.denoiser.in_flight)
        return self._enter_chunk(self.chunk_wait_s) if ready else None

    def _end(self, finished: InFlight) -> AVChunk:
        """Steps 4 and 5: decode the clean chunk (a reply's first: then the Thinker goes on) and emit it (6. its KV
        cache is written by the next pass, at noise 0)."""
        frames, motion = self._decode(finished.x[0, 0])              # uint8 [F, S, S, 3|4]; [F, K] or None
        if finished.index == self._first_of_reply:
            self._release_thinker()
        return self._emit(finished, frames, motion)

    def _enter_chunk(self, wait: float) -> InFlight:
        """Step 2: the next chunk's conditioning and noise, taken from the Thinker feed (or silence)."""
        cfg = self.engine.config
        f, m, dth = cfg.chunk_frames, cfg.max_hidden_tokens, cfg.thinker.hidden_size
        items, notes = self.feed.take(f, wait)
        carried: list[tuple[int, str, str]] = []
        if items and self.denoiser.in_flight and not any(c.meta.utt for c in self.denoiser.in_flight):
            # a reply starts while only silence is in flight: drop that silence (never emitted) so the reply
            # is the next chunk out (N passes) instead of waiting behind N - 1 silent chunks
            for c in self.denoiser.flush():
                self._notes += c.meta.events
                carried += c.meta.texts
        index = self.denoiser.next_index()
        meta = ChunkMeta(utt=items[0].utt if items else 0, audio=np.zeros(f * SAMPLES_PER_FRAME, np.float32))
        meta.events += [(0, ev, utt, reason) for _, ev, utt, reason in self._notes]
        meta.texts += [(0, role, t) for _, role, t in carried]
        self._notes = []
        meta.texts += [(0, "user", t) for t in notes.transcripts]
        meta.events += [(0, "utterance_end", u, "") for u in notes.late_ends]
        meta.events += [(0, "utterance_end", u, "error: " + msg) for u, msg in notes.errors]
        speech = torch.zeros(f, cfg.thinker.speech_feature_size)
        hidden = torch.zeros(m, dth)
        hframes = torch.zeros(m, dtype=torch.long)
        hmask = torch.zeros(m, dtype=torch.bool)
        n_tok = 0
        for i, it in enumerate(items):
            meta.audio[i * SAMPLES_PER_FRAME:(i + 1) * SAMPLES_PER_FRAME] = it.audio
            speech[i] = it.speech
            if it.first:
                meta.events.append((i, "utterance_start", it.utt, ""))
                if self.start != "pyramid" and not any(c.meta.utt for c in self.denoiser.in_flight):
                    self._first_of_reply = index    # a reply out of silence: the chunk the user waits for
                    if self.start in ("hold", "own"):   # "hold": once the next chunk's speech is queued
                        self.feed.hold(lead=f if self.start == "hold" else 0)
            if it.text:
                meta.texts.append((i, "assistant", it.text))
            take = 0 if cfg.thinker.speech_only else min(it.hidden.shape[0], m - n_tok)   # speech only: no states
            if take:
                hidden[n_tok:n_tok + take] = it.hidden[:take]
            hframes[n_tok:n_tok + take] = index * f + i
            hmask[n_tok:n_tok + take] = True
            n_tok += take
            if it.last:
                meta.events.append((i, "utterance_end", it.utt, it.end_reason))
        speech[len(items):] = silence_features()
        tokens = None
        if self.voice is not None:                # the Actor's tokens, text and speech replace the Thinker's
            tokens, voiced = self.voice.enter(index, items, hidden, hframes, hmask, meta)
            if voiced is not None:
                speech = voiced
            tokens = tokens[None, None]
        dev = self.engine.device
        shape = (1, 1, cfg.latent_frames, cfg.vae.latent_channels, cfg.latent_hw, cfg.latent_hw)
        noise = (torch.randn(shape, generator=self._gen) * cfg.noise_scale).to(dev)
        return InFlight(index=index, x=noise, speech=speech[None, None].to(dev), hidden=hidden[None, None].to(dev),
                        hidden_frames=hframes[None, None].to(dev), hidden_mask=hmask[None, None].to(dev), meta=meta,
                        tokens=None if tokens is None else tokens.to(dev))

    def _release_thinker(self) -> None:
        self._first_of_reply = None
        self.feed.release()

    def _decode(self, latents: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        """Step 4: latents [Fl, C, h, w] -> uint8 frames [F, S, S, 3|4] and, for a motion codec, the motion
        channels [F, K] (LTX: trimmed/padded to F)."""
        frames, motion = self.frames.make(latents)
        f = self.chunk_frames
        if frames.shape[0] < f:
            frames = np.concatenate([frames, np.repeat(frames[-1:], f - frames.shape[0], axis=0)])
        return frames[:f], (None if motion is None else motion[:f])

    def _emit(self, chunk: InFlight, frames: np.ndarray, motion: np.ndarray | None = None) -> AVChunk:
        """Step 5: the AVChunk of a clean chunk; tracks which utterance is being spoken."""
        meta: ChunkMeta = chunk.meta
        if self.voice is not None:
            self.voice.fill(meta)
        pts = chunk.index * self.chunk_frames * SAMPLES_PER_FRAME
        audio = (np.clip(meta.audio, -1.0, 1.0) * 32767.0).round().astype(np.int16)
        texts = [TextItem(pts=pts + fr * SAMPLES_PER_FRAME, text=t, role=role, final=role == "user")
                 for fr, role, t in meta.texts]
        events = []
        for fr, ev, utt, reason in sorted(meta.events, key=lambda e: e[0]):
            events.append(EventItem(pts=pts + fr * SAMPLES_PER_FRAME, event=ev, utt=utt, reason=reason))
            if ev == "utterance_start":
                self._speaking = utt
            elif ev == "utterance_end" and self._speaking == utt:
                self._speaking = 0
        return AVChunk(pts=pts, utt=meta.utt, audio=audio, frames=frames, texts=texts, events=events, motion=motion)

    def close(self) -> None:
        """Stop the Thinker thread and free the cache."""
        if not self._closed:
            self._closed = True
            self.feed.close()
            close = getattr(self.frames, "close", None)
            if close is not None:
                close()                             # (a renderer in a worker process: freed there)


__all__ = ["Session", "ChunkMeta", "START_POLICIES", "default_start"]
