"""On a GPU the block loop and the Thinker work on streams of their own, the Actor's the more urgent
(engine_core/engine/cuda_streams.py); off CUDA nothing changes."""

import pytest
import torch

from engine_core.engine import Engine
from engine_core.engine.cuda_streams import new_stream, running_on


def test_off_cuda_there_is_no_stream_and_running_on_none_changes_nothing():
    assert new_stream("cpu", -1) is None and new_stream(None, 0) is None
    with running_on(None):
        x = torch.ones(3) * 2
    assert x.tolist() == [2.0, 2.0, 2.0]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_every_actor_pass_runs_on_the_sessions_high_priority_stream():
    engine = Engine.load("tiny", device="cuda")
    session = engine.open_session()
    seen = []
    hook = engine.actor.register_forward_pre_hook(lambda mod, args: seen.append(torch.cuda.current_stream()))
    try:
        session.speak("hello there, how are you")
        chunks = [session.next_chunk() for _ in range(6)]
    finally:
        hook.remove()
        session.close()
    assert seen and all(s == session._stream for s in seen)
    assert session._stream != torch.cuda.default_stream()
    assert session._stream.priority < new_stream("cuda", 0).priority
    assert any(c.audio.any() for c in chunks)            # the reply came through on that stream
