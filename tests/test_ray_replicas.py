"""Engine replicas on a local Ray cluster behind one daemon (engine_core/daemon/ray_replicas.py): sessions spread over
the replicas and stick to theirs; a replica killed mid-reply -> its session is reopened on the other one, the client
is told (`moved`; the cut reply ends with "error: replica lost") and its stream goes on (pts, seq, utterance ids),
while the other session's stream is untouched."""

from __future__ import annotations

import os
import signal
import time

import pytest

ray = pytest.importorskip("ray")

from engine_core.daemon.ray_replicas import RemoteEngine  # noqa: E402
from engine_core.daemon.server import Daemon, DaemonConfig  # noqa: E402
from sdk.client import Client  # noqa: E402

from test_daemon_helpers import Stream, check_continuity, collect_until, is_end  # noqa: E402

pytestmark = pytest.mark.process

LONG = " ".join(["This reply goes on while its replica is taken away."] * 6)


@pytest.fixture(scope="module")
def served():
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False, namespace="xstreamer-test")
    engine = RemoteEngine(None, "tiny", replicas=2, replica_cpus=1.0, respawn=False)
    daemon = Daemon(engine, DaemonConfig(control_port=0, media_port=0, model_name="tiny"))
    daemon.start()
    try:
        yield daemon, engine
    finally:
        daemon.stop()
        engine.shutdown()
        ray.shutdown()


def test_a_replica_killed_mid_reply_moves_its_session_and_the_stream_goes_on(served):
    daemon, engine = served
    with Client(daemon.control_endpoint, timeout=60) as client, client.open_session() as a, \
            client.open_session() as b:
        assert sorted(h.sessions for h in engine.replicas) == [1, 1]          # spread: one session each
        sa = daemon.workers[a.id].session
        sb = daemon.workers[b.id].session
        assert sa.replica is not sb.replica
        st_a = collect_until(a, lambda p: p.type == "video")
        st_b = collect_until(b, lambda p: p.type == "video")
        utt = a.speak(LONG)
        b.speak(LONG)
        collect_until(a, lambda p: p.type == "audio" and p.utt == utt, stream=st_a)    # a's reply is on air
        victim = sa.replica
        os.kill(victim.info["pid"], signal.SIGKILL)                               # the replica's process dies
        killed = time.monotonic()
        collect_until(a, lambda p: p.type == "event" and p.event == "moved", stream=st_a)
        collect_until(a, lambda p: p.type == "video", stream=st_a)
        back_ms = (time.monotonic() - killed) * 1e3
        print(f"\nmedia again {back_ms:.0f} ms after the replica was killed")
        assert sa.replica is not victim and sa.moves == 1 and not victim.alive
        collect_until(a, is_end(utt), stream=st_a)
        ends = [p for p in st_a.of("event") if p.event == "utterance_end" and p.utt == utt]
        assert [p.reason for p in ends] == ["error: replica lost"]
        moved = [p for p in st_a.of("event") if p.event == "moved"]
        assert len(moved) == 1 and "replica lost" in moved[0].reason
        utt2 = a.speak("still here after the move")
        assert utt2 > utt                                                          # utterance ids go on
        collect_until(a, is_end(utt2), stream=st_a)
        check_continuity(st_a, first_seq=0)                                       # pts and seq run on
        said = "".join(p.text for p in st_a.of("text") if p.utt == utt2)
        assert said.split() == "still here after the move".split()
        collect_until(b, lambda p: p.type == "video", stream=st_b)
        assert not [p for p in st_b.of("event") if p.event == "moved"] and sb.moves == 0
        check_continuity(st_b, first_seq=0)
