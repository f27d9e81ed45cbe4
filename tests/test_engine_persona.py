"""What a persona asks of a session (tiny engine): the greeting is said at open, the voice must exist, the reply
cap reaches the Thinker's conversation. (The cap itself is tested on the real SmolLM2 in test_thinker_cascade.)"""

from __future__ import annotations

import pytest

from engine_core.engine import Engine
from engine_core.errors import PersonaError
from sdk.protocol import MAX_REPLY_SENTENCES, VOICES, Persona

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.load("tiny")


def _until_end(session, utt: int, limit: int = 80):
    out = []
    for _ in range(limit):
        c = session.next_chunk()
        out.append(c)
        if any(e.event == "utterance_end" and e.utt == utt for e in c.events):
            return out
    raise AssertionError(f"utterance {utt} did not end within {limit} chunks")


def test_the_greeting_is_the_first_utterance_of_a_session(engine):
    s = engine.open_session(persona=Persona(name="Ada", greeting="Hello there, I am Ada."))
    try:
        chunks = _until_end(s, 1)
        starts = [e.utt for c in chunks for e in c.events if e.event == "utterance_start"]
        assert starts == [1]
        said = "".join(t.text for c in chunks if c.utt == 1 for t in c.texts if t.role == "assistant")
        assert said == "Hello there, I am Ada."
        assert s.chat("nice to meet you") == 2            # the user's first turn comes after the greeting
    finally:
        s.close()


def test_no_greeting_no_utterance(engine):
    s = engine.open_session(persona=Persona(name="Quiet", greeting="   "))
    try:
        chunks = [s.next_chunk() for _ in range(4)]
        assert all(c.utt == 0 and not c.events and not c.texts for c in chunks)
        assert s.chat("hi") == 1
    finally:
        s.close()


def test_a_voice_the_model_does_not_have_is_refused(engine):
    assert engine.thinker.voices == VOICES                 # the voices clients may offer are the model's
    with pytest.raises(PersonaError, match="voice 'alice'") as err:
        engine.open_session(persona=Persona(voice="alice"))
    assert err.value.code == "invalid_persona"
    s = engine.open_session(persona=Persona(voice=VOICES[0]))
    try:
        with pytest.raises(PersonaError):
            s.set_persona(Persona(voice="alice"))
        assert s.persona.voice == VOICES[0]                # a refused switch changes nothing
    finally:
        s.close()


def test_the_reply_cap_reaches_the_conversation(engine):
    s = engine.open_session(persona=Persona(max_reply_sentences=2))
    try:
        assert s.conversation.max_sentences == 2
        s.set_persona(Persona(max_reply_sentences=0))
        assert s.conversation.max_sentences == 0
    finally:
        s.close()
    with pytest.raises(ValueError):
        Persona(max_reply_sentences=MAX_REPLY_SENTENCES + 1)
    with pytest.raises(ValueError):
        Persona(max_reply_sentences=-1)


def test_cascade_voices_are_the_protocol_voices():
    from engine_core.thinker.cascade import CascadeThinker

    assert CascadeThinker.voices == VOICES


@pytest.mark.process
def test_the_daemon_refuses_an_unknown_voice_with_a_typed_error():
    """Over the wire: opening with a voice no model has is an `invalid_persona` error, not a silent default."""
    from sdk.client import Client
    from sdk.errors import InvalidInputError
    from sdk.launcher import DaemonProcess
    from sdk.protocol import ErrorCode

    with DaemonProcess(model="tiny") as d:
        client = Client(control=d.control)
        client.connect()
        try:
            with pytest.raises(InvalidInputError) as err:
                client.open_session(persona=Persona(voice="alice"))
            assert err.value.code == ErrorCode.INVALID_PERSONA and "alice" in str(err.value)
            session = client.open_session(persona=Persona(voice=VOICES[0], max_reply_sentences=1))
            session.close()
        finally:
            client.close()
