"""Long conversations fit the Thinker's context: the oldest turns are dropped (system prompt and newest turn
kept), a turn that cannot fit at all is refused with ContextOverflowError (text_too_long) and the session goes
on. Toy Thinker (through a tiny engine session) and the cascade's SmolLM2 prompt (real tokenizer and model);
glm4voice's formatter is tested in test_thinker_glm4voice.py."""

from __future__ import annotations

import pytest

from engine_core.errors import ContextOverflowError, TextTooLongError
from engine_core.thinker.base import Conversation, Turn
from engine_core.thinker.context import fit_history, prompt_budget
from engine_core.thinker.toy import ToyThinker
from sdk.protocol import Persona

pytestmark = pytest.mark.engine


def _long_conversation(n_pairs: int, words: int, max_turns: int = 1000) -> Conversation:
    conv = Conversation("You are a patient museum guide.", max_turns=max_turns)
    for i in range(n_pairs):
        conv.add("user", f"question{i} " + " ".join(f"q{i}w{j}" for j in range(words)))
        conv.add("assistant", f"answer{i} " + " ".join(f"a{i}w{j}" for j in range(words)))
    return conv


def test_fit_history_keeps_the_longest_suffix_that_fits():
    turns = [Turn("user" if i % 2 == 0 else "assistant", "w " * (5 + i)) for i in range(20)]

    def cost(h):
        return 10 + sum(len(t.text.split()) for t in h) + 7       # system + history + newest turn

    kept = fit_history(turns, cost, 120, is_user=lambda t: t.role == "user")
    assert cost(kept) <= 120 and kept == turns[len(turns) - len(kept):]       # a suffix, within budget
    assert kept and kept[0].role == "user"                                    # never an orphaned answer
    longer = turns[len(turns) - len(kept) - 2:]
    assert cost(longer) > 120                                   # the next user-led suffix would not fit
    assert fit_history(turns, cost, 10 ** 6, is_user=lambda t: t.role == "user") == turns
    assert fit_history(turns, cost, 17, is_user=lambda t: t.role == "user") == []
    with pytest.raises(ContextOverflowError) as info:
        fit_history(turns, cost, 16, is_user=lambda t: t.role == "user")
    assert isinstance(info.value, TextTooLongError) and info.value.code == "text_too_long"
    assert prompt_budget(8192, 72) == 8120 and prompt_budget(512, 2000) == 256


def test_toy_thinker_drops_old_turns_to_fit_and_refuses_a_turn_that_cannot():
    toy = ToyThinker(context_tokens=600)
    conv = _long_conversation(40, 30)                # 80 turns of 31 words: ~2,500 prompt tokens
    before = list(conv.turns)
    ids = toy.prompt_tokens(conv, "What is in the next room?")
    assert 400 < len(ids) <= toy.max_prompt_tokens == 600 - 64
    system = [toy.token_id(w) for w in conv.system_prompt.split()]
    newest = [toy.token_id(w) for w in "What is in the next room?".split()]
    assert ids[:len(system)] == system and ids[-len(newest):] == newest       # both always kept
    # each turn is 32 tokens (role + 31 words), system 5, newest 7: 16 turns fit in 536, from a question on
    assert ids == toy._prompt(conv.system_prompt, conv.turns[-16:], "What is in the next room?")
    assert conv.turns[-16].text.startswith("question32 ")
    segs = list(toy.reply(conv, "What is in the next room?"))
    assert "".join(s.text for s in segs) == "You said: What is in the next room?."
    assert conv.turns[:len(before)] == before and len(conv.turns) == len(before) + 2
    with pytest.raises(ContextOverflowError):
        toy.reply(conv, "word " * 700)
    assert len(conv.turns) == len(before) + 2                   # the refused turn is not recorded


def _run_until_end(session, utt: int, max_chunks: int = 200):
    texts, ends = [], []
    for _ in range(max_chunks):
        chunk = session.next_chunk()
        texts += [t.text for t in chunk.texts if t.role == "assistant" and chunk.utt == utt]
        ends += [e for e in chunk.events if e.event == "utterance_end" and e.utt == utt]
        if ends:
            assert len(ends) == 1, ends                # an utterance ends exactly once, failed or not
            return "".join(texts), ends[0]
    raise AssertionError(f"no utterance_end for {utt}")


def test_a_long_session_keeps_answering_and_survives_a_turn_too_long_for_the_context():
    from engine_core.engine import Engine

    engine = Engine.load("tiny")
    s = engine.open_session()
    try:
        # A session that has gone on for a while: its history alone is over twice the toy's context.
        s.conversation.turns[:] = _long_conversation(8, 300).turns
        toy = engine.thinker
        assert len(toy.prompt_tokens(s.conversation, "x")) <= toy.max_prompt_tokens < 2 * 8 * 301
        text, end = _run_until_end(s, s.chat("What now?"))
        assert end.reason == "" and text == "You said: What now?."
        # A 1,500-word system prompt and a 999-word line: each within its character limit
        # (sdk.protocol.constants), together not within the context: a typed error ends the utterance.
        s.set_persona(Persona(system_prompt="p " * 1500))
        _, end = _run_until_end(s, s.chat("a " * 999))
        assert end.reason.startswith("error: ContextOverflowError") and "prompt tokens" in end.reason
        text, end = _run_until_end(s, s.chat("Still there?"))
        assert end.reason == "" and text == "You said: Still there?."
        assert s.conversation.turns[-2:] == [Turn("user", "Still there?"),
                                             Turn("assistant", "You said: Still there?.")]
    finally:
        s.close()


@pytest.fixture(scope="module")
def smollm2():
    from engine_core.thinker.cascade_assets import load_smollm2

    return load_smollm2()


def test_cascade_prompt_drops_old_turns_and_still_generates(smollm2):
    from engine_core.thinker.cascade_text import StreamingLM, build_messages, trim_messages

    model, tok = smollm2
    assert model.config.max_position_embeddings >= 2048
    lm = StreamingLM(model, tok, max_new_tokens=12, context_tokens=400)
    assert lm.max_prompt_tokens == 388
    conv = _long_conversation(12, 25)                     # ~12 * 2 * 60 tokens: far over 388
    msgs = build_messages(conv, "Where is the exit?")
    assert len(msgs) == 2 + 24 and lm.count_tokens(msgs) > 1000
    ids = lm.prompt_ids(msgs)
    assert ids.shape[1] <= 388
    prompt = tok.decode(ids[0])
    assert "patient museum guide" in prompt and "Where is the exit?" in prompt      # system + newest kept
    assert "question11" in prompt and "question0 " not in prompt                     # newest history kept
    fitted = trim_messages(msgs, lm.count_tokens, 388)
    assert fitted[0] == msgs[0] and fitted[-1] == msgs[-1] and fitted[1]["role"] == "user"
    assert fitted[1:-1] == msgs[len(msgs) - len(fitted) + 1:-1] and lm.count_tokens(fitted) <= 388
    pieces = list(lm.stream_pieces(msgs))                 # the LM answers from the trimmed prompt
    assert pieces and all(p.hidden.shape[1] == 576 for p in pieces)
    with pytest.raises(ContextOverflowError):
        lm.prompt_ids(build_messages(conv, "word " * 500))


def test_a_full_conversation_drops_its_oldest_turns_down_to_half_in_one_go():
    """Between two drops every prompt starts with the one before it (what a Thinker's cached prefix needs)."""
    from engine_core.thinker.base import Conversation

    conv = Conversation("persona", max_turns=4)
    for i in range(4):
        conv.add("user" if i % 2 == 0 else "assistant", f"t{i}")
    assert [t.text for t in conv.turns] == ["t0", "t1", "t2", "t3"]
    conv.add("user", "t4")
    assert [t.text for t in conv.turns] == ["t3", "t4"]
    conv.add("assistant", "t5")
    conv.add("user", "t6")
    assert [t.text for t in conv.turns] == ["t3", "t4", "t5", "t6"]
