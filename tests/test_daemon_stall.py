"""A stalled subscriber (a SUB that never reads, tiny buffers) must not delay another client's stream."""

from __future__ import annotations

import time

import pytest
import zmq

from sdk.client import Client
from sdk.protocol import ErrorCode
from sdk.protocol.messages import Hello, Open, Ping
from sdk.launcher import DaemonProcess
from sdk.protocol import decode_media
from test_daemon_helpers import RawControl, Stream, check_continuity, collect_until, is_end

STALL_S = 6.0


@pytest.fixture(scope="module")
def daemon():
    with DaemonProcess(model="tiny", extra_args=["--sndhwm", "50", "--session-timeout", "3"]) as d:
        yield d


def test_silent_client_loses_its_session_heartbeating_one_keeps_it(daemon):
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    raw = RawControl(daemon.control)
    try:
        assert raw.call(Hello(req=1)).type == "welcome"
        opened = raw.call(Open(req=2))
        sub.connect(daemon.media)
        sub.setsockopt(zmq.SUBSCRIBE, opened.topic.encode())
        with Client(daemon.control) as client, client.open_session() as kept:
            t0 = time.monotonic()
            closed = None
            while closed is None and time.monotonic() - t0 < 30:    # the raw client now stays silent
                if sub.poll(1000):
                    pkt, _ = decode_media(sub.recv_multipart())
                    if pkt.type == "event" and pkt.event == "session_closed":
                        closed = pkt
            assert closed is not None and closed.reason == "timeout"
            assert time.monotonic() - t0 >= 2.0
            assert raw.call(Ping(req=3, session=opened.session)).code is ErrorCode.UNKNOWN_SESSION
            assert client.ping(session=kept.id).type == "pong"    # heartbeats kept this one alive
    finally:
        raw.close()
        sub.close(0)
        ctx.term()


def test_stalled_subscriber_does_not_delay_another_client(daemon):
    with Client(daemon.control) as client:
        ctx = zmq.Context()
        stalled = ctx.socket(zmq.SUB)
        stalled.setsockopt(zmq.RCVHWM, 1)
        stalled.setsockopt(zmq.RCVBUF, 4096)
        stalled.connect(client.media_endpoint)
        stalled.setsockopt(zmq.SUBSCRIBE, b"")      # everything, and it never reads
        try:
            s = client.open_session()
            text = " ".join(["Streaming goes on while somebody else sleeps."] * 3)
            utt = s.speak(text)
            st = Stream()
            t0 = time.monotonic()
            while time.monotonic() - t0 < STALL_S:
                collect_until(s, lambda p: True, stream=st)
            st = collect_until(s, is_end(utt), stream=st, timeout=120)
            check_continuity(st, first_seq=0)          # the healthy client lost nothing
            assert st.text(utt) == text
            # Arrival vs pts: how much later than its pts (relative to the best packet) each chunk arrived.
            media = [(p.pts / 22050.0, t) for p, _, t in st.packets if p.type == "audio"]
            lateness = [t - pts for pts, t in media]
            gaps = [b[1] - a[1] for a, b in zip(media, media[1:])]
            print(f"\nhealthy client: {len(media)} audio packets, max inter-arrival gap {max(gaps) * 1000:.0f} ms, "
                  f"lateness spread {(max(lateness) - min(lateness)) * 1000:.0f} ms")
            # A publisher that waited for the stalled subscriber would show a gap of the whole stall.
            assert max(gaps) < STALL_S / 2
            # When generation kept up with real time (no drift of arrival vs pts between the first and the
            # last second of the reply), no packet may arrive more than one chunk (200 ms on tiny) later
            # than the stream's best; on an overloaded machine generation itself lags, and only the bound
            # above is meaningful.
            n = max(1, len(lateness) // 10)
            drift = sum(lateness[-n:]) / n - sum(lateness[:n]) / n
            if drift < 0.1:
                assert max(lateness) - min(lateness) <= 0.2 + 0.1, "a packet was delayed by more than a chunk"
            else:
                print(f"generation ran slower than real time (drift {drift * 1000:.0f} ms): chunk bound not checked")
            # The stalled subscriber really was saturated: reading it now shows dropped packets (seq gaps).
            last_seq = st.packets[-1][0].seq
            got: list[int] = []
            t1 = time.monotonic()
            while time.monotonic() - t1 < 10 and stalled.poll(500):   # what it holds, up to the end seen above
                pkt, _ = decode_media(stalled.recv_multipart())
                if pkt.session == s.id:
                    got.append(pkt.seq)
                    if pkt.seq >= last_seq:
                        break
            missing = (got[-1] - got[0] + 1 - len(got)) if got else 0
            print(f"stalled subscriber: received {len(got)} packets of the session, {missing} dropped for it")
            assert missing > 0 or len(got) < len(st.packets) // 2
        finally:
            stalled.close(0)
            ctx.term()
