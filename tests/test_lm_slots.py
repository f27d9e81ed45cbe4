"""The cascade's LM decoding several replies as one batch (engine_core/thinker/lm_slots.py, batch_steps.py): the
slots compute transformers' numbers, and replies stepped together from their own threads get what each gets alone."""

from __future__ import annotations


import pytest
import torch

from engine_core.thinker.batch_steps import StepBatcher
from engine_core.thinker.lm_slots import SlotLM
from tests.waiting import in_threads


def _tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=97, hidden_size=48, intermediate_size=96, num_hidden_layers=3, num_attention_heads=6,
                      num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True)
    torch.manual_seed(0)
    return LlamaForCausalLM(cfg).eval()


def _reference(model, prompt: list[int], tokens: list[int]):
    """transformers' own forward with a DynamicCache: logits after the prompt and after each token, and hiddens."""
    from transformers import DynamicCache

    from engine_core.thinker.hf_cache import cache_kwargs

    cache = DynamicCache()
    kw = cache_kwargs(model.model, cache)
    out = []
    with torch.inference_mode():
        r = model.model(input_ids=torch.tensor([prompt]), use_cache=True, **kw)
        out.append((model.lm_head(r.last_hidden_state[0, -1]), r.last_hidden_state[0]))
        for t in tokens:
            r = model.model(input_ids=torch.tensor([[t]]), use_cache=True, **kw)
            out.append((model.lm_head(r.last_hidden_state[0, -1]), r.last_hidden_state[0, -1]))
    return out


def test_a_slot_computes_transformers_logits_and_hidden_states(monkeypatch):
    import engine_core.thinker.lm_slots as lm_slots

    monkeypatch.setattr(lm_slots, "GROW", 16)                            # the slot's cache grows several times
    model = _tiny_llama()
    lm = SlotLM(model)
    prompt, tokens = [5, 17, 3, 88, 41, 2, 9], [11, 60, 7, 7, 30] * 8
    ref = _reference(model, prompt, tokens)
    slot = lm.take()
    try:
        logits, hidden = slot.prefill(torch.tensor([prompt]))
        torch.testing.assert_close(logits, ref[0][0].float(), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(hidden, ref[0][1].float(), rtol=1e-4, atol=1e-4)
        for t, (rl, rh) in zip(tokens, ref[1:]):
            logits, hidden = slot.step(t)
            torch.testing.assert_close(logits, rl.float(), rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(hidden, rh.float(), rtol=1e-4, atol=1e-4)
    finally:
        slot.close()


def test_replies_stepped_together_get_what_each_gets_alone():
    """Three replies of different prompt lengths decoded at once from three threads, each joining and leaving at
    its own time: every step's logits equal the reply's own decode, and the steps did run batched."""
    model = _tiny_llama()
    lm = SlotLM(model, gather_s=0.05)
    prompts = [[1, 2, 3], [4, 5, 6, 7, 8, 9, 10, 11], [12] * 20]
    lengths = [12, 30, 5]

    def decode(prompt: list[int], n: int) -> list[torch.Tensor]:
        slot = lm.take()
        try:
            logits, _ = slot.resume(prompt)
            out = [logits]
            for _ in range(n):
                logits, _ = slot.step(int(torch.argmax(logits)))
                out.append(logits)
            return out
        finally:
            slot.close()

    alone = [decode(p, n) for p, n in zip(prompts, lengths)]
    before = lm.batcher.stats.rows - lm.batcher.stats.steps
    together = in_threads([lambda p=p, n=n: decode(p, n) for p, n in zip(prompts, lengths)])
    for a, b in zip(alone, together):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-4)
    assert lm.batcher.stats.rows - lm.batcher.stats.steps > before      # some steps carried several replies


def test_a_reply_away_is_waited_for_once_then_not():
    """A reply that stops asking (it is voicing a sentence) holds the others' next step up by `gather_s` at most
    once: the steps after it run without waiting for it."""
    seen: list[int] = []
    batcher: StepBatcher[str] = StepBatcher(lambda rows: [seen.append(len(rows)) or t for _, t in rows],
                                            gather_s=0.02)
    batcher.open("a")
    batcher.open("b")
    assert batcher.step("b", 1) == 1          # "a" never asks: this step waited for it, then ran alone
    assert batcher._away == {id("a")}
    for i in range(5):
        assert batcher.step("b", i) == i       # not waited for any more
    assert seen == [1] * 6
    batcher.close("a")
    batcher.close("b")


def test_a_slot_keeps_the_conversation_for_the_next_turn():
    """A next prompt that starts with what a free slot holds (the last prompt and its reply) takes that slot (not the
    other free one) and prefills only the rest, with the numbers of a whole prefill."""
    model = _tiny_llama()
    lm = SlotLM(model)
    spare = lm.take([1, 2])
    first = [5, 6, 7, 8, 9]
    slot = lm.take(first)
    spare.resume([1, 2, 3])
    spare.close()
    logits, _ = slot.resume(first)
    reply = []
    for _ in range(4):
        t = int(torch.argmax(logits))
        reply.append(t)
        logits, _ = slot.step(t)
    slot.close()
    turn2 = first + reply + [40, 41, 42]
    again = lm.take(turn2)
    assert again is slot
    logits, hidden = again.resume(turn2)
    assert again.reused == len(first) + len(reply)
    ref = _reference(model, turn2, [])
    torch.testing.assert_close(logits, ref[0][0].float(), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(hidden, ref[0][1][again.reused:].float(), rtol=1e-4, atol=1e-4)
    again.close()


@pytest.mark.engine
def test_cascade_replies_batched_say_what_they_say_alone():
    """SmolLM2's greedy replies to two prompts, decoded together from two threads through the slots, are the
    replies each gets alone through transformers' DynamicCache (the reference path)."""
    from engine_core.thinker.cascade_assets import load_smollm2
    from engine_core.thinker.cascade_text import StreamingLM

    model, tok = load_smollm2()
    ref = StreamingLM(model, tok, max_new_tokens=24)
    slots = SlotLM(model, gather_s=0.05)
    batched = StreamingLM(model, tok, max_new_tokens=24, slots=slots)
    chats = [[{"role": "user", "content": "What is the capital of France?"}],
             [{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "Say hello."}]]

    def reply(lm, msgs):
        return [(p.text, p.hidden.shape[0]) for p in lm.stream_pieces(msgs)]

    alone = [reply(ref, m) for m in chats]
    together = in_threads([lambda m=m: reply(batched, m) for m in chats])
    assert together == alone and all(alone)
    assert slots.batcher.stats.rows > slots.batcher.stats.steps
