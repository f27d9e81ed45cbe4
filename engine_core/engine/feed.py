"""The Thinker side of a session: a background thread that runs the Thinker and queues its speech per frame.

Jobs (chat / speak / hear) run one after the other on the worker thread; each Segment the Thinker yields
is cut into 40 ms `FrameItem`s (882 samples, one speech-feature row, the hidden states of the tokens
aligned to that frame, the text that starts there). The block loop takes frames with `take`. `cancel`
(interrupt) drops the queued frames and jobs and stops the running job at its next token (the Thinker asks
the feed's gate before each decoding step). `hold(lead)` makes the Thinker wait at its next token, once it has
queued `lead` frames beyond those already taken, until `release`: the session holds it while the Actor denoises
a reply's first chunk, so the two do not share the device then, yet the next chunk's speech is ready when that
chunk is out (the Thinker decodes far faster than real time and catches up).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch

from engine_core.engine.cuda_streams import THINKER_PRIORITY, new_stream, running_on
from engine_core.thinker.base import SAMPLES_PER_FRAME, Conversation, Segment, Thinker

log = logging.getLogger(__name__)

HOLD_LIMIT_S = 2.0      # a hold never keeps the Thinker waiting longer than this (a session that never releases)


@dataclass
class FrameItem:
    """One 40 ms frame of an utterance (utt > 0)."""

    utt: int
    audio: np.ndarray                 # float32 [882]
    speech: torch.Tensor              # float32 [S]
    hidden: torch.Tensor              # float32 [n_tok, Dth] tokens aligned to this frame
    token_ids: torch.Tensor | None = None    # int64 [n_tok]: their text ids / audio codes (Segment.token_ids)
    token_audio: torch.Tensor | None = None  # bool [n_tok]: which are audio
    text: str = ""
    first: bool = False               # first frame of the utterance
    last: bool = False                # last frame of the utterance (set when the Thinker finishes)
    end_reason: str = ""              # with `last`: why the utterance ended ("" or "error: ...")


@dataclass
class _Job:
    utt: int
    kind: str                         # "chat" | "speak" | "hear"
    payload: object
    generation: int


@dataclass
class FeedNotes:
    """What the block loop must report besides frames: user transcripts, ends found late, errors."""

    transcripts: list[str] = field(default_factory=list)
    late_ends: list[int] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)


class SpeechFeed:
    """Runs the Thinker on a worker thread; a frame queue between it and the block loop."""

    def __init__(self, thinker: Thinker, conversation: Conversation) -> None:
        self.thinker = thinker
        self.conversation = conversation
        self._cv = threading.Condition()
        self._jobs: collections.deque[_Job] = collections.deque()
        self._frames: collections.deque[FrameItem] = collections.deque()
        self._notes = FeedNotes()
        self._generation = 0
        self._active: int = 0          # utt of the running job (0 = none)
        self._closed = False
        self._held_since: float | None = None   # monotonic time of `hold` (None: not held)
        self._pushed = 0                        # frames the Thinker has queued, ever
        self._hold_from = 0                     # `_pushed` minus the frames still queued, at `hold`
        self._hold_lead = 0
        self._listeners: list[Callable[[], None]] = []
        self._thread = threading.Thread(target=self._run, name="thinker-feed", daemon=True)
        self._thread.start()

    # -- called from any thread -------------------------------------------------------------------------------
    def submit(self, utt: int, kind: str, payload: object) -> None:
        """Queue a job; its frames follow those of earlier jobs."""
        with self._cv:
            self._jobs.append(_Job(utt, kind, payload, self._generation))
            self._cv.notify_all()

    def cancel(self) -> set[int]:
        """Drop queued frames and jobs and the running job's future output; returns the utterances dropped."""
        with self._cv:
            self._generation += 1
            dropped = {f.utt for f in self._frames} | {j.utt for j in self._jobs}
            if self._active:
                dropped.add(self._active)
            self._frames.clear()
            self._jobs.clear()
            self._cv.notify_all()
            return dropped

    def listen(self, fn: Callable[[], None]) -> None:
        """Call `fn()` (on the Thinker's thread, outside the feed's lock) each time the Thinker queues frames, and when
        its reply ends: whoever waits for speech wakes on it instead of polling."""
        with self._cv:
            self._listeners.append(fn)

    def _tell(self) -> None:
        with self._cv:
            listeners = list(self._listeners)
        for fn in listeners:
            try:
                fn()
            except Exception:          # a listener's failure must not end the reply
                log.exception("speech listener failed")

    def hold(self, lead: int = 0) -> None:
        """Make the Thinker wait before its next decoding step once `lead` frames are queued beyond those taken
        so far (0: at once), until `release` (or HOLD_LIMIT_S)."""
        with self._cv:
            if self._held_since is None:
                self._held_since = time.monotonic()
                self._hold_from, self._hold_lead = self._pushed - len(self._frames), lead

    def release(self) -> None:
        """End a `hold`: the Thinker goes on."""
        with self._cv:
            self._held_since = None
            self._cv.notify_all()

    @property
    def held(self) -> bool:
        with self._cv:
            return self._held_since is not None

    def pending(self) -> bool:
        """Whether any reply is queued, running or has frames waiting."""
        with self._cv:
            return bool(self._jobs or self._active or self._frames)

    def working(self) -> bool:
        """Whether a job is queued or running (the Thinker still has speech to make)."""
        with self._cv:
            return bool(self._jobs or self._active)

    def busy_thinking(self) -> bool:
        """A job runs or waits but has no frames queued yet."""
        with self._cv:
            return bool((self._jobs or self._active) and not self._frames)

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._generation += 1
            self._cv.notify_all()
        self._thread.join(timeout=5.0)

    # -- called by the block loop -----------------------------------------------------------------------------
    def ready(self, n: int) -> bool:
        """Whether `take(n, ...)` would return at once with all it will get: n frames of the head utterance,
        that utterance's last frames, or silence (nothing said and nothing on its way)."""
        with self._cv:
            return self._ready(n)

    def speech_ready(self, n: int) -> bool:
        """Whether a reply's speech is queued and `take(n, ...)` would return it at once (n frames of it, or the
        last it has)."""
        with self._cv:
            return bool(self._frames) and self._ready(n)

    def _ready(self, n: int) -> bool:
        head_utt = self._frames[0].utt if self._frames else None
        if head_utt is None:
            return not (self._jobs or self._active)
        have = sum(1 for f in self._frames if f.utt == head_utt)
        return have >= n or self._active != head_utt

    def take(self, n: int, timeout: float) -> tuple[list[FrameItem], FeedNotes]:
        """Up to n frames of ONE utterance (waiting up to `timeout` s while a reply is on its way)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                if self._ready(n):
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(left)
            out: list[FrameItem] = []
            head_utt = self._frames[0].utt if self._frames else None
            have = sum(1 for f in self._frames if f.utt == head_utt) if head_utt else 0
            starting = bool(self._frames) and self._frames[0].first
            if starting and have < n and self._active == head_utt:
                n = 0        # do not open an utterance with a half-empty chunk: wait one more chunk instead
            while self._frames and len(out) < n and (not out or self._frames[0].utt == out[0].utt):
                out.append(self._frames.popleft())
            notes, self._notes = self._notes, FeedNotes()
            return out, notes

    # -- worker thread ----------------------------------------------------------------------------------------
    def _run(self) -> None:
        with running_on(new_stream(getattr(self.thinker, "device", None), THINKER_PRIORITY)):
            self._work()

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._jobs and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                job = self._jobs.popleft()
                if job.generation != self._generation:
                    continue
                self._active = job.utt
            error = None
            try:
                self._do(job)
            except Exception as e:     # a Thinker failure ends this utterance, not the session
                log.exception("thinker job %s failed", job.kind)
                error = f"{type(e).__name__}: {e}"
            finally:
                with self._cv:
                    self._finish(job, error)
                    self._active = 0
                    self._cv.notify_all()
                self._tell()

    def _gate(self, job: _Job):
        """The Gate of `job`'s Thinker call: waits while held; False once the job is cancelled or the feed closed."""
        def gate() -> bool:
            with self._cv:
                while (self._held_since is not None and self._pushed - self._hold_from >= self._hold_lead
                       and job.generation == self._generation and not self._closed):
                    left = self._held_since + HOLD_LIMIT_S - time.monotonic()
                    if left <= 0:
                        self._held_since = None
                        break
                    self._cv.wait(left)
                return job.generation == self._generation and not self._closed
        return gate

    def _segments(self, job: _Job) -> Iterator[Segment]:
        gate = self._gate(job)
        if job.kind == "speak":
            return self.thinker.speak(str(job.payload), gate=gate)
        if job.kind == "chat":
            return self.thinker.reply(self.conversation, str(job.payload), gate=gate)
        pcm, sr = job.payload  # type: ignore[misc]
        transcript = self.thinker.hear(pcm, sr)
        with self._cv:
            if job.generation == self._generation:
                self._notes.transcripts.append(transcript.text)
        return self.thinker.reply(self.conversation, transcript, gate=gate)

    def _do(self, job: _Job) -> None:
        first = True
        for seg in self._segments(job):
            items = _frames_of(seg, job.utt)
            if not items:
                continue
            items[0].first = first
            first = False
            with self._cv:
                if job.generation != self._generation or self._closed:
                    return
                self._frames.extend(items)
                self._pushed += len(items)
                self._cv.notify_all()
            self._tell()

    def _finish(self, job: _Job, error: str | None) -> None:
        """End the utterance exactly once: on its last queued frame, or as a note when no frame is left
        (an error note when the Thinker failed, a late end otherwise)."""
        if job.generation != self._generation:
            return
        for f in reversed(self._frames):
            if f.utt == job.utt:
                f.last, f.end_reason = True, f"error: {error}" if error else ""
                return
        if error:
            self._notes.errors.append((job.utt, error))
        else:
            self._notes.late_ends.append(job.utt)


def _frames_of(seg: Segment, utt: int) -> list[FrameItem]:
    """Cut a Segment into FrameItems (hidden tokens go to the frame they are aligned to)."""
    items = []
    rel = (seg.hidden_frames - seg.start_frame).clamp(0, max(seg.num_frames - 1, 0))
    for i in range(seg.num_frames):
        sel = (rel == i).nonzero().flatten()
        items.append(FrameItem(utt=utt, audio=seg.audio[i * SAMPLES_PER_FRAME:(i + 1) * SAMPLES_PER_FRAME],
                               speech=seg.speech_features[i], hidden=seg.hidden[sel],
                               text=seg.text if i == 0 else "",
                               token_ids=None if seg.token_ids is None else seg.token_ids[sel],
                               token_audio=None if seg.token_audio is None else seg.token_audio[sel]))
    return items

