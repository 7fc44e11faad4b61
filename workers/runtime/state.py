"""Per-patient window state of the partitions this replica owns: a bounded cache over local stores.

The changelog (``patient-windows``, compacted, co-partitioned with the source topics) holds
each patient's state as small keyed parts (:mod:`workers.features.parts`); a batch writes
only the parts it changed, in the same Kafka transaction as its outputs and source offsets
(a patient changed only by journaled samples may wait, :mod:`workers.runtime.deferred`).
Each owned partition has a local RocksDB store (:mod:`workers.runtime.store`) written after
that transaction commits, with the changelog offset it reflects; restoring a partition reads
only the changelog after that offset. Patients are loaded from the store on first use, their
days on demand; after each batch, days before yesterday leave memory and the least
recently used patients beyond ``cache_patients`` are dropped, so memory does not grow with
the number of patients a replica owns.

Upgrading from version-2 state (one JSON record per patient, keyed by the bare pseudonym):
restoring such a record converts it into parts, and the next transaction writes the parts
and a tombstone for the old key (see :meth:`PatientStates.apply_changelog`).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from rocksdict import Cache, WriteBufferManager

from novamind.platform import metrics
from novamind.platform.lag import retrying
from novamind.platform.settings import WorkerSettings
from workers.features.parts import JOURNAL, SEP, all_parts, load_state, take_changes
from workers.features.patient import DAY_MS, DEFAULT_WINDOWS, WindowConfig
from workers.pipeline.ingest import PatientEntry
from workers.runtime.deferred import FLOOR_KEY, DeferredWrites, Floor, decode_floor, encode_floor
from workers.runtime.store import PartitionStore

Records = list[tuple[bytes, bytes | None]]
Changes = dict[int, dict[bytes, bytes | None]]  # partition -> changelog key -> value (None deletes)
_SEP = SEP.encode()


@dataclass
class RestoreNotes:
    """What a partition's restore found, applied once it is done."""

    patients: set[str] = field(default_factory=set)  # whose cached entry is now stale
    migrations: dict[bytes, bytes | None] = field(default_factory=dict)


def window_config(worker: WorkerSettings) -> WindowConfig:
    """The windows a replica keeps, from ``NOVAMIND_WORKER__*`` (lateness, dedup, retention)."""
    return replace(
        DEFAULT_WINDOWS,
        lateness_ms=worker.lateness_days * DAY_MS,
        dedup_horizon_ms=worker.dedup_horizon_days * DAY_MS,
        retention_ms=worker.window_retention_days * DAY_MS,
    )


class PatientStates(MutableMapping[str, PatientEntry]):
    """Patients' entries of the owned partitions: cached in memory, stored on local disk."""

    def __init__(
        self,
        root: Path,
        *,
        config: WindowConfig = DEFAULT_WINDOWS,
        cache_patients: int = 10_000,
        block_cache_bytes: int = 64 << 20,
        write_delay_s: float = 0.0,
    ) -> None:
        self.root = root
        self.config = config
        self.cache_patients = cache_patients
        self.deferred = DeferredWrites(write_delay_s)
        self._block_cache = Cache(block_cache_bytes)
        self._memtables = WriteBufferManager.new_write_buffer_manager_with_cache(
            block_cache_bytes // 2, False, self._block_cache
        )
        self.stores: dict[int, PartitionStore] = {}
        self._live: OrderedDict[str, PatientEntry] = OrderedDict()
        self.partition_of: dict[str, int] = {}  # every patient seen in an owned partition
        self._unwritten: set[str] = set()  # folded into since their changes were last taken
        self._migrations: Changes = {}  # version-2 records converted at restore, to write
        self._restoring: dict[int, RestoreNotes] = {}

    # ---- partitions ------------------------------------------------------------------
    def open(self, partition: int) -> PartitionStore:
        store = self.stores.get(partition)
        if store is None:
            path = self.root / str(partition)
            store = PartitionStore(path, cache=self._block_cache, memtables=self._memtables)
            self.stores[partition] = store
        return store

    def start_offset(self, partition: int) -> int | None:
        """Where the restore of ``partition`` starts; None: from the beginning (store wiped)."""
        store = self.open(partition)
        checkpoint = store.checkpoint()
        if checkpoint is None:
            self.stores[partition] = store.wipe()
        return checkpoint

    def apply_changelog(self, partition: int, records: Records) -> None:
        """Apply restored changelog records to the partition's store (the store must be open).

        Runs on the restore thread while the loop goes on with other partitions: it touches
        only the store and this partition's restore notes; :meth:`restored` applies the notes
        (cached patients with newer parts are dropped, migrations queued) on the loop thread.
        """
        notes = self._restoring.setdefault(partition, RestoreNotes())
        puts: dict[bytes, bytes | None] = {}
        for key, value in records:
            if _SEP not in key:  # a version-2 record: the whole entry under the pseudonym
                if value is not None:
                    self._migrate(key, value, puts, notes)
                continue
            puts[key] = value
            notes.patients.add(key.split(_SEP, 1)[0].decode())
        self.stores[partition].write(puts, None)

    def _migrate(
        self, key: bytes, value: bytes, puts: dict[bytes, bytes | None], notes: RestoreNotes
    ) -> None:
        patient_id = key.decode()
        entry = PatientEntry.from_dict(json.loads(value), self.config)
        parts = {_key(patient_id, k): v for k, v in all_parts(entry.state, entry.fence).items()}
        puts.update(parts)
        notes.migrations.update(parts)
        notes.migrations[key] = None  # the old record goes once its parts are in the changelog
        notes.patients.add(patient_id)

    def restored(self, partition: int, end_offset: int) -> None:
        """The restore of ``partition`` reached ``end_offset``: checkpoint it, apply its notes."""
        self.open(partition).write({}, end_offset)
        self.deferred.restored(partition, self.replay_floor(partition))
        notes = self._restoring.pop(partition, RestoreNotes())
        for patient_id in notes.patients:
            self._drop(patient_id)
        if notes.migrations:
            self._migrations.setdefault(partition, {}).update(notes.migrations)

    def replay_floor(self, partition: int) -> Floor | None:
        """The source offsets a restore of ``partition`` reads again from (held-back writes)."""
        return decode_floor(self.open(partition).get(FLOOR_KEY))

    def close_partitions(self, partitions: Iterable[int]) -> None:
        """Forget the cached patients of partitions this replica no longer owns; close their
        stores (they stay on disk for a later assignment)."""
        gone = set(partitions)
        self.deferred.forget(gone)
        for patient_id in [p for p, n in self.partition_of.items() if n in gone]:
            self._drop(patient_id)
        for partition in gone:
            self._migrations.pop(partition, None)
            store = self.stores.pop(partition, None)
            if store is not None:
                store.close()

    def close(self) -> None:
        self.close_partitions(list(self.stores))

    # ---- the cache -------------------------------------------------------------------
    def __getitem__(self, patient_id: str) -> PatientEntry:
        entry = self.get(patient_id)
        if entry is None:
            raise KeyError(patient_id)
        return entry

    def get(self, patient_id: str, default: PatientEntry | None = None) -> PatientEntry | None:  # type: ignore[override]
        entry = self._live.get(patient_id)
        if entry is not None:
            self._live.move_to_end(patient_id)
            return entry
        for partition, store in self._candidates(patient_id):
            loaded = load_state(
                patient_id,
                partial(_get, store, patient_id),
                partial(_scan, store, patient_id),
                self.config,
            )
            if loaded is not None:
                entry = PatientEntry(loaded[0], loaded[1])
                self._live[patient_id] = entry
                self.partition_of[patient_id] = partition
                return entry
        return default

    def _candidates(self, patient_id: str) -> list[tuple[int, PartitionStore]]:
        known = self.partition_of.get(patient_id)
        if known is not None and known in self.stores:
            return [(known, self.stores[known])]
        return sorted(self.stores.items())

    def __setitem__(self, patient_id: str, entry: PatientEntry) -> None:
        self._live[patient_id] = entry
        self._live.move_to_end(patient_id)
        self._unwritten.add(patient_id)

    def __delitem__(self, patient_id: str) -> None:
        self._drop(patient_id)

    def _drop(self, patient_id: str) -> None:
        self._live.pop(patient_id, None)
        self.partition_of.pop(patient_id, None)
        self._unwritten.discard(patient_id)
        self.deferred.written(patient_id)  # forgotten: its partition's stored floor covers it

    def __contains__(self, patient_id: object) -> bool:
        return isinstance(patient_id, str) and self.get(patient_id) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._live))

    def __len__(self) -> int:
        return len(self._live)

    def clear(self) -> None:
        """Forget every cached patient (after a failed transaction: the stores hold only
        committed state, so reloading from them is exact)."""
        self._live.clear()
        self.partition_of.clear()
        self._unwritten.clear()
        self._migrations.clear()
        self.deferred.forget()

    # ---- a batch's writes ------------------------------------------------------------
    def changes(
        self, touched: dict[str, int], floors: Mapping[int, Floor] | None = None, now: float = 0.0
    ) -> Changes:
        """The changelog records of the patients a batch touched, per partition (with any
        pending migration of version-2 records); clears their change tracking. A patient whose
        changes are journal-only may be held back (:mod:`workers.runtime.deferred`; ``floors``
        holds the batch's lowest source offset per partition and topic, ``now`` the monotonic
        time); those held long enough are written, and each partition's replay floor with them."""
        out: Changes = {p: dict(m) for p, m in self._migrations.items()}
        deferred = self.deferred
        crowded = len(self._live) > self.cache_patients  # a held patient cannot leave memory
        floors = floors or {}
        journals = snapshots = 0
        for patient_id, partition in touched.items():
            self.partition_of[patient_id] = partition
            self._unwritten.discard(patient_id)
            entry = self._live[patient_id]
            state = entry.state
            if (
                not crowded
                and state.journal.writable()
                and not state.profile_changed
                and deferred.hold(patient_id, partition, floors.get(partition, {}), now)
            ):
                continue
            deferred.written(patient_id)
            if self._take(patient_id, partition, entry, out):
                journals += 1
            else:
                snapshots += 1
        for patient_id in list(deferred.waiting) if crowded else deferred.due(now):
            partition = deferred.waiting[patient_id].partition
            deferred.written(patient_id)
            held = self._live.get(patient_id)
            if held is not None and self._take(patient_id, partition, held, out):
                journals += 1
        for partition, floor in deferred.floors(set(self.stores)).items():
            out.setdefault(partition, {})[FLOOR_KEY] = None if floor is None else encode_floor(floor)
        metrics.record_state_writes(journals, snapshots, len(deferred.waiting))
        return out

    def _take(self, patient_id: str, partition: int, entry: PatientEntry, out: Changes) -> bool:
        """Add ``patient_id``'s changed parts to ``out``; True when they are the journal alone."""
        puts, deleted = take_changes(entry.state, entry.fence)
        records = out.setdefault(partition, {})
        for prefix in deleted:
            for key, _ in self.open(partition).scan(_key(patient_id, prefix)):
                records[key] = None
        for part, value in puts.items():
            records[_key(patient_id, part)] = value
        return len(puts) == 1 and puts.get(JOURNAL) is not None

    def persist(self, changes: Changes, offsets: dict[int, int], touched: Iterable[str] = ()) -> None:
        """After the transaction holding ``changes`` committed: write them to the stores with
        the changelog offset each partition has reached; then bound the memory."""
        for partition, records in changes.items():
            self.open(partition).write(records, offsets.get(partition))
            self._migrations.pop(partition, None)
        self.release(touched)

    def release(self, touched: Iterable[str]) -> None:
        """Drop the days of ``touched`` patients before yesterday from memory, then
        the least recently used patients beyond ``cache_patients``. What the batch being
        processed changed (the commit overlaps it) is not stored yet and stays."""
        keep_days = 1  # yesterday and today take the live events; closing a day loads its week
        for patient_id in touched:
            entry = self._live.get(patient_id)
            if entry is None:
                continue
            state = entry.state
            state.days.release(state.watermark // DAY_MS - keep_days, state.changed_days)
        excess = len(self._live) - self.cache_patients
        if excess <= 0:
            return
        for patient_id in list(self._live):
            if excess <= 0:
                break
            if patient_id not in self._unwritten and patient_id not in self.deferred.waiting:
                del self._live[patient_id]  # its partition stays known: the next load reads one store
                excess -= 1

    def resident_days(self) -> int:
        return sum(e.state.days.resident() for e in self._live.values())


def _key(patient_id: str, part: str) -> bytes:
    return f"{patient_id}{SEP}{part}".encode()


def _get(store: PartitionStore, patient_id: str, part: str) -> bytes | None:
    return store.get(_key(patient_id, part))


def _scan(store: PartitionStore, patient_id: str, prefix: str) -> list[tuple[str, bytes]]:
    skip = len(patient_id) + 1
    return [(k.decode()[skip:], v) for k, v in store.scan(_key(patient_id, prefix))]


def read_changelog(
    consumer: Consumer,
    topic: str,
    starts: dict[int, int | None],
    *,
    probe: Consumer,
    apply: Callable[[int, Records], None],
    progress: Callable[[int, int, int], None],
) -> dict[int, int]:
    """Read each changelog partition from its start offset (None: the beginning) to the log
    end seen at the start, committed records only; ``apply(partition, records)`` receives
    them in chunks (``None`` values are tombstones). Returns the offset each partition
    reached (where the next restore starts).

    ``consumer`` reads committed records only; ``probe`` is a read-uncommitted client whose
    watermarks are the log ends. The read ends at the log end seen at the start, not at the
    last stable offset: right after another replica's commit its transaction markers may not
    be written yet, and the last stable offset would then stop before that committed state.
    A transaction still open there is waited for (committed or aborted by its timeout).

    ``progress(partition, records_read, offsets_left)`` is called as the read advances
    (``offsets_left`` counts to the end seen at the start; 0 once the partition is read).
    """
    wanted = sorted(starts)
    reached: dict[int, int] = {}
    if not wanted:
        return reached
    pending = set(wanted)
    ends: dict[int, int] = {}
    next_offset: dict[int, int] = {}
    for p in wanted:  # empty partitions report no EOF to a fresh assignment on some brokers
        tp = TopicPartition(topic, p)
        low, ends[p] = retrying(partial(probe.get_watermark_offsets, tp, timeout=10))  # leader may move
        start = starts[p]
        next_offset[p] = low if start is None else max(start, low)
        reached[p] = ends[p]
        if ends[p] <= next_offset[p]:
            pending.discard(p)
            reached[p] = max(ends[p], start or 0)
    first = {p: OFFSET_BEGINNING if starts[p] is None else next_offset[p] for p in pending}
    consumer.assign([TopicPartition(topic, p, first[p]) for p in sorted(pending)])
    counts = dict.fromkeys(wanted, 0)
    try:
        while pending:
            chunk: dict[int, Records] = {}
            for message in consumer.consume(10_000, timeout=0.5):
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise RuntimeError(f"changelog read failed: {error.str()}")
                    continue
                p = message.partition() or 0
                chunk.setdefault(p, []).append((message.key() or b"", message.value()))
                counts[p] += 1
            for p, records in chunk.items():
                apply(p, records)
            for tp in consumer.position([TopicPartition(topic, p) for p in sorted(pending)]):
                next_offset[tp.partition] = max(next_offset[tp.partition], tp.offset)
                if tp.offset >= ends[tp.partition]:
                    pending.discard(tp.partition)
            for p in wanted:
                progress(p, counts[p], 0 if p not in pending else max(ends[p] - next_offset[p], 0))
    finally:
        consumer.unassign()
    return reached
