"""Per-token rate limiting (RELIABILITY 33): a token bucket per token name.

Each token may make ``burst`` requests at once and ``rate`` a second after that; beyond, a
request is refused with 429 and a Retry-After saying when one is allowed again, before it
reaches the writer, so a flood from one client leaves the ledger and the other clients alone.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from radledger.errors import RateLimited

DEFAULT_RATE = 50.0  # requests a second, per token
DEFAULT_BURST = 100


@dataclass
class TokenBuckets:
    """One bucket per key (a token's name); thread-safe."""

    rate: float = DEFAULT_RATE
    burst: int = DEFAULT_BURST
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # tokens, at time
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, key: str) -> None:
        """Spend one request of ``key``'s bucket. Raises RateLimited if it is empty."""
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                wait = max(1, math.ceil((1.0 - tokens) / self.rate))
                raise RateLimited(f"too many requests for token {key!r:.64}: at most "
                                  f"{self.rate:g} a second (bursts of {self.burst})", wait)
            self._buckets[key] = (tokens - 1.0, now)
