"""Per-token request rate: a token bucket for each bearer token, kept by this replica.

A token holds up to ``burst`` requests and regains ``per_minute`` of them a minute; a request
finding the bucket empty is told how long to wait (``429`` with ``Retry-After``). Buckets are
keyed by ``sha256(token)`` (never the token) and only authenticated tokens get one, so made-up
tokens cannot fill the table; it is still bounded (``max_keys``: full buckets go first, then
the least recently used). With N replicas a token may make up to N times the rate.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    """Token buckets by key; :meth:`acquire` answers ``0.0`` (go) or the seconds to wait."""

    def __init__(
        self,
        *,
        per_minute: float,
        burst: int,
        monotonic: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if burst < 1 or per_minute < 0 or max_keys < 1:
            raise ValueError("burst and max_keys must be >= 1, per_minute >= 0")
        self.per_second = per_minute / 60.0
        self.burst = burst
        self._monotonic = monotonic
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (level, at)

    @property
    def enabled(self) -> bool:
        return self.per_second > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def acquire(self, token: str) -> float:
        if not self.enabled:
            return 0.0
        key = hashlib.sha256(token.encode("utf-8")).hexdigest()
        now = self._monotonic()
        level = self._level(key, now)
        if level < 1.0:
            self._buckets[key] = (level, now)
            self._buckets.move_to_end(key)
            return (1.0 - level) / self.per_second
        self._buckets[key] = (level - 1.0, now)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self._max_keys:
            self._prune(now)
        return 0.0

    def _level(self, key: str, now: float) -> float:
        level, at = self._buckets.get(key, (float(self.burst), now))
        return min(float(self.burst), level + (now - at) * self.per_second)

    def _prune(self, now: float) -> None:
        for key in [k for k in self._buckets if self._level(k, now) >= self.burst]:
            del self._buckets[key]  # a full bucket is the same as none
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)


def retry_after(wait_s: float) -> str:
    """``Retry-After`` in whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))
