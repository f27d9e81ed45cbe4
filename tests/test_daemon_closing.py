"""A session the daemon is closing is gone for its client at once: between the close (or the timeout) and the
worker's exit, while the engine session is still being released, a ping naming it answers unknown_session and
the pong's count leaves it out (the worker publishes session_closed before it releases the engine session)."""

from __future__ import annotations

import threading

import pytest

from engine_core.daemon.server import Daemon, DaemonConfig
from engine_core.engine import Engine
from sdk.protocol import ErrorCode
from sdk.protocol.messages import Close, Hello, Open, Ping
from test_daemon_helpers import RawControl

pytestmark = [pytest.mark.engine, pytest.mark.process]


class _SlowRelease:
    """An engine whose sessions' close() waits until `release` is set (a GPU session freeing its caches,
    say)."""

    def __init__(self, engine):
        self.engine, self.release, self.closing = engine, threading.Event(), threading.Event()

    def open_session(self, **kw):
        session = self.engine.open_session(**kw)
        close = session.close

        def slow_close() -> None:
            self.closing.set()
            self.release.wait(30)
            close()
        session.close = slow_close
        return session


@pytest.fixture()
def slow_daemon():
    engine = _SlowRelease(Engine.load("tiny"))
    daemon = Daemon(engine, DaemonConfig(model_name="tiny", control_port=0, media_port=0))
    daemon.start()
    try:
        yield daemon, engine
    finally:
        engine.release.set()
        daemon.stop()


def test_a_closing_session_is_unknown_to_ping_before_its_worker_exits(slow_daemon):
    daemon, engine = slow_daemon
    raw = RawControl(daemon.control_endpoint)
    try:
        assert raw.call(Hello(req=1, versions=[2])).type == "welcome"
        a, b = raw.call(Open(req=2), timeout=60), raw.call(Open(req=3), timeout=60)
        assert raw.call(Ping(req=4, session=a.session)).sessions == 2
        assert raw.call(Close(req=5, session=a.session)).type == "ack"
        assert engine.closing.wait(10)                 # the worker is inside the engine session's close()
        assert a.session in daemon.workers             # ... so it has not exited yet
        gone = raw.call(Ping(req=6, session=a.session))
        assert gone.type == "error" and gone.code is ErrorCode.UNKNOWN_SESSION
        kept = raw.call(Ping(req=7, session=b.session))
        assert kept.type == "pong" and kept.sessions == 1
    finally:
        raw.close()
