"""Engine replicas on a local Ray cluster on loopback behind one daemon (engine_core/daemon/ray_replicas.py):
`xstreamer serve --ray ADDRESS` against a `ray start` cluster reports its replicas and admits by its capacity;
sessions spread over the replicas and stick to theirs; a replica killed mid-reply -> its session is reopened on the
other one, the client is told (`moved`; the cut reply ends with "error: replica lost") and its stream goes on (pts,
seq, utterance ids), while the other session's stream is untouched; the daemon's capacity shrinks to the live
replicas' share."""

from __future__ import annotations

import importlib.util
import os
import signal
import time

import pytest

if importlib.util.find_spec("ray") is None:
    pytest.skip("ray is not installed (pip install -e .[ray]; scripts/setup.sh --test does)", allow_module_level=True)
# (ray itself is imported once this process has the cluster's token in its environment: Ray reads it at import)

from engine_core.daemon.ray_replicas import RemoteEngine  # noqa: E402
from engine_core.daemon.server import Daemon, DaemonConfig  # noqa: E402
from sdk.client import Client  # noqa: E402

from test_daemon_helpers import check_continuity, collect_until, is_end  # noqa: E402

pytestmark = pytest.mark.process

LONG = " ".join(["This reply goes on while its replica is taken away."] * 6)


@pytest.fixture(scope="module")
def head():
    """A Ray cluster on loopback (`ray start --head`), for the whole module."""
    from engine_core.daemon.ray_head import RayHead

    with RayHead(cpus=4) as h:
        yield h


def test_serve_ray_reports_its_replicas_and_admits_by_capacity(head):
    from sdk.errors import BusyError
    from sdk.launcher import DaemonProcess

    daemon = DaemonProcess(model="tiny", ready_timeout=240, env=head.env(), extra_args=[
        "--ray", head.address, "--replicas", "2", "--capacity", "2"]).start()
    try:
        with Client(daemon.control, timeout=60) as client:
            empty = client.load()
            assert (empty.replicas, empty.capacity, empty.capacity_source, empty.sessions, empty.accepting) == \
                (2, 2, "configured", 0, True)
            a, b = client.open_session(), client.open_session()
            with pytest.raises(BusyError) as refused:
                client.open_session()
            assert "holds 2 sessions in real time" in refused.value.message
            full = client.load()
            assert full.sessions == 2 and not full.accepting and full.replicas == 2
            utt = a.speak("served by a replica")
            st = collect_until(a, is_end(utt))
            assert st.text(utt).split() == ["served", "by", "a", "replica"]
            assert st.of("video") and [p for p in st.of("audio") if p.utt == utt]
            b.close()
            a.close()
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def served(head):
    saved = dict(os.environ)
    os.environ.update(head.env())                                   # (this process joins the throwaway cluster too)
    import ray

    ray.init(address=head.address, log_to_driver=False, namespace="xstreamer-test")
    engine = RemoteEngine(None, "tiny", replicas=2, replica_cpus=1.0, respawn=False)
    daemon = Daemon(engine, DaemonConfig(control_port=0, media_port=0, model_name="tiny"))
    daemon.start()
    try:
        yield daemon, engine
    finally:
        daemon.stop()
        engine.shutdown()
        ray.shutdown()
        os.environ.clear()
        os.environ.update(saved)


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
        assert engine.replica_counts() == (1, 2)                                  # (respawn off here)
        load = client.load()
        assert load.replicas == 1 and load.sessions == 2
