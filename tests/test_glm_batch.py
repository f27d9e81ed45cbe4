"""GLM-4-Voice's decode step batched over the replies in flight (engine_core/thinker/glm_batch.py): each reply,
decoded in its row beside others asking from their own threads, gets the logits and hidden states its own
`GlmFastDecoder` gives, through prefix reuse and a step taken back (`truncate`)."""

from __future__ import annotations


import pytest
import torch

from engine_core.thinker.glm_batch import GlmBatchDecoder
from engine_core.thinker.glm_fast import GlmFastDecoder
from tests.waiting import in_threads

from test_glm_fast import _tiny_glm

pytestmark = pytest.mark.engine


def _decode(dec, prompt: list[int], n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Greedy: the prompt's logits, then n steps (logits, hidden); the step after the 3rd is taken back once and
    redone, as glm4voice does when a token ends the reply."""
    logits, _ = dec.resume(prompt)
    out = [(logits[0], torch.zeros(0))]
    for i in range(n):
        t = int(torch.argmax(logits[0]))
        ids = torch.tensor([[t]])
        logits, h = dec.step(ids, told=False)
        if i == 3:
            dec.truncate(dec.length - 1)
            logits, h = dec.step(ids, told=False)
        dec.tell([t])
        out.append((logits[0], h[0]))
    return out


def test_replies_in_rows_of_one_batch_decode_as_they_do_alone():
    model = _tiny_glm(2)
    prompts = [[3, 5, 7], [11, 13, 17, 19, 23, 29, 31], [2] * 20]
    lengths = [10, 6, 14]
    alone = [_decode(GlmFastDecoder(model, max_len=64, use_cuda_graph=False, span_block=16), p, n)
             for p, n in zip(prompts, lengths)]
    batch = GlmBatchDecoder(model, slots=4, max_len=64, span_block=16, use_cuda_graph=False, gather_s=0.05)

    def reply(p, n):
        slot = batch.take(p)
        try:
            return _decode(slot, p, n)
        finally:
            batch.give_back(slot)

    together = in_threads([lambda p=p, n=n: reply(p, n) for p, n in zip(prompts, lengths)])
    for a, b in zip(alone, together):
        assert len(a) == len(b)
        for (la, ha), (lb, hb) in zip(a, b):
            torch.testing.assert_close(lb, la, rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(hb, ha, rtol=1e-4, atol=1e-4)
    assert batch.batcher.stats.rows > batch.batcher.stats.steps       # steps carried several replies


def test_a_row_keeps_its_conversation_for_the_next_turn():
    """A second turn whose prompt starts with the first turn's prompt and reply takes the row holding them and
    prefills only the rest, with the numbers of a fresh decode of the whole prompt."""
    model = _tiny_glm(4)
    batch = GlmBatchDecoder(model, slots=2, max_len=64, span_block=16, use_cuda_graph=False)
    first = [5, 6, 7, 8]
    other = batch.take([1, 2])
    _decode(other, [1, 2, 9], 3)                      # another reply in the other row meanwhile
    slot = batch.take(first)
    said = _decode(slot, first, 5)
    reply = [int(torch.argmax(logits)) for logits, _ in said[:-1]]
    batch.give_back(slot)
    batch.give_back(other)
    turn2 = first + reply + [40, 41, 42]
    again = batch.take(turn2)
    assert again is slot
    out = _decode(again, turn2, 4)
    assert again.reused == len(first) + len(reply)
    ref = _decode(GlmFastDecoder(model, max_len=64, use_cuda_graph=False, span_block=16), turn2, 4)
    for (la, ha), (lb, hb) in zip(ref, out):
        torch.testing.assert_close(lb, la, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(hb, ha, rtol=1e-4, atol=1e-4)
    assert batch.take([0]) is not None and batch.take([0]) is None     # two rows: both taken now
