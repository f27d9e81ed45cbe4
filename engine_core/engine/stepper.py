"""The engine's block loop over every session at once: `Stepper.next_chunk(session)` is what `Session.next_chunk` calls.

Each caller (a daemon session's worker, `say`, the benchmark) asks for its session's next chunk from its own thread.
The request joins a queue; whichever caller finds no step running becomes the step's runner and takes every queued
session that is *due* (`Session.due`: its next chunk's speech is there, nothing is on its way, an interrupt is
pending, or it has waited the chunk's wait for late speech), runs one step for all of them, hands each caller its
chunk and goes back to waiting for its own. A session not due yet stays queued while the others go on (the wait
that `SpeechFeed.take` did in the single-session loop, without holding anyone else up); speech arriving for it
(`SpeechFeed.listen`) or an interrupt wakes the queue. No step waits for sessions to gather: a session that
comes while a step runs is in the next one, so under load the batch fills itself (continuous batching), and
alone a session runs as before.

One step, for sessions S (`step`), in the numbered phases of the block loop (engine/session.py):
  1.+2. each session's interrupt and entering chunk (`Session._begin`);
  3. passes: every session's pass is laid out (`PyramidDenoiser.plan`); passes of the same shape run as ONE
     batched Actor pass (`Actor.forward_many`; on CUDA from the graphs captured per batch size, else stream by
     stream); a session refilling its pyramid after a start or an interrupt needs more passes than the others
     and goes on alone or with the others refilling (`Session._refill`) until a chunk of it is clean;
  4.+5. each clean chunk is decoded and emitted (`Session._end`).
Each session's own semantics (interrupt, idle chunks, how a reply starts, `reply_ready`) are those of the one
loop it always had: the phases are the same code (tests/test_engine_stepper.py runs them for several sessions
at once).
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch

from engine_core.engine.cuda_streams import ACTOR_PRIORITY, new_stream, running_on

if TYPE_CHECKING:
    from engine_core.actor.schedule import InFlight, PyramidDenoiser
    from engine_core.engine.chunk import AVChunk


class SteppedSession(Protocol):
    """What the Stepper needs of a session: engine/session.py's `Session` is one (it imports this module; this
    module does not import it)."""

    denoiser: PyramidDenoiser

    @property
    def chunk_wait_s(self) -> float: ...

    def due(self, waited: bool) -> bool: ...

    def _begin(self) -> InFlight: ...

    def _refill(self) -> InFlight | None: ...

    def _end(self, finished: InFlight) -> AVChunk: ...


@dataclass
class _Request:
    session: SteppedSession
    deadline: float                     # monotonic time after which the session goes with whatever speech is there
    done: bool = False
    chunk: Any = None
    error: BaseException | None = None


@dataclass
class StepStats:
    """What the Stepper has done (read by the daemon's load report and the benchmark)."""

    steps: int = 0
    chunks: int = 0
    passes: int = 0                     # Actor passes computed (a batched pass counts once)
    batched_rows: int = 0               # stream passes that ran inside a batched pass
    batch_sizes: dict[int, int] = field(default_factory=lambda: defaultdict(int))


class Stepper:
    """Runs the block loop of an engine's sessions, several at once (module docstring). One per Engine
    (`Engine.stepper`); a session of an engine without one gets its own."""

    def __init__(self, engine: Any, max_batch: int = 8, decode_threads: int | None = None) -> None:
        self.engine = engine
        self.max_batch = max_batch      # most streams in one batched Actor pass
        device = torch.device(getattr(engine, "device", "cpu"))
        if decode_threads is None:      # the CPU: frames are drawn on both cores; CUDA: one thread (shared graphs)
            decode_threads = min(2, os.cpu_count() or 1) if device.type == "cpu" else 1
        self._decoders: ThreadPoolExecutor | None = None
        self._set_decoders(decode_threads)
        self.stream = new_stream(getattr(engine, "device", "cpu"), ACTOR_PRIORITY)   # the block loop's CUDA stream
        self.stats = StepStats()
        self._busy: collections.deque[tuple[float, float]] = collections.deque()   # (end, seconds) of recent steps
        self._cv = threading.Condition()
        self._queue: list[_Request] = []
        self._running = False

    # -- any thread ------------------------------------------------------------------------------------------
    def poke(self) -> None:
        """Something changed for a queued session (speech came, an interrupt): look again at who is due."""
        with self._cv:
            self._cv.notify_all()

    def next_chunk(self, session: SteppedSession) -> AVChunk:
        """The session's next chunk, computed in the next step that finds it due (possibly run by this thread)."""
        req = _Request(session, time.monotonic() + session.chunk_wait_s)
        with self._cv:
            self._queue.append(req)
            self._cv.notify_all()
        while True:
            with self._cv:
                due: list[_Request] = []
                while not req.done:
                    if not self._running:
                        due = self._take_due()
                        if due:
                            self._running = True
                            break
                    self._cv.wait(self._wait_s())
                if req.done:
                    if req.error is not None:
                        raise req.error
                    return req.chunk
            results: dict[int, Any] = {}
            t0 = time.monotonic()
            try:
                results = self.step([r.session for r in due])
            except BaseException as exc:             # (step reports per session; this is a bug in step itself)
                results = {id(r.session): exc for r in due}
            finally:
                with self._cv:
                    for r in due:
                        out = results.get(id(r.session), RuntimeError("the step gave this session no chunk"))
                        if isinstance(out, BaseException):
                            r.error = out
                        else:
                            r.chunk = out
                        r.done = True
                    self._running = False
                    now = time.monotonic()
                    self._busy.append((now, now - t0))
                    while self._busy and now - self._busy[0][0] > 30.0:
                        self._busy.popleft()
                    self._cv.notify_all()

    def utilization(self, window_s: float = 5.0) -> float:
        """The share of the last `window_s` seconds the block loop spent computing steps (0..1): how busy the engine
        is (the Thinker's threads come on top; on a GPU they overlap the steps)."""
        now = time.monotonic()
        with self._cv:
            busy = sum(d for end, d in self._busy if now - end < window_s)
        return min(1.0, busy / window_s)

    def _take_due(self) -> list[_Request]:
        now = time.monotonic()
        due = [r for r in self._queue if r.session.due(now >= r.deadline)]
        for r in due:
            self._queue.remove(r)
        return due

    def _wait_s(self) -> float | None:
        if self._running or not self._queue:
            return None
        return max(0.0, min(r.deadline for r in self._queue) - time.monotonic()) + 1e-4

    # -- one step --------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def step(self, sessions: list[SteppedSession]) -> dict[int, Any]:
        """One step of the block loop for `sessions` (each due): {id(session): its AVChunk, or the exception that
        ended its step}. A session's failure is its own; the others' chunks are made."""
        out: dict[int, Any] = {}
        with running_on(self.stream):
            entering: dict[int, Any] = {}
            by_id = {id(s): s for s in sessions}
            for s in sessions:
                try:
                    entering[id(s)] = s._begin()
                except Exception as exc:
                    out[id(s)] = exc
            finished: dict[int, Any] = {}
            while entering:
                plans: dict[int, Any] = {}
                for sid, new in entering.items():
                    try:
                        plans[sid] = by_id[sid].denoiser.plan(new)
                    except Exception as exc:
                        out[sid] = exc
                velocities = self._passes({sid: p for sid, p in plans.items() if p is not None}, out)
                entering = {}
                for sid, plan in plans.items():
                    if sid in out:
                        continue
                    s = by_id[sid]
                    try:
                        done = s.denoiser.finish(plan, velocities.get(sid))
                        if done is not None:
                            finished[sid] = done
                        else:
                            entering[sid] = s._refill()
                    except Exception as exc:
                        out[sid] = exc
            out.update(self._ends({sid: (by_id[sid], chunk) for sid, chunk in finished.items()}))
        self.stats.steps += 1
        self.stats.chunks += len(finished)
        return out

    def decode_wait(self, threads: int) -> None:
        """Wait for up to `threads` sessions' frames at once (their drawing is done by worker processes: a thread
        per session only waits; engine_core/motion/render_pool.py)."""
        if threads > 1:
            self._set_decoders(threads)

    def _set_decoders(self, threads: int) -> None:
        """The pool that ends several sessions' chunks at once (None for one thread); a former pool is let go."""
        old, self._decoders = self._decoders, ThreadPoolExecutor(threads, "xs-decode") if threads > 1 else None
        if old is not None:
            old.shutdown(wait=False)

    def _ends(self, finished: dict[int, tuple[SteppedSession, Any]]) -> dict[int, Any]:
        """Steps 4.+5. for each session with a clean chunk -> {id: AVChunk or exception}; on the CPU several sessions'
        frames are drawn in parallel (`decode_threads`: the portrait renderer and the codecs are numpy/OpenCV/torch
        code that releases the GIL for its heavy parts)."""
        def end(session: SteppedSession, chunk: Any) -> Any:
            try:
                with torch.inference_mode():
                    return session._end(chunk)
            except Exception as exc:
                return exc

        if self._decoders is None or len(finished) < 2:
            return {sid: end(s, c) for sid, (s, c) in finished.items()}
        futures = {sid: self._decoders.submit(end, s, c) for sid, (s, c) in finished.items()}
        return {sid: f.result() for sid, f in futures.items()}

    def _passes(self, plans: dict[int, Any], out: dict[int, Any]) -> dict[int, torch.Tensor]:
        """Step 3: every plan's pass, those of one shape batched (at most `max_batch` a batch) -> {id: velocity}.
        A failed pass is the failure of each session in it (into `out`)."""
        actor = self.engine.actor
        groups: dict[tuple, list[int]] = defaultdict(list)
        for sid, p in plans.items():
            groups[actor.batch_key(p)].append(sid)
        velocities: dict[int, torch.Tensor] = {}
        for sids in groups.values():
            for i in range(0, len(sids), max(1, self.max_batch)):
                part = sids[i:i + max(1, self.max_batch)]
                try:
                    vs = actor.forward_many([plans[sid] for sid in part])
                except Exception as exc:
                    for sid in part:
                        out[sid] = exc
                    continue
                velocities.update(zip(part, vs))
                self.stats.passes += 1 if len(part) > 1 and actor.batched_last else len(part)
                if len(part) > 1 and actor.batched_last:
                    self.stats.batched_rows += len(part)
                self.stats.batch_sizes[len(part) if actor.batched_last else 1] += 1
        return velocities


__all__ = ["Stepper", "StepStats", "SteppedSession"]
