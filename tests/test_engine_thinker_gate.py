"""The Thinker's gate: an interrupt stops the running Thinker at its next token, and the session holds the
Thinker while a reply's first chunk is denoised (then lets it go on, losing nothing)."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from engine_core.engine import Engine
from engine_core.engine import feed as feed_module
from engine_core.engine.feed import SpeechFeed
from engine_core.thinker.base import Conversation
from engine_core.thinker.toy import ToyThinker

pytestmark = pytest.mark.engine


class Logged(ToyThinker):
    """A toy Thinker that takes `delay` s per word and notes when each word was made and when it stopped."""

    def __init__(self, *args, delay: float = 0.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.delay = delay
        self.word_times: list[float] = []
        self.stopped = threading.Event()

    def speak(self, text, gate=None):
        try:
            for seg in super().speak(text, gate):
                time.sleep(self.delay)
                self.word_times.append(time.monotonic())
                yield seg
        finally:
            self.stopped.set()


@pytest.fixture
def feed():
    th = Logged(32, 64, delay=0.02)
    f = SpeechFeed(th, Conversation(""))
    yield f
    f.close()


def test_a_held_feed_keeps_the_thinker_waiting_until_it_is_released(feed):
    feed.hold()
    feed.submit(1, "speak", "one two three")
    items, _ = feed.take(1, timeout=0.3)
    assert items == [] and feed.thinker.word_times == []         # not a single word while held
    feed.release()
    items, _ = feed.take(1, timeout=5.0)
    assert items and items[0].utt == 1 and items[0].first


def test_a_hold_with_a_lead_lets_the_thinker_queue_that_many_frames_first(feed):
    feed.hold()                                                   # nothing at all until the Actor has taken
    feed.submit(1, "speak", "one two three four five six")       # frames: 11, 6, 6, 6, 11, 6
    feed.release()
    first, _ = feed.take(11, timeout=5.0)                         # the Actor takes the first word's frames
    feed.hold(lead=12)                                            # ... and wants 12 more before the Thinker waits
    time.sleep(0.4)
    made = len(feed.thinker.word_times)
    assert len(first) == 11 and 3 <= made <= 4                   # "two" and "three" (+ one under way), not all
    time.sleep(0.2)
    assert len(feed.thinker.word_times) == made
    feed.release()
    rest, _ = feed.take(1000, timeout=5.0)
    assert len(feed.thinker.word_times) == 6 and len(rest) == 35


def test_a_hold_that_is_never_released_ends_by_itself(feed, monkeypatch):
    monkeypatch.setattr(feed_module, "HOLD_LIMIT_S", 0.2)
    feed.hold()
    start = time.monotonic()
    feed.submit(1, "speak", "one two")
    items, _ = feed.take(1, timeout=5.0)
    assert items and 0.15 < time.monotonic() - start < 4.0
    assert not feed.held


def test_cancel_stops_the_running_thinker_at_its_next_word(feed):
    words = " ".join(["banana"] * 200)                 # ~4 s of work at 20 ms a word
    feed.submit(1, "speak", words)
    assert feed.take(1, timeout=5.0)[0]
    feed.cancel()
    assert feed.thinker.stopped.wait(1.0)              # the generator ended, long before the line was done
    made = len(feed.thinker.word_times)
    assert made < 50
    time.sleep(0.1)
    assert len(feed.thinker.word_times) == made        # and makes nothing more
    feed.submit(2, "speak", "next")                    # the worker is free for the next job at once
    items, _ = feed.take(1, timeout=2.0)
    assert items and items[0].utt == 2


def test_cancel_wakes_a_held_thinker_and_stops_it(feed):
    feed.hold()
    feed.submit(1, "speak", "one two three")
    time.sleep(0.1)
    feed.cancel()
    assert feed.thinker.stopped.wait(1.0) and feed.thinker.word_times == []


@pytest.mark.parametrize("start", ["hold", "own", "pyramid"])
def test_the_session_holds_the_thinker_while_a_replys_first_chunk_is_denoised(start):
    hold = start != "pyramid"
    engine = Engine.load("tiny")
    original = engine.thinker
    engine.thinker = th = Logged(original.hidden_size, original.vocab, delay=0.004)
    s = engine.open_session()
    assert s.start == "alone"                         # the session does not hold by itself
    s.start = start
    passes: list[float] = []
    held: list[tuple[str, float]] = []
    for name in ("hold", "release"):           # note when the session holds and releases its Thinker
        def noted(*args, orig=getattr(s.feed, name), name=name, **kwargs):
            held.append((name, time.monotonic()))
            orig(*args, **kwargs)
        setattr(s.feed, name, noted)
    handle = engine.actor.register_forward_pre_hook(lambda *a: passes.append(time.monotonic()))
    slow = engine.actor.register_forward_hook(lambda *a: time.sleep(0.02))    # a pass the Thinker could overlap
    try:
        [s.next_chunk() for _ in range(2)]
        words = " ".join(["a"] * 60)
        utt = s.speak(words)
        while True:
            c = s.next_chunk()
            if c.utt == utt:
                break
        n_words_then = len(th.word_times)
        entered = [t for t in passes if t > th.word_times[0]][0]          # the reply's first chunk enters
        if hold:
            t_hold = next(t for n, t in held if n == "hold")
            t_release = next(t for n, t in held if n == "release" and t > t_hold)
            assert t_hold <= entered and not s.feed.held
            assert sum(entered < p < t_release for p in passes) >= engine.config.steps - 1
            # "hold": the words for the next chunk's speech (one "a" is 6 frames) and the word under way, no more;
            # "own": held at once, so at most the word under way
            assert engine.config.chunk_frames <= 6
            assert sum(t_hold < t < t_release for t in th.word_times) <= (2 if start == "hold" else 1)
        else:
            assert held == [] and sum(entered < t < passes[-1] for t in th.word_times) >= 3
        said = "".join(t.text for t in c.texts if t.role == "assistant")
        for _ in range(400):                           # the rest of the line comes, none of it lost
            c = s.next_chunk()
            said += "".join(t.text for t in c.texts if t.role == "assistant")
            if any(e.event == "utterance_end" for e in c.events):
                break
        assert said == words and len(th.word_times) > n_words_then
    finally:
        handle.remove()
        slow.remove()
        s.close()
        engine.thinker = original
