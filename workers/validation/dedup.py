"""Exact, deterministic duplicate detection over an event-time horizon.

Event ids are reduced to 64-bit BLAKE2b fingerprints (deterministic across processes,
unlike ``hash()``) and bucketed by the UTC day of ``event_time``; a redelivered event
carries the same id and time, so it lands in the same bucket. The bucket of the
watermark's day is a set (O(1)); older ones are sealed into sorted ``array('q')`` (8 bytes per id,
binary search). Buckets older than ``horizon_ms`` behind the max event time seen are
evicted; past ``max_entries`` the oldest days are evicted first. Collision odds for
50k ids: ~1e-10.
"""

from __future__ import annotations

import base64
import sys
from array import array
from bisect import bisect_left
from hashlib import blake2b
from typing import Any

DAY_MS = 86_400_000


def fingerprint(event_id: str) -> int:
    """Signed 64-bit BLAKE2b fingerprint of an event id."""
    return int.from_bytes(blake2b(event_id.encode(), digest_size=8).digest(), "big", signed=True)


class DedupWindow:
    """Per-patient set of seen event ids, bounded by event-time horizon and size."""

    __slots__ = (
        "_encoded",
        "_open",
        "_sealed",
        "_size",
        "_wm_day",
        "horizon_ms",
        "max_entries",
        "watermark",
    )

    def __init__(self, *, horizon_ms: int = 31 * DAY_MS, max_entries: int = 250_000) -> None:
        self.horizon_ms = horizon_ms
        self.max_entries = max_entries
        self.watermark = -(2**62)
        self._wm_day = self.watermark // DAY_MS
        self._open: dict[int, set[int]] = {}
        self._sealed: dict[int, array[int]] = {}
        self._encoded: dict[int, str] = {}  # serialised sealed buckets, until they change
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, event_id: str, event_time_ms: int) -> bool:
        """Record the id; return False if it was already seen (a duplicate)."""
        if event_time_ms < self.watermark - self.horizon_ms:
            return True  # beyond the horizon: unknowable here; the caller rejects it as late
        fp = fingerprint(event_id)
        day = event_time_ms // DAY_MS
        bucket = self._open.get(day)
        if bucket is not None:
            if fp in bucket:
                return False
            bucket.add(fp)
        else:
            sealed = self._sealed.get(day)
            if sealed is None:
                self._open[day] = {fp}
            else:
                i = bisect_left(sealed, fp)
                if i < len(sealed) and sealed[i] == fp:
                    return False
                sealed.insert(i, fp)
                self._encoded.pop(day, None)
        self._size += 1
        if event_time_ms > self.watermark:
            self.watermark = event_time_ms
            if day != self._wm_day:
                self._wm_day = day
                self._maintain()
        if self._size > self.max_entries:
            self._evict_oldest()
        return True

    def _maintain(self) -> None:
        """Seal buckets before the watermark day, evict those beyond the horizon."""
        oldest = (self.watermark - self.horizon_ms) // DAY_MS
        for day in [d for d in self._open if d < self._wm_day]:
            self._sealed[day] = array("q", sorted(self._open.pop(day)))
        for store in (self._open, self._sealed):
            for day in [d for d in store if d < oldest]:
                self._size -= len(store.pop(day))
                self._encoded.pop(day, None)

    def _evict_oldest(self) -> None:
        while self._size > self.max_entries:
            day = min(list(self._open) + list(self._sealed))
            bucket = self._sealed.pop(day, None)
            self._encoded.pop(day, None)
            if bucket is None:
                self._size -= len(self._open.pop(day))
            else:
                self._size -= len(bucket)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state: day -> base64 of the sorted little-endian int64 fingerprints.

        Sealed days rarely change, so their encoding is cached until a late event lands in them.
        """
        buckets = {str(d): _encode(array("q", sorted(b))) for d, b in self._open.items()}
        for day, bucket in self._sealed.items():
            encoded = self._encoded.get(day)
            if encoded is None:
                encoded = self._encoded[day] = _encode(bucket)
            buckets[str(day)] = encoded
        return {
            "horizon_ms": self.horizon_ms,
            "max_entries": self.max_entries,
            "watermark": self.watermark,
            "buckets": buckets,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DedupWindow:
        """Inverse of :meth:`to_dict`."""
        self = cls(horizon_ms=data["horizon_ms"], max_entries=data["max_entries"])
        self.watermark = data["watermark"]
        self._wm_day = self.watermark // DAY_MS
        for key, encoded in data["buckets"].items():
            day = int(key)
            fps = _decode(encoded)
            if day >= self._wm_day:
                self._open[day] = set(fps)
            else:
                self._sealed[day] = fps
                self._encoded[day] = encoded
            self._size += len(fps)
        return self


def _encode(fingerprints: array[int]) -> str:
    if sys.byteorder == "big":
        fingerprints = array("q", fingerprints)
        fingerprints.byteswap()
    return base64.b64encode(fingerprints.tobytes()).decode("ascii")


def _decode(encoded: str) -> array[int]:
    fingerprints = array("q")
    fingerprints.frombytes(base64.b64decode(encoded))
    if sys.byteorder == "big":
        fingerprints.byteswap()
    return fingerprints
