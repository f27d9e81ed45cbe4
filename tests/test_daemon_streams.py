"""A live daemon (`xstreamer serve --model tiny` subprocess, real sockets on loopback): concurrent sessions,
interrupt, typed errors, and live packets against the golden vectors."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import msgpack
import pytest
import zmq

from sdk.client import Client
from sdk.errors import InvalidInputError, UnknownSessionError
from sdk.launcher import DaemonProcess
from sdk.protocol import ErrorCode, decode_media, encode
from sdk.protocol.messages import Chat, Hello, Open, Ping, Speak
from test_daemon_helpers import RawControl, Stream, check_continuity, collect_until, is_end

pytestmark = pytest.mark.process

VEC = Path(__file__).resolve().parent / "vectors"


@pytest.fixture(scope="module")
def daemon():
    with DaemonProcess(model="tiny", extra_args=["--max-sessions", "4"]) as d:
        yield d
    assert d.proc.returncode == 0, "".join(d.stderr_tail)


def test_two_concurrent_clients_get_independent_streams(daemon):
    texts = {"a": "Alpha bravo charlie.", "b": "Delta echo, foxtrot golf hotel."}
    clients = {k: Client(daemon.control, client_name=f"client-{k}").__enter__() for k in texts}
    try:
        handles = {k: c.open_session() for k, c in clients.items()}
        assert handles["a"].id != handles["b"].id and handles["a"].topic.startswith("xs2/")
        utts = {k: handles[k].speak(texts[k]) for k in texts}
        streams: dict[str, Stream] = {}
        errors: list[BaseException] = []

        def read(k: str) -> None:
            try:
                streams[k] = collect_until(handles[k], is_end(utts[k]))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=read, args=(k,)) for k in texts]
        [t.start() for t in threads]
        [t.join(120) for t in threads]
        assert not errors, errors
        for k, s in streams.items():
            assert {p.session for p, _, _ in s.packets} == {handles[k].id}
            check_continuity(s, first_seq=0)
            assert s.text(utts[k]) == texts[k]                      # its own words, verbatim, nobody else's
            ev = s.events(utts[k])
            assert ev[0] == ("utterance_start", utts[k]) and ev[-1] == ("utterance_end", utts[k])
            spoken = [p for p in s.of("audio") if p.utt == utts[k]]
            assert len(spoken) >= 10
            assert any(p.state in ("idle", "thinking", "speaking") for p in s.of("state"))
        assert streams["a"].text(utts["a"]) != streams["b"].text(utts["b"])
    finally:
        for c in clients.values():
            c.close()


def test_interrupt_stops_the_reply_and_the_next_starts_clean(daemon):
    with Client(daemon.control) as client, client.open_session() as s:
        long = " ".join(["This is a rather long sentence that keeps going."] * 6)
        u1 = s.speak(long)
        st = collect_until(s, lambda p: p.type == "audio" and p.utt == u1 and p.pts > 0, timeout=90)
        for _ in range(4):   # a few chunks into the reply
            st = collect_until(s, lambda p: p.type == "audio", stream=st)
        before = len(st.packets)
        s.interrupt()
        st = collect_until(s, lambda p: p.type == "event" and p.event == "interrupted", timeout=30, stream=st)
        cut = len(st.packets)
        # Queued media was flushed: at most the chunk being computed (5 frames on tiny) of the old reply
        # arrives between the interrupt and the `interrupted` event (plus a packet or two already in flight).
        late = [p for p, _, _ in st.packets[before:cut] if p.type == "audio" and p.utt == u1]
        assert len(late) <= 5 + 2, f"{len(late)} audio packets of the interrupted reply were still published"
        u2 = s.speak("Fresh start.")
        assert u2 > u1
        st = collect_until(s, is_end(u2), stream=st)
        check_continuity(st)
        after = st.packets[cut:]
        old = [p for p, _, _ in after if p.utt == u1 and p.type in ("audio", "video", "text")]
        assert len(old) <= 2 * 5 + 2, f"{len(old)} packets of the interrupted reply after the interrupted event"
        assert not any(p.type == "event" and p.event == "utterance_end" and p.utt == u1 for p, _, _ in after)
        start = next(i for i, (p, _, _) in enumerate(after) if p.type == "event" and p.utt == u2)
        assert after[start][0].event == "utterance_start"
        assert not [p for p, _, _ in after[start:] if p.utt == u1], "old utterance after the new one started"
        assert st.text(u2) == "Fresh start."
        # the interrupted reply never finished: far fewer words than the text
        assert len(st.text(u1)) < len(long)


def test_version_mismatch_and_malformed_messages_get_typed_errors(daemon):
    raw = RawControl(daemon.control)
    try:
        err = raw.call(Hello(req=1, versions=[3, 4]))
        assert (err.type, err.code, err.req, err.supported_versions) == \
            ("error", ErrorCode.UNSUPPORTED_VERSION, 1, [2])
        raw.send_frames([msgpack.packb({"v": 1, "type": "hello", "req": 2, "versions": [1]})])
        assert raw.recv().code is ErrorCode.UNSUPPORTED_VERSION
        raw.send_frames([b"\xc1garbage"])
        assert raw.recv().code is ErrorCode.MALFORMED
        raw.send_frames([msgpack.packb({"v": 2, "type": "teleport", "req": 3})])
        err = raw.recv()
        assert (err.code, err.req) == (ErrorCode.UNKNOWN_TYPE, 3)
        assert raw.call(Chat(req=4, session="nope", text="hi")).code is ErrorCode.NOT_WELCOMED
        assert raw.call(Open(req=5)).code is ErrorCode.NOT_WELCOMED
        assert raw.call(Hello(req=6, versions=[3, 2])).type == "welcome"
        assert raw.call(Chat(req=7, session="nope", text="hi")).code is ErrorCode.UNKNOWN_SESSION
        raw.send_frames([*encode(Chat(req=8, session="nope", text="hi")), b"extra frame"])
        assert raw.recv().code is ErrorCode.MALFORMED
        raw.send_frames(encode(Speak(req=9, session="nope", text="   ")))
        assert raw.recv().code is ErrorCode.EMPTY_TEXT
        assert raw.call(Ping(req=10)).type == "pong"
    finally:
        raw.close()
    with Client(daemon.control) as client:
        with pytest.raises(InvalidInputError) as info:
            client.open_session(portrait=b"this is not an image")
        assert info.value.code is ErrorCode.INVALID_PORTRAIT
        with client.open_session() as s:
            with pytest.raises(InvalidInputError) as info:
                s.speak("x" * 5000)
            assert info.value.code is ErrorCode.TEXT_TOO_LONG
        client.auto_reconnect = False
        with pytest.raises(UnknownSessionError):
            client._request(Chat(session="gone", text="hello"))


def test_live_packets_match_the_golden_vectors(daemon):
    """Every packet kind the daemon publishes has the header layout (keys, order, types) of its vector."""
    golden = {}
    for name in json.loads((VEC / "index.json").read_text())["vectors"]:
        entry = json.loads((VEC / f"{name}.json").read_text())
        if entry["valid"] and entry["direction"] == "media":
            golden.setdefault(entry["header"]["type"], entry["header"])
    with Client(daemon.control) as client, client.open_session() as s:
        ctx = zmq.Context()
        sub = ctx.socket(zmq.SUB)
        sub.connect(client.media_endpoint)
        sub.setsockopt(zmq.SUBSCRIBE, s.topic.encode())
        try:
            utt = s.speak("Vector check.")
            seen: dict[str, int] = {}
            while not ({"audio", "video", "text", "event", "state"} <= set(seen) and seen.get("end")):
                assert sub.poll(60000)
                frames = sub.recv_multipart()
                header = msgpack.unpackb(frames[1], raw=False)
                ref = golden[header["type"]]
                assert list(header) == list(ref), header["type"]
                assert [type(header[k]) for k in ref] == [type(ref[k]) for k in ref], header["type"]
                pkt, payload = decode_media(frames, topic=s.topic.encode())
                seen[pkt.type] = seen.get(pkt.type, 0) + 1
                if pkt.type == "event" and pkt.event == "utterance_end" and pkt.utt == utt:
                    seen["end"] = 1
        finally:
            sub.close(0)
            ctx.term()
