"""Fuzz a LIVE daemon with ≥ 1,000 random and mutated control messages (hypothesis): every reply is a valid
typed message, the daemon stays up, still answers ping, and an existing session keeps streaming.

Three kinds of messages: noise (random frames, mutated valid messages, random headers, on made-up sessions);
LIVE ones that name the session the test streams from (chat / speak / audio / interrupt / set_persona /
ping, valid and mutated: never close); and a budgeted share of `open` with random persona dicts and portrait
blobs (random bytes, or the bytes of a real gallery portrait, mutated). Sessions the fuzzer manages to open
are closed at once, so only the live session keeps the CPU busy."""

from __future__ import annotations

import time
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdk.client import Client
from sdk.launcher import DaemonProcess
from sdk.protocol import MAX_TEXT_CHARS, pack_header
from sdk.errors import TooManySessionsError
from sdk.protocol.messages import (Audio, Chat, Close, Hello, Interrupt, Persona, Ping, Resume, SetPersona,
                                   Speak)
from test_daemon_helpers import RawControl, Stream, check_continuity, collect_until, is_end

pytestmark = pytest.mark.process

SENT = {"messages": 0, "replies": 0, "live": 0, "open": 0, "opened": 0, "live_acks": 0}
CODES: dict[str, int] = {}
LIVE = "sLIVEsession00000"             # stands for the live session id: same length ("s" + 16 hex digits)
OPEN_BUDGET = 90                       # `open` messages at most (each may analyse a portrait)
MARKER = 987654321
LIVE_ID = [""]                          # the real id, once the session is open
PORTRAIT = (Path(__file__).resolve().parents[1] / "sdk" / "portrait" / "gallery" / "ada.png").read_bytes()

# Valid templates on a made-up session ("fz"), and on the live one (never `close` there).
TEMPLATES = [pack_header(m) for m in (
    Hello(req=1, versions=[2]), Ping(req=2), Ping(req=3, session="fz"),
    Chat(req=4, session="fz", text="hello"),
    Speak(req=5, session="fz", text="line"), Interrupt(req=6, session="fz"), Close(req=7, session="fz"),
    SetPersona(req=8, session="fz", persona=Persona()), Audio(req=9, session="fz"))]
LIVE_TEMPLATES = [pack_header(m) for m in (
    Ping(req=11, session=LIVE), Chat(req=12, session=LIVE, text="hello there"),
    Speak(req=13, session=LIVE, text="a line"), Interrupt(req=14, session=LIVE),
    SetPersona(req=15, session=LIVE, persona=Persona(name="Fuzz", system_prompt="You are fuzzed.")),
    Audio(req=16, session=LIVE), Audio(req=17, session=LIVE, final=True))]
TYPES = ["hello", "ping", "chat", "speak", "audio", "interrupt", "set_persona", "close", "welcome", "error", "x", ""]
LIVE_TYPES = ["chat", "speak", "audio", "interrupt", "set_persona", "ping"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 63, 2 ** 64 - 1), st.floats(allow_nan=True),
                    st.text(max_size=40), st.binary(max_size=40))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=8)
PERSONA_FIELDS = ["name", "system_prompt", "greeting", "voice", "model", "character", "junk"]
PERSONAS = st.one_of(
    VALUES,
    st.dictionaries(st.sampled_from(PERSONA_FIELDS),
                    st.one_of(st.text(max_size=30), st.sampled_from(["", " ", "ada", "tiny", "x" * 81]),
                              VALUES),
                    max_size=6),
    st.just(Persona(name="Ok", system_prompt="You are fine.", model="tiny").model_dump()))


def _mutate(draw, raw: bytearray, max_ops: int = 6) -> bytearray:
    for _ in range(draw(st.integers(1, max_ops))):
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
    return raw


@st.composite
def mutated(draw, templates: list[bytes] = TEMPLATES) -> list[bytes]:
    raw = _mutate(draw, bytearray(draw(st.sampled_from(templates))))
    return [bytes(raw)] + draw(st.lists(st.binary(max_size=64), max_size=2))


@st.composite
def structured(draw) -> list[bytes]:
    header = {"v": draw(st.sampled_from([2, 2, 2, 0, 1, -1, "2", None, True, 2.0])),
              "type": draw(st.sampled_from(TYPES)), "req": draw(st.one_of(st.integers(-5, 2 ** 64 - 1), VALUES))}
    for key in draw(st.lists(st.sampled_from(["session", "text", "versions", "persona", "sample_rate", "final",
                                              "client", "has_portrait", "junk"]), max_size=5)):
        header[key] = draw(st.one_of(VALUES, st.just("fz"), st.just("x" * 60000), st.just([1] * 20)))
    return [msgpack.packb(header, use_bin_type=True)] + draw(st.lists(st.binary(max_size=2048), max_size=3))


@st.composite
def live_structured(draw) -> list[bytes]:
    """Mostly well-formed requests on the live session, with random (often invalid) field values."""
    kind = draw(st.sampled_from(LIVE_TYPES))
    header: dict = {"v": 2, "type": kind, "req": draw(st.integers(0, 2 ** 32)), "session": LIVE}
    good = draw(st.integers(0, 3)) < 3                       # mostly well-typed fields (hypothesis favours 0)
    if kind in ("chat", "speak"):
        header["text"] = draw(st.text(min_size=1, max_size=40) if good else
                              st.one_of(st.sampled_from(["", "  ", "x" * (MAX_TEXT_CHARS + 1)]), VALUES))
    elif kind == "audio":
        header["sample_rate"] = draw(st.sampled_from([8000, 16000, 16000, 22050, 48000]) if good else
                                     st.one_of(st.sampled_from([7999, 48001]), VALUES))
        header["final"] = draw(st.booleans() if good else VALUES)
    elif kind == "set_persona":
        header["persona"] = draw(st.one_of(st.just({"name": " ", "system_prompt": "Blank name."}),
                                           st.just({"name": "Nil", "system_prompt": "  "}), PERSONAS))
    for key in draw(st.sampled_from([[], [], [], [], [], [], [], [], ["junk"], ["final"]])):
        header[key] = draw(VALUES)
    blobs = draw(st.lists(st.binary(max_size=2048), max_size=1) if kind == "audio" else
                 st.sampled_from([[], [], [], [], [b"stray blob"]]))
    return [msgpack.packb(header, use_bin_type=True)] + blobs


@st.composite
def opens(draw) -> list[bytes]:
    header = {"v": 2, "type": "open", "req": draw(st.integers(0, 2 ** 32)), "persona": draw(PERSONAS),
              "has_portrait": draw(st.one_of(st.booleans(), VALUES))}
    portrait = draw(st.one_of(st.binary(min_size=1, max_size=512),                      # random bytes
                              st.builds(lambda n: PORTRAIT[:n], st.integers(8, len(PORTRAIT))),  # truncated
                              st.builds(lambda seed: _flip(PORTRAIT, seed), st.integers(0, 2 ** 16))))
    blobs = draw(st.sampled_from([[], [portrait], [portrait, b"x"]]))
    if draw(st.booleans()):
        del header["persona"]
    return [msgpack.packb(header, use_bin_type=True)] + blobs


def _flip(data: bytes, seed: int) -> bytes:
    """`data` with 4 bytes flipped at places chosen by `seed`."""
    b = bytearray(data)
    for k in range(4):
        b[(seed * 7919 + k * 104729) % len(b)] ^= 0x5A
    return bytes(b)


MESSAGES = st.one_of(
    st.tuples(st.just("live"), live_structured()),
    st.tuples(st.just("noise"), st.lists(st.binary(max_size=256), min_size=1, max_size=4)),
    st.tuples(st.just("noise"), mutated()), st.tuples(st.just("noise"), structured()),
    st.tuples(st.just("live"), mutated(LIVE_TEMPLATES)), st.tuples(st.just("live"), live_structured()),
    st.tuples(st.just("open"), opens()))        # drawn more often than OPEN_BUDGET: the budget caps them


@pytest.fixture(scope="module")
def daemon():
    # (the fuzz is about decoding: no rate limit, a deep turn queue)
    with DaemonProcess(model="tiny", extra_args=["--max-sessions", "2", "--client-rate", "100000",
                                                 "--session-queue", "1000"]) as d:
        yield d
        assert d.alive(), "the daemon died under fuzzing:\n" + "".join(d.stderr_tail)


def _read_replies(raw: RawControl, until_marker: bool, timeout: float) -> None:
    """Validate replies (RawControl.recv decodes each as a server message); close what the fuzzer opened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not until_marker and not raw.sock.poll(100):
            continue
        reply = raw.recv(timeout=30)               # every reply decodes as a valid server message
        if reply.type == "pong" and reply.req == MARKER:
            return
        SENT["replies"] += 1
        if reply.type == "error":
            CODES[reply.code.value] = CODES.get(reply.code.value, 0) + 1
        if reply.type == "ack" and reply.session == LIVE_ID[0]:
            SENT["live_acks"] += 1
        if reply.type == "opened":
            SENT["opened"] += 1
            raw.send_frames([pack_header(Close(req=1, session=reply.session))])
    assert not until_marker, "no marker pong"


def fuzz_batches(raw: RawControl, live: str, batches: int = 110) -> None:
    """Send `batches` hypothesis batches of 10 messages each; every reply must decode as a valid server
    message.
    (tests/fuzz_daemon.py runs this with ≥ 1,000 batches and prints the outcome counts.)"""
    token = LIVE.encode()
    LIVE_ID[0] = live

    @settings(max_examples=batches, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(batch=st.lists(MESSAGES, min_size=10, max_size=10))
    def fuzz(batch: list[tuple[str, list[bytes]]]) -> None:
        for tag, frames in batch:
            if tag == "open":
                if SENT["open"] >= OPEN_BUDGET:
                    tag, frames = "live", [pack_header(Ping(req=18, session=live))]
                else:
                    SENT["open"] += 1
            if tag == "live":
                frames = [frames[0].replace(token, live.encode()), *frames[1:]]
                SENT["live"] += 1
            raw.send_frames(frames)
            SENT["messages"] += 1
        # A marker ping: the control loop answers in order, so its pong comes after every synchronous reply
        # (opens and final audio answer later: they are read with a later batch).
        raw.send_frames([pack_header(Ping(req=MARKER))])
        _read_replies(raw, until_marker=True, timeout=60)

    fuzz()
    _read_replies(raw, until_marker=False, timeout=2.0)        # late open/audio replies


def fuzz_sessions_gone(control: str, timeout: float = 10.0) -> bool:
    """True once a new client can open the daemon's last free session (max 2: the live one + this)."""
    deadline = time.monotonic() + timeout
    with Client(control, heartbeat=False) as probe:
        while time.monotonic() < deadline:
            try:
                probe.open_session().close()
                return True
            except TooManySessionsError:
                time.sleep(0.2)
    return False


def test_daemon_survives_fuzzing_without_losing_a_session(daemon):
    t0 = time.monotonic()
    with Client(daemon.control) as client, client.open_session() as s:
        assert len(s.id) == len(LIVE)
        before = collect_until(s, lambda p: p.type == "video")
        raw = RawControl(daemon.control)
        try:
            raw.call(Hello(req=0, versions=[2]))        # welcomed, and holding the live session (its secret):
            resumed = raw.call(Resume(req=0, session=s.id, secret=s.info.secret))
            assert resumed.type == "opened"       # so its requests reach it
            fuzz_batches(raw, s.id)                # ≥ 1,100 messages while the session streams
        finally:
            raw.close()
        fuzz_s = time.monotonic() - t0
        print(f"\nfuzz: {SENT} in {fuzz_s:.1f} s; error codes {CODES}")
        assert SENT["messages"] >= 1000
        assert SENT["live"] >= 300 and 30 <= SENT["open"] <= OPEN_BUDGET and SENT["opened"] >= 1, SENT
        assert SENT["live_acks"] >= 100, SENT      # the live session really took chats, speaks, interrupts...
        assert {"invalid_persona", "invalid_audio", "empty_text"} <= set(CODES), CODES
        assert SENT["replies"] >= SENT["messages"] // 2, SENT     # most messages got a typed reply
        assert client.ping(session=s.id).type == "pong"          # the live session still exists
        assert fuzz_sessions_gone(daemon.control)                # and every session the fuzzer opened is gone
        assert client.reconnects == 0
        # The session still streams, continuously, and still speaks (after dropping what the fuzz queued).
        st_ = collect_until(s, lambda p: True, stream=Stream(before.packets))
        s.interrupt()
        utt = s.speak("Still here.")
        st_ = collect_until(s, is_end(utt), stream=st_)
        check_continuity(st_, first_seq=0)
        assert st_.text(utt) == "Still here."
    assert daemon.alive()
