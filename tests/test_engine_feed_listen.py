"""The speech feed tells its listeners (the daemon's worker) each time the Thinker queues speech and when a reply
ends, so whoever waits for a reply's first chunk wakes as its speech arrives instead of polling."""

from __future__ import annotations

import threading

from engine_core.engine.feed import SpeechFeed
from engine_core.thinker.base import Conversation
from engine_core.thinker.toy import ToyThinker


def test_listeners_are_told_after_each_words_frames_and_at_the_end():
    feed = SpeechFeed(ToyThinker(32, 64), Conversation(""))
    told: list[tuple[int, bool]] = []                    # (frames queued ever, a 6-frame chunk's speech ready)
    ended = threading.Event()

    def listener() -> None:
        told.append((feed._pushed, feed.speech_ready(6)))
        if not feed.pending() or feed._active == 0:
            ended.set()
    def broken() -> None:
        raise RuntimeError("a listener that fails")
    try:
        feed.listen(broken)                              # told first, fails every time: the reply goes on
        feed.listen(listener)
        assert told == []                                # nothing said, nothing told
        feed.submit(1, "speak", "one two three")         # frames: 11, 6, 6
        assert ended.wait(10.0)
        pushed = [n for n, _ in told]
        assert pushed == [11, 17, 23, 23]               # one call per word, then one at the end of the reply
        assert all(ready for _, ready in told)          # every call came with the speech already queued
        items, _ = feed.take(100, timeout=1.0)
        assert len(items) == 23 and items[-1].last        # the whole reply, despite the broken listener
    finally:
        feed.close()
