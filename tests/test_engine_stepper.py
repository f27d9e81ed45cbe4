"""Several sessions in the one block loop (engine_core/engine/stepper.py): each caller's thread asks for its own
session's chunks, the steps batch the sessions that are due, and every session keeps its own semantics (idle,
speech-first start, interrupt, a late reply's wait) as if it ran alone."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from engine_core.engine import Engine
from engine_core.thinker.toy import ToyThinker

from test_engine_session import check_stream, events, run_until

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load("tiny")


def settled(session, utt: int) -> int:
    """Wait until the (instant) toy Thinker has queued all of the reply's speech: how much of it a step finds
    queued decides which chunks enter the pyramid (and draw noise), so the comparison with a lone run needs it."""
    while session.feed.working():
        time.sleep(0.002)
    return utt


def _in_threads(sessions, work) -> dict:
    """Run `work(session) -> result` for every session at once, each on its own thread -> {index: result}."""
    results: dict = {}
    errors: list = []

    def run(i, s):
        try:
            results[i] = work(s)
        except BaseException as exc:       # reported below, with its traceback
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]
    return results


def test_sessions_in_one_loop_each_get_the_stream_they_get_alone(engine):
    """Three sessions stepped together from three threads — one speaking, one speaking after an interrupt, one idle —
    give exactly the chunks each gives when run alone (audio, texts, events; frames to the batch's rounding), and
    their passes ran batched."""
    lines = ["hello there my friend", "one two three four five", ""]

    def script(s, line: str, interrupt_at: int | None):
        out = [s.next_chunk() for _ in range(2)]
        if line:
            utt = settled(s, s.speak(line))
            if interrupt_at is not None:
                out += [s.next_chunk() for _ in range(interrupt_at)]
                s.interrupt()
                utt = settled(s, s.speak(line + " again"))
            out += run_until(s, lambda c: any(e.event == "utterance_end" and e.utt == utt for e in c.events))
        while len(out) < 14:
            out.append(s.next_chunk())
        return out[:14]

    plans = [(lines[0], None), (lines[1], 2), (lines[2], None)]
    alone = []
    for line, cut in plans:
        s = engine.open_session()
        try:
            alone.append(script(s, line, cut))
        finally:
            s.close()
    stats = engine.stepper.stats
    batched_before = stats.batched_rows
    sessions = [engine.open_session() for _ in plans]
    try:
        together = _in_threads(sessions, lambda s: script(s, *plans[sessions.index(s)]))
    finally:
        for s in sessions:
            s.close()
    assert stats.batched_rows > batched_before            # the sessions' passes did run as batches
    f = engine.config.chunk_frames
    for i, solo in enumerate(alone):
        both = together[i]
        check_stream(both, f)
        assert [c.pts for c in both] == [c.pts for c in solo]
        assert [c.utt for c in both] == [c.utt for c in solo]
        assert [[(e.event, e.utt, e.pts) for e in c.events] for c in both] == \
               [[(e.event, e.utt, e.pts) for e in c.events] for c in solo]
        assert [[t.text for t in c.texts] for c in both] == [[t.text for t in c.texts] for c in solo]
        for a, b in zip(both, solo):
            np.testing.assert_array_equal(a.audio, b.audio)
            assert np.abs(a.frames.astype(int) - b.frames.astype(int)).max() <= 2
    assert len(events(together[1], "interrupted")) == 1 and not events(together[2], "utterance_start")


def test_a_session_waiting_for_late_speech_holds_no_one_up(engine, monkeypatch):
    """Session A's reply stalls mid-sentence (its Thinker blocks); while A's next chunk waits for that speech (here
    with a wait far longer than the test, so only the speech ends it), session B, stepped from another thread, goes
    on making chunks; once the speech comes, A's chunk carries it and the sentence has every word."""
    from engine_core.engine.session import Session

    release = threading.Event()

    class Stalling(ToyThinker):
        def speak(self, text, gate=None):
            for i, seg in enumerate(super().speak(text, gate)):
                if i == 1:
                    release.wait(60)
                yield seg

    original = engine.thinker
    engine.thinker = Stalling(original.hidden_size, original.vocab)
    a = engine.open_session()
    engine.thinker = original
    b = engine.open_session()
    try:
        [a.next_chunk() for _ in range(2)]
        [b.next_chunk() for _ in range(2)]
        utt = a.speak("ab ab ab ab ab ab")
        first = run_until(a, lambda c: c.utt == utt)       # the first word's chunk; the second word is held back
        monkeypatch.setattr(Session, "chunk_wait_s", property(lambda self: 600.0))
        waiting: dict = {}
        waiter = threading.Thread(target=lambda: waiting.setdefault("chunk", a.next_chunk()))
        waiter.start()
        made = [b.next_chunk() for _ in range(5)]          # B goes on while A's next chunk waits for its words
        assert len(made) == 5 and waiter.is_alive() and not waiting
        release.set()
        waiter.join(60)
        monkeypatch.undo()
        rest = [waiting["chunk"]] + run_until(a, lambda c: any(e.event == "utterance_end" for e in c.events))
        assert all(c.utt == utt for c in rest)
        said = " ".join(t.text for c in first + rest for t in c.texts if t.role == "assistant")
        assert said.split() == ["ab"] * 6
    finally:
        release.set()
        a.close()
        b.close()
