"""Faults end cleanly (issue #23, item 5), with a real daemon killed (-9) mid-reply and restarted on the same
ports: the SDK ends the reply that was in flight with a `lost` event (the documented receive loop stops at it
instead of waiting forever), a call made during the outage fails with its own code (`unavailable`, not
`internal`), and the re-opened session's utterance ids go on after the old ones (no collision)."""

from __future__ import annotations

import time

import pytest

from sdk.client import Client
from sdk.launcher import DaemonProcess

pytestmark = pytest.mark.process

END = ("utterance_end", "interrupted", "lost")     # sdk.protocol.END_EVENTS in protocol v2


def _ports(d: DaemonProcess) -> dict:
    return {"control_port": int(d.control.rsplit(":", 1)[1]), "media_port": int(d.media.rsplit(":", 1)[1])}


def test_a_restart_ends_the_reply_in_flight_and_utterance_ids_go_on():
    d1 = DaemonProcess(model="tiny").start()
    d2 = None
    client = Client(d1.control, client_name="restart-test", timeout=2.0)
    try:
        client.connect()
        s = client.open_session()
        utt = s.speak(" ".join(["This reply is cut off by a crash of the daemon."] * 6))
        spoken = 0
        for pkt, _ in s.packets(timeout=30):
            spoken += pkt.type == "audio" and pkt.utt == utt
            if spoken >= 5:
                break
        d1.proc.kill()                                   # kill -9, mid-reply
        d1.proc.wait(10)
        t_kill = time.monotonic()
        with pytest.raises(TimeoutError) as info:        # a call during the outage
            s.speak("Anyone there?")
        assert info.value.code.value == "unavailable", info.value
        t_error = time.monotonic()
        d2 = DaemonProcess(model="tiny", **_ports(d1)).start()
        t_ready = time.monotonic()
        ended = None
        for pkt, _ in s.packets(timeout=60):             # the documented loop, waiting for `utt` to end
            if pkt.type == "event" and pkt.utt == utt and pkt.event in END:
                ended = pkt
                break
        assert ended is not None and ended.event == "lost", ended
        t_lost = time.monotonic()
        assert client.reconnects >= 1
        utt2 = s.speak("Back again.")
        assert utt2 > utt, (utt, utt2)                   # ids continue after the old session's
        print(f"\nrestart: the outage call failed [{info.value.code.value}] {t_error - t_kill:.1f} s after "
              f"the kill; utterance {utt} ended `lost` {t_lost - t_ready:.1f} s after the new daemon's ready "
              f"line; the next utterance is {utt2}; reconnects {client.reconnects}")
        for pkt, _ in s.packets(timeout=60):
            if pkt.type == "event" and pkt.utt == utt2 and pkt.event in END:
                assert pkt.event == "utterance_end"
                break
    finally:
        client.close()
        for d in (d1, d2):
            if d is not None:
                d.stop()
