"""cascade Thinker: real SmolLM2 (GGUF), Piper joe, Whisper tiny.en, sharing one module-scoped instance."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from engine_core.errors import AudioError, TextError
from engine_core.thinker.base import SAMPLES_PER_FRAME, Conversation
from engine_core.thinker.cascade_asr import resample
from engine_core.thinker.cascade_text import (MAX_FIRST_PIECE_CHARS, brevity, build_messages, ends_sentence,
                                              find_boundary, joined_text, split_text)

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def thinker():
    from engine_core.thinker.registry import load_thinker

    return load_thinker("cascade", max_new_tokens=28)


def _check_segments(segs, hidden_size=576):
    frame = 0
    for s in segs:
        assert s.start_frame == frame and s.num_frames > 0
        assert s.audio.shape == (s.num_frames * SAMPLES_PER_FRAME,) and np.abs(s.audio).max() > 0.05
        assert s.hidden.shape == (s.hidden_frames.shape[0], hidden_size) and s.hidden.shape[0] > 0
        assert int(s.hidden_frames.min()) >= s.start_frame
        assert int(s.hidden_frames.max()) < s.start_frame + s.num_frames
        assert torch.all(s.hidden_frames[1:] >= s.hidden_frames[:-1])       # tokens follow the speech
        assert s.speech_features.shape == (s.num_frames, 80)
        frame += s.num_frames


def _words(t):
    return re.findall(r"[a-z0-9']+", t.lower())


def test_reply_multi_turn_with_persona(thinker):
    conv = Conversation("You are Captain Nemo, the submarine captain.")
    segs = list(thinker.reply(conv, "Who are you?"))
    assert segs and all(s.text for s in segs)
    _check_segments(segs)
    assert [t.role for t in conv.turns] == ["user", "assistant"]
    assert conv.turns[1].text == "".join(s.text for s in segs).strip()
    assert segs[0].text == segs[0].text.strip()                 # the reply's first piece: nothing before it
    assert all(not s.text.strip().startswith(" ") for s in segs)
    msgs = build_messages(conv, "And where do you live?")
    assert msgs[0]["role"] == "system" and "Captain Nemo" in msgs[0]["content"]
    assert [m["role"] for m in msgs[1:]] == ["user", "assistant", "user"]
    segs2 = list(thinker.reply(conv, "And where do you live?"))
    _check_segments(segs2)
    assert len(conv.turns) == 4


def test_speak_verbatim_and_hidden_from_lm(thinker):
    line = "Welcome to the show, everybody. Today we talk about whales and dolphins!"
    segs = list(thinker.speak(line))
    _check_segments(segs)
    assert "".join(s.text for s in segs) == line         # pieces carry their spacing: joined, the line
    assert len(segs) >= 2                                  # cut at the sentence end at least
    assert segs[1].text.startswith(" ") and not segs[0].text.startswith(" ")
    model, tok = thinker.lm.model, thinker.lm.tok
    ids = tok(line, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        ref = model.model(input_ids=torch.tensor([ids])).last_hidden_state[0]
    got = torch.cat([s.hidden for s in segs])
    assert got.shape == ref.shape and torch.allclose(got, ref, atol=1e-4)


def test_piper_whisper_round_trip(thinker):
    line = "The weather is lovely today, so we will walk to the park."
    audio = np.concatenate([s.audio for s in thinker.speak(line)])
    heard = thinker.hear((audio * 32767).astype(np.int16), 22050).text
    ref, hyp = _words(line), _words(heard)
    errors = sum(1 for w in ref if w not in hyp)
    assert errors <= 2, heard
    # the same speech at 44.1 kHz float goes through the resampler and is still understood
    heard44 = thinker.hear(resample(audio, 22050, 44100), 44100).text
    assert sum(1 for w in ref if w not in _words(heard44)) <= 2, heard44


def test_the_gate_stops_the_reply_and_a_verbatim_line_between_tokens_and_pieces(thinker):
    asked = []

    def gate() -> bool:
        asked.append(1)
        return len(asked) <= 3
    pieces = list(thinker.lm.stream_pieces(build_messages(Conversation("You are kind."), "Tell me a story."), gate))
    assert len(asked) == 4 and sum(p.hidden.shape[0] for p in pieces) <= 3
    assert list(thinker.speak("One line. And another line.", gate=lambda: False)) == []
    conv = Conversation("You are kind.")
    assert list(thinker.reply(conv, "Hello!", gate=lambda: False)) == []
    assert [t.role for t in conv.turns] == ["user", "assistant"]


def test_a_persona_cap_ends_the_reply_after_its_sentences(thinker):
    """The same prompt: uncapped, SmolLM2 says several sentences; capped at one, the decode stops after the
    first (fewer tokens decoded: the gate is asked less), and reply() keeps to Conversation.max_sentences."""
    msgs = build_messages(Conversation("You are a chatty guide who loves long answers."),
                          "Tell me about the museum, its rooms and its paintings.")
    asked = {0: 0, 1: 0}

    def gate(cap):
        def ask() -> bool:
            asked[cap] += 1
            return True
        return ask

    budget, thinker.lm.max_new_tokens = thinker.lm.max_new_tokens, 96     # room for a rambling answer
    try:
        free = list(thinker.lm.stream_pieces(msgs, gate(0)))
        capped = list(thinker.lm.stream_pieces(msgs, gate(1), max_sentences=1))
    finally:
        thinker.lm.max_new_tokens = budget
    assert sum(ends_sentence(p.body) for p in free) >= 2, "".join(p.text for p in free)
    assert sum(ends_sentence(p.body) for p in capped) == 1 and ends_sentence(capped[-1].body)
    assert "".join(p.text for p in free).startswith("".join(p.text for p in capped))   # greedy: the same start
    assert asked[1] < asked[0]
    conv = Conversation("You are a chatty guide who loves long answers.", max_sentences=1)
    segs = list(thinker.reply(conv, "Tell me about the museum, its rooms and its paintings."))
    said = "".join(s.text for s in segs)
    assert said.strip() and sum(ends_sentence(s.text) for s in segs) <= 1, said
    assert "at most 1 short, spoken sentence." in build_messages(conv, "Hi")[0]["content"]


def test_piece_text_helpers():
    assert joined_text("  I've been there.", first=False) == " I've been there."
    assert joined_text(" Hello.", first=True) == "Hello."
    assert joined_text("ing on and on", first=False) == "ing on and on"      # cut inside a word: glued back
    assert ends_sentence("What a game!") and ends_sentence('He said "yes."') and not ends_sentence("now,")
    assert brevity(0) == brevity() and "at most 3 short, spoken sentences" in brevity(3)


def test_bad_input(thinker):
    with pytest.raises(TextError):
        next(thinker.speak("   "))
    with pytest.raises(TextError):
        next(thinker.reply(Conversation("x"), ""))
    with pytest.raises(AudioError):
        thinker.hear(np.zeros((2, 100), np.int16), 16000)
    with pytest.raises(AudioError):
        thinker.hear(np.zeros(100, np.int32), 16000)
    with pytest.raises(AudioError):
        thinker.hear(np.zeros(16000, np.int16), 12)
    assert thinker.hear(np.zeros(16000, np.int16), 16000).text == ""


def test_piece_cutting():
    assert find_boundary("Hello there. How", first=True) == len("Hello there.")
    assert find_boundary("Hello there", first=True) is None              # not complete until whitespace
    assert find_boundary("Well, I", first=False) is None                 # short clause waits
    assert find_boundary("Well, I think so", first=False) is None
    long = "The museum has many rooms full of paintings, and"
    assert find_boundary(long, first=False) == long.index(",") + 1
    # a long first sentence with no clause in reach is cut at a space within MAX_FIRST_PIECE_CHARS (the first
    # packet waits for the first piece's voice); later pieces only past MAX_PIECE_CHARS
    moon = "The moon is a mysterious and beautiful celestial body that shines"
    assert find_boundary(moon, first=True) == moon.rindex(" ", 0, MAX_FIRST_PIECE_CHARS)
    assert find_boundary(moon[:MAX_FIRST_PIECE_CHARS], first=True) is None
    assert find_boundary(moon, first=False) is None
    assert split_text(moon + ".")[:1] == [(0, moon.rindex(" ", 0, MAX_FIRST_PIECE_CHARS))]
    text = "Hi. I am Joe, your guide for today, welcome!"
    cut = text.index("today,") + len("today,")            # "I am Joe," is too short a clause to cut
    assert split_text(text) == [(0, 3), (3, cut), (cut, len(text))]


def test_resample_keeps_frequency():
    t = np.arange(22050) / 22050
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    out = resample(tone, 22050, 16000)
    assert out.shape == (16000,)
    assert abs(np.argmax(np.abs(np.fft.rfft(out))) - 440) <= 1
