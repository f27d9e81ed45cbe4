"""How a reply out of silence starts (Session.start): with "alone" the reply's first chunk goes through the
pyramid by itself (its passes carry it and at most the clean chunk before it), then the pyramid refills; with
"pyramid" the next chunks enter beside it. Either way every word is said, in order."""

from __future__ import annotations

import pytest

from engine_core.engine import Engine
from engine_core.engine.session import START_POLICIES, default_start

pytestmark = pytest.mark.engine


def _reply_passes(start: str):
    engine = Engine.load("tiny")
    s = engine.open_session()
    assert s.start == "alone" and start in START_POLICIES       # the default off CUDA (docs/engine.md)
    assert default_start("cpu") == "alone" and default_start("cuda:1") == "own"   # on CUDA: v10
    s.start = start
    widths: list[tuple[int, int]] = []                            # (first chunk index, chunks in the pass)
    hook = engine.actor.register_forward_pre_hook(lambda mod, args: widths.append((args[3], args[0].shape[1])))
    try:
        [s.next_chunk() for _ in range(3)]
        words = "one two three four five six seven eight nine ten eleven twelve"
        utt = s.speak(words)
        while (c := s.next_chunk()).utt != utt:
            pass
        first_index = c.pts // (s.chunk_frames * 882)
        n_first = len(widths)
        said = "".join(t.text for t in c.texts if t.role == "assistant")
        out = [c]
        while not any(e.event == "utterance_end" for e in c.events):
            c = s.next_chunk()
            out.append(c)
            said += "".join(t.text for t in c.texts if t.role == "assistant")
        return engine, widths, n_first, first_index, said, words, out
    finally:
        hook.remove()
        s.close()


@pytest.mark.parametrize("start", ["alone", "own", "pyramid"])
def test_a_replys_first_chunk_goes_through_alone_or_beside_the_next(start):
    engine, widths, n_first, first_index, said, words, out = _reply_passes(start)
    steps = engine.config.steps
    # the passes that carried the reply's first chunk (it entered `steps` passes before it came out)
    carrying = widths[n_first - steps:n_first]
    assert all(k <= first_index < k + m for k, m in carrying)
    widest = max(m - (first_index - k) for k, m in carrying)      # chunks at or after the first one in a pass
    if start in ("alone", "own"):
        assert widest == 1                                        # nothing entered beside it
    else:
        assert widest > 1                                         # the next chunks entered while it was denoised
    assert said == words and all(c.utt == out[0].utt for c in out)
    # the pts run on without a hole, chunk after chunk
    assert [c.pts for c in out] == [out[0].pts + i * engine.config.chunk_frames * 882 for i in range(len(out))]
