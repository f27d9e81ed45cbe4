"""The Python SDK against a live daemon: asyncio client, automatic reconnect after a daemon restart, and the
SDK importing without torch."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sdk.aio import AsyncClient
from sdk.client import Client
from sdk.errors import InvalidInputError
from sdk.launcher import DaemonProcess
from sdk.protocol import ErrorCode
from test_daemon_helpers import check_continuity, collect_until, is_end

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sdk_imports_without_torch():
    code = ("import sys; import sdk.client, sdk.aio, sdk.jitter, sdk.recorder, sdk.launcher, sdk.errors; "
            "assert 'torch' not in sys.modules and 'engine_core' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_reconnect_after_daemon_restart_and_asyncio_client():
    cport, mport = free_port(), free_port()
    args = dict(model="tiny", control_port=cport, media_port=mport)
    calls: list[int] = []
    d1 = DaemonProcess(**args).start()
    try:
        client = Client(d1.control, client_name="reconnect-test", timeout=3.0,
                        on_reconnect=lambda c: calls.append(c.reconnects))
        client.connect()
        s = client.open_session()
        old_id = s.id
        utt = s.speak("Before the restart.")
        assert collect_until(s, is_end(utt)).text(utt) == "Before the restart."

        # --- user audio: PCM16 chunks, then final -> transcript (user text) and the reply
        pcm = (np.sin(np.arange(22050) * 0.1) * 5000).astype(np.int16)       # 1.0 s at 22,050 Hz
        for i in range(0, len(pcm), 4410):
            assert s.hear(pcm[i:i + 4410], 22050) is None
        reply = s.hear(np.zeros(2205, np.int16), 22050, final=True)
        assert reply > utt
        st = collect_until(s, is_end(reply))
        heard = [p.text for p in st.of("text") if p.role == "user"]
        assert heard == ["I heard 1.1 seconds of audio."]          # the toy thinker's stand-in transcript
        assert st.events(reply)[0] == ("utterance_start", reply)
        with pytest.raises(InvalidInputError) as info:
            s.hear(np.zeros(0, np.int16), 22050, final=True)          # a turn without any audio
        assert info.value.code is ErrorCode.INVALID_AUDIO

        # --- asyncio client on the same daemon, concurrently with the sync one
        async def aio_round() -> tuple[str, int, int]:
            async with AsyncClient(d1.control, client_name="aio") as ac:
                a = await ac.open_session()
                u = await a.speak("Async hello.")
                text, seqs = [], []
                async for pkt, payload in a.packets(timeout=60):
                    seqs.append(pkt.seq)
                    if pkt.type == "text":
                        text.append(pkt.text)
                    if pkt.type == "event" and pkt.event == "utterance_end" and pkt.utt == u:
                        break
                pong = await ac.ping()
                await a.close()
                assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
                return "".join(text), u, pong.sessions

        text, u, sessions = asyncio.run(aio_round())
        assert text == "Async hello." and u >= 1 and sessions == 1     # pong counts this connection's only

        # --- restart the daemon on the same ports: the client must notice, re-hello, re-open, resubscribe
        d1.stop()
        d2 = DaemonProcess(**args).start()
        try:
            deadline = time.monotonic() + 60
            while client.reconnects == 0 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert client.reconnects >= 1 and calls and calls[0] >= 1
            assert s.id != old_id and s.topic.startswith("xs2/")
            utt2 = s.speak("After the restart.")
            st = collect_until(s, is_end(utt2), timeout=90)
            new = [p for p in st.packets if p[0].session == s.id]
            assert new and all(p.session == s.id for p, _, _ in st.packets[-len(new):])
            assert st.text(utt2) == "After the restart."
            fresh = type(st)(packets=new)
            check_continuity(fresh)
        finally:
            client.close()
            d2.stop()
    finally:
        d1.stop()
