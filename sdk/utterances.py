"""A session handle's book of utterances: which replies are still running, and what ends them when the
daemon's session is gone (a restart): each then gets a `lost` event, so a receive loop waiting for it never
hangs, and the re-opened session numbers its utterances after every id used before (ids never repeat across a
reconnect).

Shared by the synchronous and the asyncio client (no I/O here; thread-safe).
"""

from __future__ import annotations

import threading
from typing import Any

from sdk.protocol.messages import END_EVENTS, EventPacket


class Utterances:
    """Utterance ids acknowledged by the daemon and not yet ended, and the highest id seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[int] = set()
        self._highest = 0

    def issued(self, utt: int) -> int:
        """Note an acknowledged turn's utterance id (0: none); returns it."""
        if utt:
            with self._lock:
                self._running.add(utt)
                self._highest = max(self._highest, utt)
        return utt

    def seen(self, pkt: Any) -> None:
        """Note a received media packet: an end event ends its utterance."""
        utt = getattr(pkt, "utt", 0)
        if not utt:
            return
        with self._lock:
            self._highest = max(self._highest, utt)
            if pkt.type == "event" and pkt.event in END_EVENTS:
                self._running.discard(utt)

    @property
    def running(self) -> list[int]:
        with self._lock:
            return sorted(self._running)

    @property
    def next_utt(self) -> int:
        """The first id a re-opened session should use (Open.first_utt)."""
        with self._lock:
            return self._highest + 1

    def lose_all(self, session: str, reason: str) -> list[EventPacket]:
        """End every running utterance: the `lost` events to deliver (the session is gone)."""
        with self._lock:
            lost, self._running = sorted(self._running), set()
        return [EventPacket(session=session, utt=u, seq=0, pts=0, event="lost", reason=reason) for u in lost]
