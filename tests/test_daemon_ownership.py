"""Nobody else's session (issue #23, item 1), over real loopback sockets: media is private to the session's
holder (XPUB in manual mode, an unguessable topic), another connection's requests on a session are refused,
`pong` reveals nothing before hello and only the asker's own sessions after it, `resume` needs the session's
secret, and each connection is limited in sessions, requests a second and queued turns.

Written against the wire (codes compared as strings), so each test also runs against a v1 daemon and fails
there.
"""

from __future__ import annotations

import time

import msgpack
import pytest
import zmq

from sdk.client import Client
from sdk.launcher import DaemonProcess
from sdk.protocol import pack_header
from sdk.protocol.messages import PROTOCOL_VERSION, Close, Hello, Interrupt, Persona, Ping, SetPersona, Speak
from test_daemon_helpers import RawControl, collect_until, is_end

pytestmark = pytest.mark.process

LONG = " ".join(["This reply goes on for a while so that there is something to overhear."] * 3)


@pytest.fixture(scope="module")
def daemon():
    with DaemonProcess(model="tiny", extra_args=["--max-sessions", "6", "--client-sessions", "2",
                                                 "--client-rate", "20", "--session-queue", "2"]) as d:
        yield d


def _code(reply) -> str:
    return reply.code.value if reply.type == "error" else reply.type


def _resume(raw: RawControl, req: int, session: str, secret: str):
    """A `resume` written as a plain map (the test file also runs against a v1 daemon, which has no model)."""
    raw.send_frames([msgpack.packb({"v": PROTOCOL_VERSION, "type": "resume", "req": req, "session": session,
                                    "secret": secret})])
    return raw.recv()


def _raw(control: str, hello: bool = True) -> RawControl:
    raw = RawControl(control)
    if hello:
        assert raw.call(Hello(req=1, versions=[PROTOCOL_VERSION])).type == "welcome"
    return raw


def test_a_wildcard_subscriber_learns_no_session_and_hears_nothing(daemon):
    with Client(daemon.control, heartbeat=False) as client, client.open_session() as s:
        ctx = zmq.Context()
        spy = ctx.socket(zmq.SUB)
        try:
            spy.connect(client.media_endpoint)
            sid = s.id.encode()
            for prefix in (b"", b"x", b"xs", b"xs1/", b"xs2/", b"xs1/" + sid, b"xs2/" + sid):
                spy.setsockopt(zmq.SUBSCRIBE, prefix)
            time.sleep(0.3)
            utt = s.speak("Only my own client hears this.")
            st = collect_until(s, is_end(utt))             # the owner gets the whole reply meanwhile ...
            assert st.text(utt) == "Only my own client hears this."
            overheard = []
            while spy.poll(500):                            # ... and the spy got not a single packet
                overheard.append(spy.recv_multipart()[0])
            assert overheard == [], f"a wildcard subscriber got {len(overheard)} packets ({set(overheard)})"
        finally:
            spy.close(0)
            ctx.term()


def test_another_connection_cannot_drive_or_close_a_session(daemon):
    with Client(daemon.control, heartbeat=False) as client, client.open_session() as s:
        intruder = _raw(daemon.control)
        try:
            for i, msg in enumerate((Speak(session=s.id, text="Injected speech."),
                                     SetPersona(session=s.id, persona=Persona(name="Mallory")),
                                     Interrupt(session=s.id), Close(session=s.id), Ping(session=s.id))):
                reply = intruder.call(msg.model_copy(update={"req": 10 + i}))
                assert (_code(reply), reply.req) == ("not_owner", 10 + i), (msg.type, reply)
        finally:
            intruder.close()
        utt = s.speak("Still mine.")                     # the session is alive, and nobody spoke in it
        st = collect_until(s, is_end(utt))
        assert st.text(utt) == "Still mine."
        assert {p.utt for p in st.of("audio")} <= {0, utt}


def test_pong_reveals_nothing_before_hello_and_only_the_askers_sessions_after(daemon):
    with Client(daemon.control, heartbeat=False) as client, client.open_session() as s:
        stranger = _raw(daemon.control, hello=False)
        try:
            assert stranger.call(Ping(req=2)).sessions == 0                          # one session is open
            assert _code(stranger.call(Ping(req=3, session=s.id))) == "not_welcomed"
            assert stranger.call(Hello(req=4, versions=[PROTOCOL_VERSION])).type == "welcome"
            assert stranger.call(Ping(req=5)).sessions == 0
        finally:
            stranger.close()
        assert client.ping().sessions == 1


def test_resume_needs_the_sessions_secret(daemon):
    with Client(daemon.control, heartbeat=False) as client, client.open_session() as s:
        other = _raw(daemon.control)
        try:
            assert _code(_resume(other, 6, s.id, "guess")) == "not_owner"
            opened = _resume(other, 7, s.id, getattr(s.info, "secret", ""))
            assert (opened.type, opened.session, opened.topic) == ("opened", s.id, s.topic)
            assert other.call(Speak(req=8, session=s.id, text="Said by the second program.")).type == "ack"
        finally:
            other.close()


def test_one_connection_holds_at_most_its_share_of_sessions(daemon):
    with Client(daemon.control, heartbeat=False) as greedy, Client(daemon.control, heartbeat=False) as polite:
        held = [greedy.open_session(), greedy.open_session()]
        with pytest.raises(Exception) as info:
            greedy.open_session()
        assert getattr(info.value, "code", None) is not None and info.value.code.value == "too_many_sessions"
        with polite.open_session() as s:                 # somebody else still gets one
            assert s.id not in {h.id for h in held}
        for h in held:
            h.close()


def test_requests_a_second_are_limited_per_connection(daemon):
    flood = _raw(daemon.control)
    try:
        for i in range(120):
            flood.send_frames([pack_header(Ping(req=100 + i))])
        codes = [_code(flood.recv()) for _ in range(120)]
        assert codes.count("pong") >= 20 and codes.count("rate_limited") >= 40, codes
        time.sleep(1.5)                                   # the bucket refills
        assert flood.call(Ping(req=300)).type == "pong"
    finally:
        flood.close()
    with Client(daemon.control, heartbeat=False) as bystander:
        assert bystander.ping().type == "pong"             # another connection was never limited


def test_turns_queued_in_one_session_are_limited(daemon):
    with Client(daemon.control, heartbeat=False) as client, client.open_session() as s:
        raw = _raw(daemon.control)
        try:
            assert _resume(raw, 2, s.id, getattr(s.info, "secret", "")).type == "opened"
            codes = [_code(raw.call(Speak(req=10 + i, session=s.id, text=LONG))) for i in range(4)]
            assert codes[:2] == ["ack", "ack"] and codes[2:] == ["rate_limited", "rate_limited"], codes
            assert raw.call(Interrupt(req=20, session=s.id)).type == "ack"     # drops the queued turns
            assert raw.call(Speak(req=21, session=s.id, text="Room again.")).type == "ack"
        finally:
            raw.close()


def test_a_closed_session_frees_its_place_at_once():
    with DaemonProcess(model="tiny", extra_args=["--max-sessions", "1"]) as d:
        with Client(d.control, heartbeat=False) as client:
            for _ in range(3):
                s = client.open_session()
                s.close()                                  # the next open must not see it still counted
            client.open_session().close()
