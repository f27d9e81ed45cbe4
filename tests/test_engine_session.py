"""The streaming engine API on the tiny preset: events, continuous pts, audio length, interrupt, idle, hear."""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import pytest

from engine_core.engine import AVChunk, Engine
from engine_core.thinker.base import SAMPLES_PER_FRAME

pytestmark = pytest.mark.engine



@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load("tiny")


@pytest.fixture
def session(engine):
    s = engine.open_session()
    yield s
    s.close()


def run_until(session, pred, limit: int = 60) -> list[AVChunk]:
    """next_chunk until pred(chunk) holds (inclusive); fails after `limit` chunks."""
    out = []
    for _ in range(limit):
        c = session.next_chunk()
        out.append(c)
        if pred(c):
            return out
    raise AssertionError(f"condition not met within {limit} chunks")


@contextlib.contextmanager
def session_with(engine, thinker_class):
    """A session of `engine` whose Thinker is a `thinker_class` (a ToyThinker subclass) for the block."""
    original = engine.thinker
    engine.thinker = thinker_class(original.hidden_size, original.vocab)
    s = engine.open_session()
    try:
        yield s
    finally:
        s.close()
        engine.thinker = original


def silent_frames_inside(chunks, utt: int) -> int:
    """Silent 40 ms frames of utterance `utt` between its first and last voiced frame."""
    audio = np.concatenate([c.audio for c in chunks if c.utt == utt])
    loud = np.abs(audio.reshape(-1, SAMPLES_PER_FRAME)).max(axis=1) > 0
    return int((~loud[np.argmax(loud): len(loud) - np.argmax(loud[::-1])]).sum())


def events(chunks, name):
    return [(i, e) for i, c in enumerate(chunks) for e in c.events if e.event == name]


def check_stream(chunks: list[AVChunk], f: int) -> None:
    for a, b in zip(chunks, chunks[1:]):
        assert b.pts == a.pts + a.num_frames * SAMPLES_PER_FRAME
    for c in chunks:
        assert c.num_frames == f
        assert c.frames.dtype == np.uint8 and c.frames.shape == (f, 256, 256, 3)
        assert c.audio.dtype == np.int16 and c.audio.shape == (f * SAMPLES_PER_FRAME,)


def test_speak_stream_has_events_text_audio_and_continuous_pts(session):
    assert session.sample_rate == 22050 and session.fps == 25 and session.chunk_frames >= 1
    idle = [session.next_chunk() for _ in range(2)]
    assert all(c.utt == 0 and not c.events and not np.any(c.audio) for c in idle)
    utt = session.speak("hello brave new world")
    assert utt > 0
    chunks = idle + run_until(session, lambda c: any(e.event == "utterance_end" for e in c.events))
    check_stream(chunks, session.chunk_frames)
    (i_start, start), = events(chunks, "utterance_start")
    (i_end, end), = events(chunks, "utterance_end")
    assert start.utt == end.utt == utt and i_start <= i_end
    spoken = chunks[i_start:i_end + 1]
    assert all(c.utt == utt for c in spoken)
    assert "".join(t.text for c in spoken for t in c.texts if t.role == "assistant") == "hello brave new world"
    assert all(np.abs(c.audio).max() > 1000 for c in spoken[:-1])        # the toy voice is audible
    assert session.state == "idle"
    more = [session.next_chunk() for _ in range(3)]                         # idle chunks keep coming
    check_stream(chunks + more, session.chunk_frames)
    assert all(c.utt == 0 and not np.any(c.audio) for c in more)


def test_chat_reply_text_and_ids(session):
    u1 = session.chat("good morning")
    u2 = session.speak("second line")
    assert u2 > u1 > 0
    chunks = run_until(session, lambda c: any(e.event == "utterance_end" and e.utt == u2 for e in c.events))
    text1 = "".join(t.text for c in chunks if c.utt == u1 for t in c.texts)
    assert text1 == "You said: good morning."
    order = [(e.event, e.utt) for c in chunks for e in c.events]
    assert order == [("utterance_start", u1), ("utterance_end", u1), ("utterance_start", u2), ("utterance_end", u2)]


def test_interrupt_stops_within_one_chunk_and_next_reply_is_clean(session):
    u1 = session.speak("this is a rather long sentence that keeps going on and on for a while")
    run_until(session, lambda c: c.utt == u1)
    session.next_chunk()
    session.interrupt()
    c = session.next_chunk()
    assert [(e.event, e.utt) for e in c.events] == [("interrupted", u1)]
    assert c.utt == 0 and not np.any(c.audio)
    after = [session.next_chunk() for _ in range(4)]
    assert all(x.utt == 0 and not x.events for x in after)                   # nothing of u1 leaks out
    u2 = session.speak("fresh start")
    chunks = run_until(session, lambda x: any(e.event == "utterance_end" for e in x.events))
    assert [(e.event, e.utt) for x in chunks for e in x.events] == [("utterance_start", u2), ("utterance_end", u2)]
    assert "".join(t.text for x in chunks for t in x.texts) == "fresh start"
    check_stream([c] + after + chunks, session.chunk_frames)


def test_hear_emits_transcript_and_answers(session):
    pcm = (np.sin(np.arange(22050) / 10.0) * 8000).astype(np.int16)
    assert session.hear(pcm[:11025], 22050) is None
    utt = session.hear(pcm[11025:], 22050, final=True)
    chunks = run_until(session, lambda c: any(e.event == "utterance_end" for e in c.events))
    users = [t for c in chunks for t in c.texts if t.role == "user"]
    assert [t.text for t in users] == ["I heard 1.0 seconds of audio."]
    reply = "".join(t.text for c in chunks if c.utt == utt for t in c.texts if t.role == "assistant")
    assert reply == "You said: I heard 1.0 seconds of audio.."


def test_control_calls_from_other_threads(session):
    ids = []
    threads = [threading.Thread(target=lambda i=i: ids.append(session.speak(f"line {i}"))) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 4
    ends = set()
    run_until(session, lambda c: ends.update(e.utt for e in c.events if e.event == "utterance_end")
              or ends == set(ids), limit=80)


def test_reply_starting_from_silence_is_the_next_chunk_out_and_loses_no_event(session):
    f = session.chunk_frames
    warm = [session.next_chunk() for _ in range(3)]          # the pipeline now holds only silence
    assert all(c.utt == 0 for c in warm)
    session.interrupt()                                      # its note rides on a silent chunk in flight
    noted = session.next_chunk()
    utt = session.speak("straight out of silence")
    first = session.next_chunk()
    # without dropping the silence in flight, steps - 1 silent chunks would come out before the reply
    assert first.utt == utt and [e.event for e in first.events if e.utt == utt] == ["utterance_start"]
    chunks = warm + [noted, first] + run_until(session, lambda c: any(e.event == "utterance_end" for e in c.events))
    check_stream(chunks, f)
    assert sum(e.event == "interrupted" for c in chunks for e in c.events) == 1
    said = "".join(t.text for c in chunks if c.utt == utt for t in c.texts if t.role == "assistant")
    assert said == "straight out of silence"


def test_a_thinker_failing_mid_reply_ends_the_utterance_once_with_the_error(engine):
    from engine_core.thinker.toy import ToyThinker

    class Failing(ToyThinker):
        def speak(self, text, gate=None):
            segments = super().speak(text, gate)
            yield next(segments)                      # one word is said, then the model breaks
            raise RuntimeError("model fell over")

    with session_with(engine, Failing) as s:
        utt = s.speak("never finished sentence")
        chunks = run_until(s, lambda c: any(e.event == "utterance_end" for e in c.events))
        chunks += [s.next_chunk() for _ in range(3)]
        ends = [e for c in chunks for e in c.events if e.event == "utterance_end" and e.utt == utt]
        assert [e.reason for e in ends] == ["error: RuntimeError: model fell over"]
        said = "".join(t.text for c in chunks for t in c.texts if t.role == "assistant")
        assert said == "never"
        assert s.speak("still here") > utt               # the session goes on


def test_a_reply_whose_next_words_come_late_has_no_silent_holes(engine):
    import time

    from engine_core.thinker.toy import ToyThinker

    class Slow(ToyThinker):
        def speak(self, text, gate=None):
            for i, seg in enumerate(super().speak(text, gate)):
                if i:
                    time.sleep(0.08)                   # the next word comes a little later (< one chunk)
                yield seg

    with session_with(engine, Slow) as s:
        [s.next_chunk() for _ in range(3)]
        words = "a banana a banana"
        utt = s.speak(words)
        chunks = run_until(s, lambda c: any(e.event == "utterance_end" for e in c.events))
        # the only silent frames inside the reply are the Thinker's own pauses between words
        assert silent_frames_inside(chunks, utt) == len(words.split()) - 1


def test_a_line_given_right_after_an_interrupt_is_not_dropped_with_the_old_reply(session):
    old = session.speak("a long reply that the user cuts off before it is over")
    run_until(session, lambda c: c.utt == old)
    session.interrupt()
    new = session.speak("the next line")              # before the block loop has seen the interrupt
    chunks = run_until(session, lambda c: any(e.event == "utterance_end" and e.utt == new for e in c.events))
    assert [e.utt for c in chunks for e in c.events if e.event == "interrupted"] == [old]
    assert "".join(t.text for c in chunks if c.utt == new for t in c.texts) == "the next line"


def test_a_reply_comes_out_on_its_first_chunk_of_speech_while_the_rest_is_on_its_way(engine):
    """Refilling after a start, the first chunk does not wait for the N - 1 chunks of speech behind it, and no
    silence is slipped in behind it while the Thinker is still working on the next words."""
    from engine_core.thinker.toy import ToyThinker

    opened = threading.Event()
    f = engine.config.chunk_frames

    class Gated(ToyThinker):
        def speak(self, text, gate=None):
            said = 0
            for seg in super().speak(text, gate):
                if said >= f:
                    assert opened.wait(30), "the test never let the words through"
                said += seg.num_frames
                yield seg

    with session_with(engine, Gated) as s:
        try:
            [s.next_chunk() for _ in range(3)]
            words = "a banana a banana a banana"
            utt = s.speak(words)
            before = run_until(s, lambda c: c.utt == utt, limit=engine.config.steps + 3)
            assert not opened.is_set() and before[-1].utt == utt       # out while the later words are held back
        finally:
            opened.set()
        chunks = before + run_until(s, lambda c: any(e.event == "utterance_end" for e in c.events))
        assert silent_frames_inside(chunks, utt) == len(words.split()) - 1     # only the Thinker's own pauses
        said = "".join(t.text for c in chunks if c.utt == utt for t in c.texts if t.role == "assistant")
        assert said.split() == words.split()
