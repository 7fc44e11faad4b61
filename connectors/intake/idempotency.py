"""Idempotent submissions: deterministic event ids plus a bounded memory of acknowledged ones.

The event id is ``uuid5(INTAKE_NAMESPACE, "<patient>:<submission_id>")``, so a retry yields the
same id on any replica and downstream consumers drop the duplicate: that alone makes retries
across replicas (or after a restart) safe. The per-process LRU only lets this replica answer
a repeat with ``200`` and the original body, and spot a reused id with a different body
(``409``); a replica that has not seen the submission simply produces it again under the
same event id.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

INTAKE_NAMESPACE = uuid.UUID("3b0f7f86-4f4e-5b55-9a43-8c1f2d6e9a21")


def submission_event_id(patient_id: str, submission_id: str) -> str:
    """Deterministic event id of one patient's submission."""
    return str(uuid.uuid5(INTAKE_NAMESPACE, f"{patient_id}:{submission_id}"))


def body_fingerprint(kind: str, body: dict[str, Any]) -> str:
    """Digest of the validated request (canonical JSON), to tell a retry from a conflict."""
    canonical = json.dumps([kind, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """What was answered for an acknowledged submission."""

    fingerprint: str
    response: dict[str, Any]


class AcknowledgedSubmissions:
    """LRU of acknowledged submissions keyed by ``(patient, submission_id)``.

    ``guard(key)`` serialises concurrent requests for one key so that a duplicate arriving
    while the first is in flight waits and is then answered from memory.
    """

    def __init__(self, *, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, str], Acknowledged] = OrderedDict()
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[str, str]) -> Acknowledged | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: tuple[str, str], entry: Acknowledged) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    @asynccontextmanager
    async def guard(self, key: tuple[str, str]) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
