"""Continuous batching of a language model's decode steps across the replies in flight (one thread each).

Every session's Thinker runs its reply on its own thread (engine/feed.py) and asks for one decoding step at a
time. A shared `StepBatcher` turns the steps that the replies in flight ask for at about the same moment into
ONE forward of the model over all of them (each reply in its own slot of a static cache: thinker/lm_slots.py for
the cascade's SmolLM2 on the CPU, thinker/glm_batch.py for GLM-4-Voice on CUDA): a decode step reads every
weight of the model once whatever the batch, so B replies cost about what one does.

A reply joins (`open`) and leaves (`close`) between tokens. When a step is asked for, the batcher waits for the
other open replies to ask too, but at most `gather_s` after the first asked; a reply that misses a step (it is
voicing a sentence, or its Thinker is held while the Actor denoises) is not waited for again until it asks once
more, so a reply away for a while costs the others one `gather_s` at most. Whichever waiting thread finds the
batch complete (or the wait over) runs the step for all and hands each its result.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

Slot = TypeVar("Slot")


@dataclass
class _Ask:
    token: Any
    done: bool = False
    result: Any = None
    error: BaseException | None = None


@dataclass
class BatchStats:
    """Steps run and the replies each carried."""

    steps: int = 0
    rows: int = 0
    sizes: dict[int, int] = field(default_factory=dict)

    def note(self, n: int) -> None:
        self.steps += 1
        self.rows += n
        self.sizes[n] = self.sizes.get(n, 0) + 1


class StepBatcher(Generic[Slot]):
    """`step(slot, token) -> result`, from any thread; `run(rows) -> results` is one batched forward over
    [(slot, token), ...] (module docstring)."""

    def __init__(self, run: Callable[[list[tuple[Slot, Any]]], list[Any]], gather_s: float = 0.01) -> None:
        self._run = run
        self.gather_s = gather_s
        self._cv = threading.Condition()
        self._open: set[int] = set()            # id(slot) of the replies in flight
        self._away: set[int] = set()            # open, but missed the last step: not waited for
        self._asks: dict[int, tuple[Slot, _Ask]] = {}
        self._first_ask = 0.0
        self._running = False
        self.stats = BatchStats()

    def open(self, slot: Slot) -> None:
        """A reply starts decoding in `slot`."""
        with self._cv:
            self._open.add(id(slot))
            self._away.discard(id(slot))
            self._cv.notify_all()

    def close(self, slot: Slot) -> None:
        """The reply in `slot` is done (or stopped): the next steps do not wait for it."""
        with self._cv:
            self._open.discard(id(slot))
            self._away.discard(id(slot))
            self._cv.notify_all()

    def step(self, slot: Slot, token: Any) -> Any:
        """Decode `token` in `slot`, batched with the other replies' steps; returns this slot's result."""
        ask = _Ask(token)
        with self._cv:
            if not self._asks:
                self._first_ask = time.monotonic()
            self._asks[id(slot)] = (slot, ask)
            self._away.discard(id(slot))
            self._cv.notify_all()
            while True:
                if ask.done:
                    break
                if not self._running:
                    waiting_for = self._open - self._away - set(self._asks)
                    left = self._first_ask + self.gather_s - time.monotonic()
                    if not waiting_for or left <= 0:
                        rows = list(self._asks.values())
                        self._asks = {}
                        self._away |= waiting_for                 # missed this step: not waited for next time
                        self._running = True
                        break
                    self._cv.wait(left)
                else:
                    self._cv.wait()
        if not ask.done:
            self._run_rows(rows)
        if ask.error is not None:
            raise ask.error
        return ask.result

    def _run_rows(self, rows: list[tuple[Slot, _Ask]]) -> None:
        try:
            results = self._run([(slot, a.token) for slot, a in rows])
            errors: list[BaseException | None] = [None] * len(rows)
        except BaseException as exc:
            results, errors = [None] * len(rows), [exc] * len(rows)
        with self._cv:
            for (_, a), r, e in zip(rows, results, errors):
                a.result, a.error, a.done = r, e, True
            self.stats.note(len(rows))
            self._running = False
            self._cv.notify_all()


__all__ = ["BatchStats", "StepBatcher"]
