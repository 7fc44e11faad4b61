"""Idempotent submissions: deterministic event ids plus a ledger of claimed and answered ones.

The event id is ``uuid5(INTAKE_NAMESPACE, "<patient>:<submission_id>")``, so a retry yields the
same id on any replica and downstream consumers drop a duplicate. The ledger lets every
replica answer a repeat with ``200`` and the first answer, and spot a reused id with a
different body (``409``):

1. ``claim`` records ``(event id, body fingerprint)`` before the event is produced, or returns
   the entry already there;
2. after Kafka's ack, ``acknowledge`` stores the answer; a failed delivery ``release``s the
   claim so that nothing is remembered for it.

A claim left pending by a replica that died mid-delivery is taken over by a retry with the same
body (producing again is safe: same event id). Production keeps the ledger in MongoDB
(:class:`MongoSubmissionLedger`), where every replica and every restart sees it; the
in-memory LRU (:class:`MemorySubmissionLedger`) serves tests and single-process development.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

log = structlog.get_logger(__name__)
INTAKE_NAMESPACE = uuid.UUID("3b0f7f86-4f4e-5b55-9a43-8c1f2d6e9a21")
SUBMISSIONS_COLLECTION = "intake_submissions"
Key = tuple[str, str]  # (patient pseudonym, submission_id)


def submission_event_id(patient_id: str, submission_id: str) -> str:
    """Deterministic event id of one patient's submission."""
    return str(uuid.uuid5(INTAKE_NAMESPACE, f"{patient_id}:{submission_id}"))


def body_fingerprint(kind: str, body: dict[str, Any]) -> str:
    """Digest of the validated request (canonical JSON), to tell a retry from a conflict."""
    canonical = json.dumps([kind, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """A ledger entry: the body's fingerprint and, once Kafka acknowledged it, the answer."""

    fingerprint: str
    response: dict[str, Any] | None


class SubmissionLedger(Protocol):
    """Where claimed and answered submissions are kept (see the module docstring)."""

    async def lookup(self, key: Key) -> Acknowledged | None: ...

    async def claim(self, key: Key, fingerprint: str, now: dt.datetime) -> Acknowledged | None: ...

    async def acknowledge(
        self, key: Key, fingerprint: str, response: dict[str, Any], now: dt.datetime
    ) -> None:
        ...

    async def release(self, key: Key, fingerprint: str) -> None: ...


class KeyedLocks:
    """``guard(key)`` serialises one replica's concurrent requests for one key, so that a
    duplicate arriving while the first is in flight waits and is then answered 200."""

    def __init__(self) -> None:
        self._locks: dict[Key, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def guard(self, key: Key) -> AsyncIterator[None]:
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


class MemorySubmissionLedger:
    """The ledger as a per-process LRU of ``capacity`` entries (lost on restart)."""

    def __init__(self, *, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._entries: OrderedDict[Key, Acknowledged] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Key) -> Acknowledged | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: Key, entry: Acknowledged) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    async def lookup(self, key: Key) -> Acknowledged | None:
        return self.get(key)

    async def claim(self, key: Key, fingerprint: str, now: dt.datetime) -> Acknowledged | None:
        seen = self.get(key)
        if seen is None:
            self.put(key, Acknowledged(fingerprint, None))
        return seen

    async def acknowledge(
        self, key: Key, fingerprint: str, response: dict[str, Any], now: dt.datetime
    ) -> None:
        self.put(key, Acknowledged(fingerprint, response))

    async def release(self, key: Key, fingerprint: str) -> None:
        if self._entries.get(key) == Acknowledged(fingerprint, None):
            del self._entries[key]


class MongoSubmissionLedger:
    """The ledger in the ``intake_submissions`` collection, shared by every replica.

    A document per submission: ``_id`` the submission's event id (``_id`` is MongoDB's unique
    index, so of two replicas claiming at once exactly one insert succeeds), ``patient_id``,
    ``fingerprint``, ``response`` (``None`` while pending) and ``stored_at``. FerretDB has no
    TTL indexes, so :meth:`prune` deletes entries older than ``retention`` (at least the
    lateness horizon: a retry of anything the intake still accepts finds its entry).
    """

    def __init__(self, *, db: AsyncDatabase[dict[str, Any]], retention: dt.timedelta) -> None:
        self._collection = db[SUBMISSIONS_COLLECTION]
        self.retention = retention

    async def ensure_indexes(self) -> None:
        await self._collection.create_index([("stored_at", ASCENDING)], name="stored_at")

    async def lookup(self, key: Key) -> Acknowledged | None:
        found = await self._collection.find_one({"_id": submission_event_id(*key)})
        return None if found is None else Acknowledged(found["fingerprint"], found.get("response"))

    async def claim(self, key: Key, fingerprint: str, now: dt.datetime) -> Acknowledged | None:
        doc_id = submission_event_id(*key)
        for _ in range(3):  # a claim pruned or released between insert and read: claim again
            try:
                await self._collection.insert_one(
                    {"_id": doc_id, "patient_id": key[0], "fingerprint": fingerprint,
                     "response": None, "stored_at": now}
                )
                return None
            except DuplicateKeyError:
                found = await self._collection.find_one({"_id": doc_id})
            if found is not None:
                return Acknowledged(found["fingerprint"], found.get("response"))
        raise RuntimeError("submission claim kept vanishing")  # pragma: no cover

    async def acknowledge(
        self, key: Key, fingerprint: str, response: dict[str, Any], now: dt.datetime
    ) -> None:
        await self._collection.update_one(
            {"_id": submission_event_id(*key), "fingerprint": fingerprint},
            {"$set": {"response": response, "acknowledged_at": now}},
        )

    async def release(self, key: Key, fingerprint: str) -> None:
        await self._collection.delete_one(
            {"_id": submission_event_id(*key), "fingerprint": fingerprint, "response": None}
        )

    async def prune(self, now: dt.datetime) -> int:
        """Delete entries stored before ``now - retention``; how many."""
        result = await self._collection.delete_many({"stored_at": {"$lt": now - self.retention}})
        return result.deleted_count


async def prune_periodically(
    ledger: MongoSubmissionLedger, *, interval_s: float, clock: Callable[[], dt.datetime]
) -> None:
    """Prune now and then every ``interval_s`` until cancelled; a failed round is logged."""
    while True:
        try:
            deleted = await ledger.prune(clock())
            log.info("intake_submissions_pruned", deleted=deleted, retention_days=ledger.retention.days)
        except Exception as exc:
            log.warning("intake_submissions_prune_failed", error_class=type(exc).__name__)
        await asyncio.sleep(interval_s)
