"""The daemon's worker paces the block loop to a bounded lead, except for a reply out of silence: once its first
chunk's speech is there, the block loop runs at once, while the idle media queued ahead still runs past the lead
(the reply then takes that media's place), instead of after the lead has drained. A real tiny engine and media
publisher on loopback; the session's `next_chunk` is observed (not replaced) to see how far ahead each call was."""

from __future__ import annotations

import threading
import time

import pytest
import zmq

from engine_core.daemon.media import MediaPublisher
from engine_core.daemon.session_worker import SessionWorker
from engine_core.engine import Engine

pytestmark = [pytest.mark.engine, pytest.mark.process]

LEAD_S = 0.0        # the block loop waits until all queued media has played, except for a reply that can start


def test_a_reply_starts_without_waiting_for_the_lead_to_drain():
    engine = Engine.load("tiny")
    ctx = zmq.Context()
    publisher = MediaPublisher(ctx, "tcp://127.0.0.1:*")
    publisher.start_and_wait()
    calls: list[tuple[float, int]] = []          # (seconds of media queued ahead at the call, utt of the chunk)
    said: dict[str, int] = {}
    done = threading.Event()

    def opener():
        session = engine.open_session()
        original = session.next_chunk

        def observed():
            ahead = worker.outbox.ahead_s(time.monotonic())
            chunk = original()
            calls.append((ahead, chunk.utt))
            if len(calls) == 4:                   # right after an idle chunk: a whole chunk of media is queued
                said["utt"] = session.speak("an answer that starts at once")
            if said and chunk.utt == said["utt"]:
                done.set()
            return chunk
        session.next_chunk = observed
        return session

    worker = SessionWorker("s", opener, publisher, lead_s=LEAD_S, model_name="tiny", reply=lambda ok, p: None,
                           on_exit=lambda sid: None, subscribe_wait_s=0.0)
    worker.start()
    try:
        assert done.wait(60.0)
        idle = [a for a, utt in calls[1:4]]
        first = next(a for a, utt in calls if utt == said["utt"])
        assert all(a <= LEAD_S + 0.01 for a in idle), idle          # idle chunks: made once the lead has drained
        assert first > LEAD_S + 0.02, first                          # the reply's: while media was still queued
    finally:
        worker.close()
        worker.join(10.0)
        publisher.stop()
        publisher.join(5.0)
        ctx.term()
