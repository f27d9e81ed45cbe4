"""What the daemon knows of each client connection (by its ROUTER routing id) and the per-client limits."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sdk.protocol.constants import CLIENT_BURST, CLIENT_RATE


class TokenBucket:
    """Requests a second on average (`rate`) with bursts of up to `burst`."""

    def __init__(self, rate: float = CLIENT_RATE, burst: int = CLIENT_BURST):
        self.rate = float(rate)
        self.burst = float(burst)
        self.tokens = float(burst)
        self.t = time.monotonic()

    def take(self, now: float | None = None) -> bool:
        """Spend one token; False (and nothing spent) when none is left."""
        now = time.monotonic() if now is None else now
        self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
        self.t = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


@dataclass
class Client:
    """One connection: welcomed after a good hello; `last_seen` keeps its sessions alive; `bucket` limits its
    rate."""

    bucket: TokenBucket
    welcomed: bool = False
    last_seen: float = field(default_factory=time.monotonic)
    refused: int = 0          # requests refused for the rate
