"""The twin store in MongoDB (PyMongo async): ``twins`` and ``twin_models``.

``twins`` holds one document per pseudonym: the readable twin (bands, forecasts, risk, alerts)
beside its serialized state and the last ``twin-inputs`` offset applied, written together in
one document so a restore is exact and a replayed input is fenced off. ``twin_models`` keeps
versioned snapshots (the model registry); old versions beyond ``keep_versions`` are pruned.
Both record the model version id of the build that wrote them and the twin's
progressive-validation metrics (:mod:`workers.twin.versions`); ``novamind twin versions``
lists a patient's snapshots.
Only FerretDB-1.24-compatible features are used: upserts, ``bulk_write``, plain indexes.

The fence is one conditional update per twin on MongoDB. FerretDB 1.24 (SQLite) pushes only
a bare ``{_id: ...}`` filter down to its index: any other condition scans the collection, so
a conditional write costs O(twins stored). There the store reads the stored offsets of the
batch in one query and writes by ``_id`` only the twins that are newer (measured: the
conditional write ran at 184/s with 20 twins stored and 91/s with 60; by ``_id`` 310-370/s
at both).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from bson import Binary
from pymongo import ASCENDING, DESCENDING, DeleteMany, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure, PyMongoError

from workers.pipeline.twin import TwinEntry
from workers.twin.outputs import twin_update
from workers.twin.serialize import deserialize, serialize
from workers.twin.state import summary
from workers.twin.versions import MODEL_VERSION_ID, metrics

log = structlog.get_logger(__name__)

DUPLICATE_KEY = 11000
TWINS = "twins"
MODELS = "twin_models"
INDEXES: tuple[tuple[str, list[tuple[str, int]], bool], ...] = (
    (TWINS, [("risk_level", ASCENDING), ("updated_at", DESCENDING)], False),
    (TWINS, [("updated_at", DESCENDING)], False),
    (MODELS, [("patient_id", ASCENDING), ("version", DESCENDING)], True),
)


class TwinStore:
    """Load and save twins; writes retry with capped exponential backoff until they land."""

    def __init__(
        self,
        *,
        db: AsyncDatabase[dict[str, Any]],
        keep_versions: int = 5,
        max_backoff_s: float = 10.0,
        on_retry: Callable[[str, int, str], None] | None = None,
    ) -> None:
        self.db = db
        self.keep_versions = keep_versions
        self.max_backoff_s = max_backoff_s
        self.on_retry = on_retry  # (operation, attempt, error class): e.g. raise a pipeline alert
        self._atomic_fence: bool | None = None  # known after the first write

    async def _fence_is_atomic(self) -> bool:
        """True on MongoDB; False on FerretDB, whose buildInfo names its own version."""
        if self._atomic_fence is None:
            info = await self._retry("build_info", lambda: self.db.client.admin.command("buildInfo"))
            self._atomic_fence = "ferretdbVersion" not in info
        return self._atomic_fence

    async def ensure_indexes(self) -> None:
        # One index per command: FerretDB 1.24 drops the connection when a multi-index
        # createIndexes names indexes that already exist (a second replica starting).
        for collection, keys, unique in INDEXES:
            await self._retry(
                "ensure_indexes",
                lambda c=collection, k=keys, u=unique: self.db[c].create_index(k, unique=u),
            )

    async def load(self, patient_ids: Iterable[str]) -> dict[str, TwinEntry]:
        """The stored twins of these patients (absent ones are left out)."""
        ids = sorted(set(patient_ids))
        if not ids:
            return {}

        async def fetch() -> list[dict[str, Any]]:
            cursor = self.db[TWINS].find({"_id": {"$in": ids}}, {"state": 1, "applied_offset": 1})
            return [doc async for doc in cursor]

        docs = await self._retry("load", fetch)
        return {
            doc["_id"]: TwinEntry(deserialize(bytes(doc["state"])), int(doc["applied_offset"]))
            for doc in docs
        }

    async def save(self, entries: dict[str, TwinEntry], *, now: dt.datetime) -> int:
        """Upsert the twins (and due model snapshots) in one bulk write per collection."""
        if not entries:
            return 0
        twins: list[Any] = []
        models: list[Any] = []
        for patient_id, entry in sorted(entries.items()):
            blob = serialize(entry.state)
            # Fenced: never replace a twin that has applied more inputs (a replica that lost
            # the patient in a rebalance may still be finishing its batch).
            twins.append(
                {
                    "q": {"_id": patient_id, "applied_offset": {"$lt": entry.offset}},
                    "u": twin_document(entry, blob, now=now),
                    "upsert": True,
                }
            )
            if entry.snapshot_due:
                version = entry.state.snapshots
                models.append(
                    UpdateOne(
                        {"_id": f"{patient_id}:{version}"},
                        {"$set": model_document(entry, blob, version=version, now=now)},
                        upsert=True,
                    )
                )
                if version % self.keep_versions == 0:  # prune in steps: a delete costs ~70x a write
                    models.append(
                        DeleteMany(
                            {"patient_id": patient_id, "version": {"$lte": version - self.keep_versions}}
                        )
                    )
        await self._retry("save_twins", lambda: self._write_fenced(twins))
        if models:
            await self._retry("save_models", lambda: self.db[MODELS].bulk_write(models, ordered=True))
        for entry in entries.values():
            entry.snapshot_due = False
        return len(twins)

    async def _write_fenced(self, updates: list[dict[str, Any]]) -> None:
        """One unordered ``update`` command. Issued raw: FerretDB 1.24 answers a batch whose
        only outcome is a write error without the counts PyMongo's bulk API requires."""
        if not await self._fence_is_atomic():
            updates = await self._newer_than_stored(updates)
            if not updates:
                return
        reply = await self.db.command({"update": TWINS, "updates": updates, "ordered": False})
        # A duplicate key on upsert means the stored twin is newer: leave it.
        errors = [e for e in reply.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
        if errors:
            raise OperationFailure(f"twin write failed: {errors[0].get('errmsg', '')[:200]}")

    async def _newer_than_stored(self, updates: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The updates whose twin is newer than the stored one, each filtered by ``_id`` only."""
        ids = [u["q"]["_id"] for u in updates]
        cursor = self.db[TWINS].find({"_id": {"$in": ids}}, {"applied_offset": 1})
        stored = {doc["_id"]: int(doc["applied_offset"]) async for doc in cursor}
        return [
            {**u, "q": {"_id": u["q"]["_id"]}}
            for u in updates
            if stored.get(u["q"]["_id"], -1) < u["q"]["applied_offset"]["$lt"]
        ]

    async def _retry(self, operation: str, call: Any) -> Any:
        delay = 0.1
        attempt = 0
        while True:
            try:
                return await call()
            except PyMongoError as exc:
                attempt += 1
                log.warning(
                    "mongo_retry",
                    operation=operation,
                    attempt=attempt,
                    error=type(exc).__name__,
                    detail=str(exc)[:300],
                    backoff_s=round(delay, 2),
                )
                if self.on_retry is not None:
                    self.on_retry(operation, attempt, type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)


def twin_document(entry: TwinEntry, blob: bytes, *, now: dt.datetime) -> dict[str, Any]:
    """The ``twins`` document: readable fields for queries and views, plus the exact state."""
    state = entry.state
    update = twin_update(state, event_ms=0, received_ms=0)
    readable = {
        k: _bson_safe(v)
        for k, v in update.items()
        if k not in {"event_id", "event_time", "received_time", "source", "schema_version"}
    }
    return {
        "_id": state.patient_id,
        **readable,
        "model_version": state.snapshots,
        "model_version_id": MODEL_VERSION_ID,
        "summary": _bson_safe(summary(state)),
        "state": Binary(blob),
        "state_bytes": len(blob),
        "checksum": hashlib.sha256(blob).hexdigest(),
        "applied_offset": entry.offset,
        "updated_at": now,
    }


def model_document(entry: TwinEntry, blob: bytes, *, version: int, now: dt.datetime) -> dict[str, Any]:
    state = entry.state
    return {
        "patient_id": state.patient_id,
        "version": version,
        "created_at": now,
        "samples_seen": state.days_learned,
        "model_source": state.model_source,
        "model_version_id": MODEL_VERSION_ID,
        "metrics": metrics(state),
        "checksum": hashlib.sha256(blob).hexdigest(),
        "model": Binary(blob),
    }


def _bson_safe(value: Any) -> Any:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _bson_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_bson_safe(v) for v in value]
    return value
