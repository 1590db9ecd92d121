"""In-process token buckets: enough for one API worker (``sifc serve`` runs one).

Several workers would each keep their own buckets and multiply the allowance; the account
lockout, kept in the database, holds whatever the number of workers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """``capacity`` requests at once per key, refilled at ``rate`` per second."""

    def __init__(self, capacity: float, rate: float, *, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self.capacity = capacity
        self.rate = rate
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str, cost: float = 1.0) -> float:
        """Spend ``cost`` for ``key``: 0 if allowed, else the seconds to wait (nothing spent)."""
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.rate)
            if tokens >= cost:
                self._buckets[key] = (tokens - cost, now)
                if len(self._buckets) > self.max_keys:
                    self._prune(now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (cost - tokens) / self.rate

    def wait(self, key: str, cost: float = 1.0) -> float:
        """The seconds before ``key`` could spend ``cost`` (0: now), spending nothing."""
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.rate)
            return 0.0 if tokens >= cost else (cost - tokens) / self.rate

    def _prune(self, now: float) -> None:
        # Forget the keys whose bucket has refilled: they are as if never seen.
        full = [k for k, (tokens, at) in self._buckets.items() if tokens + (now - at) * self.rate >= self.capacity]
        for key in full:
            del self._buckets[key]
