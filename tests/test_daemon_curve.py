"""Off loopback means CURVE (issue #23, item 2), over real sockets: `serve --host 0.0.0.0` refuses to start
without keys (or says loudly what --insecure does); `xstreamer keys` makes an ironhouse setup with which the
SDK opens a session and hears it, while a client without keys, or with keys the daemon does not list, gets
nothing on either socket.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from sdk.client import Client
from sdk.launcher import DaemonProcess
from test_daemon_helpers import collect_until, is_end

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[1]


def xs(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xstreamer", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_serving_off_loopback_without_keys_is_refused_before_the_model_loads():
    r = xs("serve", "--model", "tiny", "--host", "0.0.0.0", "--control-port", "0", "--media-port", "0")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "without keys" in r.stderr and "--insecure" in r.stderr and "ready" not in r.stdout


def test_insecure_serving_says_what_it_does():
    lines: list[str] = []
    with DaemonProcess(model="tiny", host="0.0.0.0", extra_args=["--insecure"], on_line=lines.append) as d:
        assert d.control.startswith("tcp://0.0.0.0:")
    assert any("--insecure" in ln and "anyone" in ln for ln in lines), lines[-10:]


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("keys") / "daemon"
    for args in (("init", str(d)), ("client", str(d), "studio"), ("client", str(d), "revoked")):
        r = xs("keys", *args, timeout=60)
        assert r.returncode == 0, r.stderr
    (d / "authorized" / "revoked.key").unlink()          # made, then taken off the list
    assert (d / "clients" / "studio" / "client.key_secret").stat().st_mode & 0o077 == 0
    return d


@pytest.fixture(scope="module")
def daemon(keys):
    with DaemonProcess(model="tiny", extra_args=["--keys", str(keys)]) as d:
        yield d


def test_a_client_with_keys_gets_a_session_and_its_media(daemon, keys):
    with Client(daemon.control, keys=keys / "clients" / "studio", heartbeat=False) as client:
        with client.open_session() as s:
            utt = s.speak("Encrypted and authenticated.")
            st = collect_until(s, is_end(utt))
            assert st.text(utt) == "Encrypted and authenticated." and st.of("video")
            _plain_subscriber_gets_nothing(client.media_endpoint, s.topic)


def _plain_subscriber_gets_nothing(endpoint: str, topic: str) -> None:
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    try:
        sub.connect(endpoint)
        sub.setsockopt(zmq.SUBSCRIBE, topic.encode())      # even with the right topic: no CURVE, no packets
        assert not sub.poll(1500), "a subscriber without keys received media"
    finally:
        sub.close(0)
        ctx.term()


@pytest.mark.parametrize("who", ["no keys", "unlisted keys"])
def test_a_client_the_daemon_does_not_list_gets_no_answer(daemon, keys, who):
    bundle = None if who == "no keys" else keys / "clients" / "revoked"
    client = Client(daemon.control, keys=bundle, timeout=2.0, heartbeat=False, auto_reconnect=False)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        client.connect()
    assert info.value.code.value == "unavailable" and time.monotonic() - t0 >= 1.5
    client.close()
