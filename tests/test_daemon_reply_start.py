"""A reply out of silence is not queued behind the idle media the daemon generated ahead: the Outbox drops
queued idle packets (never anything else) and the reply takes their place on a continuous pts line; through a
live daemon with a long lead, the reply's first packet follows the speak call after a few idle packets, not
after the whole lead."""

from __future__ import annotations

import time

import pytest

from engine_core.daemon.media import Outbox
from sdk.client import Client
from sdk.launcher import DaemonProcess
from sdk.protocol.constants import SAMPLES_PER_FRAME as SPF
from sdk.protocol.messages import AudioPacket, EventPacket, VideoPacket
from test_daemon_helpers import check_continuity, collect_until

LEAD_MS = 3000.0


def _chunk(utt: int, frames: int = 2) -> tuple[list, int]:
    packets = [(i * SPF, kind(session="s", utt=utt, seq=0, pts=i * SPF), b"x")
               for i in range(frames) for kind in (AudioPacket, VideoPacket)]
    return packets, frames * SPF


def test_skip_idle_drops_only_idle_media_and_keeps_pts_and_the_clock_continuous():
    box = Outbox("s")
    for _ in range(3):
        box.put_chunk(*_chunk(0))                       # 3 idle chunks queued ahead
    first = box.items[0]
    assert box.skip_idle() == 12 and not box.items
    box.put_chunk(*_chunk(7))                           # the reply takes the first dropped packet's place
    assert (box.items[0].pts, box.items[0].due) == (first.pts, first.due)
    box.put_chunk(*_chunk(0))
    assert box.skip_idle() == 0 and len(box.items) == 8    # the reply's media is never dropped
    box2 = Outbox("t")
    box2.put_chunk(*_chunk(0))
    interrupted = EventPacket(session="t", utt=0, seq=0, pts=0, event="interrupted")
    box2.put_chunk([(0, interrupted, None)], SPF)                                  # an event rides on idle
    assert box2.skip_idle() == 0 and len(box2.items) == 5


@pytest.fixture(scope="module")
def daemon():
    with DaemonProcess(model="tiny", extra_args=["--lead-ms", str(LEAD_MS)]) as d:
        yield d


def test_a_reply_out_of_silence_is_not_queued_behind_the_lead(daemon):
    with Client(daemon.control) as client, client.open_session() as s:
        st = collect_until(s, lambda p: p.type == "video")
        settle = time.monotonic() + 2.0                  # the worker fills its 3 s lead with idle media
        collect_until(s, lambda p: time.monotonic() > settle, stream=st)
        n_before = len(st.packets)
        utt = s.speak("the answer comes at once")
        collect_until(s, lambda p: p.type == "audio" and p.utt == utt, stream=st)
        between = [p for p, _, _ in st.packets[n_before:] if p.type == "audio" and p.utt == 0]
        # 3 s of queued idle audio would be 75 packets; what is left is what went out while the reply was made
        assert len(between) < 25, len(between)
        collect_until(s, lambda p: p.type == "event" and p.event == "utterance_end" and p.utt == utt, stream=st)
        check_continuity(st, first_seq=0)               # no pts jump and no seq gap on the wire
