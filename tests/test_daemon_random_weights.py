"""`xstreamer serve --random-weights` (timing runs of the paper shape, whose weights are not public): the flag
reaches `Engine.load` and the daemon serves as usual; on the small presets, whose weights ship, it changes nothing."""

from __future__ import annotations

import pytest

from sdk.client import Client
from sdk.launcher import DaemonProcess
from test_daemon_helpers import collect_until

pytestmark = pytest.mark.process


def test_the_daemon_serves_with_random_weights_asked_for():
    with DaemonProcess(model="tiny", extra_args=["--random-weights"]) as d:
        with Client(d.control) as client, client.open_session() as s:
            utt = s.speak("timing only")
            st = collect_until(s, lambda p: p.type == "event" and p.event == "utterance_end" and p.utt == utt)
            assert any(p.type == "audio" and p.utt == utt for p, _, _ in st.packets)
            assert any(p.type == "video" for p, _, _ in st.packets)
    assert d.model == "tiny"
