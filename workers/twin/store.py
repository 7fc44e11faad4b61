"""The twin store in MongoDB (PyMongo async): ``twins`` and ``twin_models``.

``twins`` holds one document per pseudonym: the readable twin (bands, forecasts, risk, alerts)
beside its serialized state and the last ``twin-inputs`` offset applied, written together in
one document so a restore is exact and a replayed input is fenced off. ``twin_models`` keeps
versioned snapshots (the model registry); old versions beyond ``keep_versions`` are pruned.
Both record the model version id that produced the state and the twin's
progressive-validation metrics (:mod:`workers.twin.versions`); ``novamind twin versions``
lists a patient's snapshots. A twin run beside a shadow model version keeps the shadow twin
and its paired metrics in the same document (``shadow``), so both are restored and fenced
together; ``twin_versions`` holds the deployment's promoted live version
(:mod:`workers.twin.promotion`).
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
from workers.twin.serialize import BUDGET_BYTES, deserialize, serialize
from workers.twin.shadow import PairedMetrics, Shadow
from workers.twin.state import summary
from workers.twin.twin import TwinState
from workers.twin.versions import MODEL_VERSION_ID, metrics

log = structlog.get_logger(__name__)

DUPLICATE_KEY = 11000
TWINS = "twins"
MODELS = "twin_models"
VERSIONS = "twin_versions"
DEPLOYMENT = "deployment"  # the _id of the one twin_versions document: the promoted live version
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
            cursor = self.db[TWINS].find({"_id": {"$in": ids}}, LOAD_FIELDS)
            return [doc async for doc in cursor]

        docs = await self._retry("load", fetch)
        return {doc["_id"]: entry_of(doc) for doc in docs}

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
            models.extend(self._snapshots(patient_id, entry, blob, now=now))
            if twins[-1]["u"]["total_state_bytes"] > BUDGET_BYTES:
                log.warning(
                    "twin_state_over_budget",
                    patient=patient_id,
                    bytes=twins[-1]["u"]["total_state_bytes"],
                    budget=BUDGET_BYTES,
                )
        await self._retry("save_twins", lambda: self._write_fenced(twins))
        if models:
            await self._retry("save_models", lambda: self.db[MODELS].bulk_write(models, ordered=True))
        for entry in entries.values():
            numbered = _numbered(entry)
            entry.snapshot_seq = numbered[-1][0] if numbered else entry.snapshot_seq
            entry.snapshot_due = False
            entry.snapshot_note = None
            entry.retired = []
        return len(twins)

    def _snapshots(self, patient_id: str, entry: TwinEntry, blob: bytes, *, now: dt.datetime) -> list[Any]:
        """The ``twin_models`` writes of ``entry``: the states it retired (e.g. the live twin a
        promotion replaced), then its due snapshot, numbered after the last one stored."""
        writes: list[Any] = []
        last = entry.snapshot_seq
        for version, state, version_id, note in _numbered(entry):
            state_blob = blob if state is entry.state else serialize(state)
            doc = snapshot_document(
                state, state_blob, version=version, version_id=version_id, note=note, now=now
            )
            writes.append(UpdateOne({"_id": f"{patient_id}:{version}"}, {"$set": doc}, upsert=True))
            # prune in steps (a delete costs ~70x a write): when a multiple of keep_versions is passed
            if version // self.keep_versions > last // self.keep_versions:
                writes.append(
                    DeleteMany({"patient_id": patient_id, "version": {"$lte": version - self.keep_versions}})
                )
            last = version
        return writes

    # ---- the deployment's model versions and the operators' tools -------------------------
    async def deployment(self) -> dict[str, Any] | None:
        """The ``twin_versions`` document of the deployment (the promoted live version), if any."""
        return await self._retry("deployment", lambda: self.db[VERSIONS].find_one({"_id": DEPLOYMENT}))

    async def record_promotion(
        self, *, live: str, previous: str, actor: str, report: dict[str, Any], now: dt.datetime
    ) -> None:
        """Make ``live`` the deployment's live version (workers take it at their next refresh)."""
        entry = {"live": live, "previous": previous, "actor": actor, "at": now, "report": report}
        await self._retry(
            "record_promotion",
            lambda: self.db[VERSIONS].update_one(
                {"_id": DEPLOYMENT},
                {
                    "$set": {"live": live, "previous": previous, "promoted_at": now, "promoted_by": actor},
                    "$push": {"history": entry},
                },
                upsert=True,
            ),
        )

    async def shadow_metrics(self, shadow_id: str) -> list[PairedMetrics]:
        """The paired metrics of every twin that runs ``shadow_id`` in shadow (one per patient)."""

        async def fetch() -> list[PairedMetrics]:
            cursor = self.db[TWINS].find({"shadow.version_id": shadow_id}, {"shadow.paired": 1})
            return [PairedMetrics.from_dict(doc["shadow"]["paired"]) async for doc in cursor]

        return await self._retry("shadow_metrics", fetch)

    async def snapshot(self, patient_id: str, version: int) -> dict[str, Any] | None:
        """One stored snapshot of a patient (with its serialized state), if it is kept."""
        return await self._retry(
            "snapshot", lambda: self.db[MODELS].find_one({"_id": f"{patient_id}:{version}"})
        )

    async def twin_version(self, patient_id: str) -> dict[str, Any] | None:
        """The model version fields of a stored twin (no state)."""
        return await self._retry(
            "twin_version",
            lambda: self.db[TWINS].find_one(
                {"_id": patient_id},
                {
                    "model_version_id": 1,
                    "pinned": 1,
                    "applied_offset": 1,
                    "snapshot_seq": 1,
                    "shadow.version_id": 1,
                    "shadow.paired": 1,
                },
            ),
        )

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


LOAD_FIELDS = {
    "state": 1,
    "applied_offset": 1,
    "model_version_id": 1,
    "pinned": 1,
    "snapshot_seq": 1,
    "shadow": 1,
}


def entry_of(doc: dict[str, Any]) -> TwinEntry:
    """The twin entry a ``twins`` document holds (read with :data:`LOAD_FIELDS`)."""
    state = deserialize(bytes(doc["state"]))
    shadow = doc.get("shadow")
    return TwinEntry(
        state,
        int(doc["applied_offset"]),
        version_id=doc.get("model_version_id"),
        pinned=bool(doc.get("pinned", False)),
        # before shadows existed, snapshots were numbered by the state's own count
        snapshot_seq=int(doc.get("snapshot_seq", state.snapshots)),
        shadow=None
        if not shadow
        else Shadow(
            shadow["version_id"],
            deserialize(bytes(shadow["state"])),
            started_offset=int(shadow["started_offset"]),
            paired=PairedMetrics.from_dict(shadow["paired"]),
        ),
    )


def _numbered(entry: TwinEntry) -> list[tuple[int, TwinState, str, dict[str, Any] | None]]:
    """``(number, state, model version id, note)`` of each snapshot ``entry`` is due to store.

    The due snapshot keeps the number the state counts (``TwinState.snapshots``) unless that is
    taken (a promotion or a restore brought in a state with a lower count): then it follows the
    last one stored, as retired states do."""
    out: list[tuple[int, TwinState, str, dict[str, Any] | None]] = []
    last = entry.snapshot_seq
    for r in entry.retired:
        last += 1
        out.append((last, r.state, r.model_version_id, r.note))
    if entry.snapshot_due:
        last = max(last + 1, entry.state.snapshots)
        out.append((last, entry.state, entry.version_id or MODEL_VERSION_ID, entry.snapshot_note))
    return out


def twin_document(entry: TwinEntry, blob: bytes, *, now: dt.datetime) -> dict[str, Any]:
    """The ``twins`` document: readable fields for queries and views, plus the exact state
    (and the shadow twin's, with its paired metrics, when one runs)."""
    state = entry.state
    update = twin_update(state, event_ms=0, received_ms=0)
    readable = {
        k: _bson_safe(v)
        for k, v in update.items()
        if k not in {"event_id", "event_time", "received_time", "source", "schema_version"}
    }
    shadow: dict[str, Any] | None = None
    if entry.shadow is not None:
        shadow_blob = serialize(entry.shadow.state)
        shadow = {
            "version_id": entry.shadow.version_id,
            "started_offset": entry.shadow.started_offset,
            "paired": entry.shadow.paired.to_dict(),
            "state": Binary(shadow_blob),
            "state_bytes": len(shadow_blob),
        }
    return {
        "_id": state.patient_id,
        **readable,
        "model_version": state.snapshots,
        "model_version_id": entry.version_id or MODEL_VERSION_ID,
        "pinned": entry.pinned,
        "snapshot_seq": entry.snapshot_seq,
        "summary": _bson_safe(summary(state)),
        "state": Binary(blob),
        "state_bytes": len(blob),
        "total_state_bytes": len(blob) + (shadow["state_bytes"] if shadow else 0),
        "shadow": shadow,
        "checksum": hashlib.sha256(blob).hexdigest(),
        "applied_offset": entry.offset,
        "updated_at": now,
    }


def model_document(entry: TwinEntry, blob: bytes, *, version: int, now: dt.datetime) -> dict[str, Any]:
    """The ``twin_models`` document of ``entry``'s current state as snapshot ``version``."""
    return snapshot_document(
        entry.state,
        blob,
        version=version,
        version_id=entry.version_id or MODEL_VERSION_ID,
        note=entry.snapshot_note,
        now=now,
    )


def snapshot_document(
    state: TwinState,
    blob: bytes,
    *,
    version: int,
    version_id: str,
    note: dict[str, Any] | None,
    now: dt.datetime,
) -> dict[str, Any]:
    """A ``twin_models`` document: the state, the model version id that produced it, its
    progressive-validation metrics and, when it was not the update policy's, why it was kept."""
    return {
        "patient_id": state.patient_id,
        "version": version,
        "created_at": now,
        "samples_seen": state.days_learned,
        "model_source": state.model_source,
        "model_version_id": version_id,
        "metrics": metrics(state),
        "note": note,
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
