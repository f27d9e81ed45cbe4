"""Fuzz a LIVE daemon with ≥ 1,000 random and mutated control messages (hypothesis): every reply is a valid
typed message, the daemon stays up, still answers ping, and an existing session keeps streaming."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdk.client import Client
from sdk.launcher import DaemonProcess
from sdk.protocol import pack_header
from sdk.protocol.messages import (Audio, Chat, Close, Hello, Interrupt, Persona, Ping, SetPersona, Speak)
from test_daemon_helpers import RawControl, Stream, check_continuity, collect_until, is_end

SENT = {"messages": 0, "replies": 0}

# Valid templates (never naming the live session, never `open`: the fuzzer must not burn CPU on sessions).
TEMPLATES = [pack_header(m) for m in (
    Hello(req=1), Ping(req=2), Ping(req=3, session="fz"), Chat(req=4, session="fz", text="hello"),
    Speak(req=5, session="fz", text="line"), Interrupt(req=6, session="fz"), Close(req=7, session="fz"),
    SetPersona(req=8, session="fz", persona=Persona()), Audio(req=9, session="fz"))]
TYPES = ["hello", "ping", "chat", "speak", "audio", "interrupt", "set_persona", "close", "welcome", "error", "x", ""]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 63, 2 ** 64 - 1), st.floats(allow_nan=True),
                    st.text(max_size=40), st.binary(max_size=40))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=8)


@st.composite
def mutated(draw) -> list[bytes]:
    raw = bytearray(draw(st.sampled_from(TEMPLATES)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        i = draw(st.integers(0, max(0, len(raw) - 1)))
        if op == "flip" and raw:
            raw[i] ^= draw(st.integers(1, 255))
        elif op == "insert":
            raw[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and raw:
            del raw[i]
        elif op == "truncate":
            raw = raw[:i]
    return [bytes(raw)] + draw(st.lists(st.binary(max_size=64), max_size=2))


@st.composite
def structured(draw) -> list[bytes]:
    header = {"v": draw(st.sampled_from([1, 1, 1, 0, 2, -1, "1", None, True])),
              "type": draw(st.sampled_from(TYPES)), "req": draw(st.one_of(st.integers(-5, 2 ** 64 - 1), VALUES))}
    for key in draw(st.lists(st.sampled_from(["session", "text", "versions", "persona", "sample_rate", "final",
                                              "client", "has_portrait", "junk"]), max_size=5)):
        header[key] = draw(st.one_of(VALUES, st.just("fz"), st.just("x" * 60000), st.just([1] * 20)))
    return [msgpack.packb(header, use_bin_type=True)] + draw(st.lists(st.binary(max_size=2048), max_size=3))


MESSAGES = st.one_of(st.lists(st.binary(max_size=256), min_size=1, max_size=4), mutated(), structured())


@pytest.fixture(scope="module")
def daemon():
    with DaemonProcess(model="tiny", extra_args=["--max-sessions", "2"]) as d:
        yield d
        assert d.alive(), "the daemon died under fuzzing:\n" + "".join(d.stderr_tail)


def fuzz_batches(raw: RawControl) -> None:
    """Send 110 hypothesis batches of 10 messages each; every reply must decode as a valid server message."""

    @settings(max_examples=110, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(batch=st.lists(MESSAGES, min_size=10, max_size=10))
    def fuzz(batch: list[list[bytes]]) -> None:
        for frames in batch:
            raw.send_frames(frames)
            SENT["messages"] += 1
        # A marker ping: the control loop answers in order, so its pong comes after every other reply.
        raw.send_frames([pack_header(Ping(req=987654321))])
        while True:
            reply = raw.recv(timeout=30)          # every reply decodes as a valid server message
            if reply.type == "pong" and reply.req == 987654321:
                break
            SENT["replies"] += 1

    fuzz()


def test_daemon_survives_fuzzing_without_losing_a_session(daemon):
    with Client(daemon.control) as client, client.open_session() as s:
        before = collect_until(s, lambda p: p.type == "video")
        raw = RawControl(daemon.control)
        try:
            fuzz_batches(raw)                  # ≥ 1,100 messages while the session streams
        finally:
            raw.close()
        assert SENT["messages"] >= 1000
        assert SENT["replies"] >= SENT["messages"] // 2, SENT     # most messages got a typed reply
        assert client.ping().type == "pong"
        assert client.reconnects == 0
        # The session still streams, continuously, and still speaks.
        st_ = collect_until(s, lambda p: True, stream=Stream(before.packets))
        utt = s.speak("Still here.")
        st_ = collect_until(s, is_end(utt), stream=st_)
        check_continuity(st_, first_seq=0)
        assert st_.text(utt) == "Still here."
    assert daemon.alive()
