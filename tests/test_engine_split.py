"""The Thinker/Actor split (issue 9): the same outputs as the single-device path (tiny preset, CPU).

On CPU both halves sit on one device, so this proves the split's data path (hidden states handed from the
Thinker's device to the Actor's, the Thinker on its own thread) changes no number; the two-GPU timing is in
docs/performance.md."""

import numpy as np
import pytest
import torch

from engine_core.engine import Engine

pytestmark = pytest.mark.engine


def _run(**load) -> list:
    torch.manual_seed(0)
    engine = Engine.load("tiny", **load)
    session = engine.open_session()
    utt = session.speak("The split must not change a single frame.")
    chunks = []
    for _ in range(60):
        chunk = session.next_chunk()
        chunks.append(chunk)
        if any(e.event == "utterance_end" and e.utt == utt for e in chunk.events):
            break
    session.close()
    return chunks


def test_split_devices_give_the_same_stream():
    single = _run(device="cpu")
    split = _run(devices="cpu,cpu")
    assert len(single) == len(split) and any(c.utt for c in single)
    for a, b in zip(single, split):
        assert a.pts == b.pts and a.utt == b.utt
        np.testing.assert_array_equal(a.audio, b.audio)
        np.testing.assert_allclose(a.frames.astype(int), b.frames.astype(int), atol=1)
        assert [t.text for t in a.texts] == [t.text for t in b.texts]
