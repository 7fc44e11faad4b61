"""Per-patient window state of the partitions this replica owns, backed by a changelog topic.

The changelog (``patient-windows``, compacted, co-partitioned with the source topics, keyed
by pseudonym) holds each patient's latest :class:`PatientEntry`, written in the same Kafka
transaction as the outputs and source offsets of the batch that produced it. Restoring a
partition reads its changelog start to end (committed records only) and decodes each entry
lazily, on first use.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import replace
from functools import partial

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from novamind.lag import retrying
from novamind.settings import WorkerSettings
from workers.features.patient import DAY_MS, DEFAULT_WINDOWS, WindowConfig
from workers.pipeline.ingest import PatientEntry


def window_config(worker: WorkerSettings) -> WindowConfig:
    """The windows a replica keeps, from ``NOVAMIND_WORKER__*`` (lateness, dedup, retention)."""
    return replace(
        DEFAULT_WINDOWS,
        lateness_ms=worker.lateness_days * DAY_MS,
        dedup_horizon_ms=worker.dedup_horizon_days * DAY_MS,
        retention_ms=worker.window_retention_days * DAY_MS,
    )


def encode_entry(entry: PatientEntry) -> bytes:
    return json.dumps(entry.to_dict(), separators=(",", ":")).encode()


def decode_entry(raw: bytes, config: WindowConfig = DEFAULT_WINDOWS) -> PatientEntry:
    return PatientEntry.from_dict(json.loads(raw), config)


class PatientStates(MutableMapping[str, PatientEntry]):
    """Live entries in front of restored raw ones, remembering each patient's partition."""

    def __init__(self, decode: Callable[[bytes], PatientEntry] = decode_entry) -> None:
        self._decode = decode
        self._live: dict[str, PatientEntry] = {}
        self._raw: dict[str, bytes] = {}
        self.partition_of: dict[str, int] = {}

    def __getitem__(self, patient_id: str) -> PatientEntry:
        entry = self._live.get(patient_id)
        if entry is None:
            entry = self._live[patient_id] = self._decode(self._raw.pop(patient_id))
        return entry

    def __setitem__(self, patient_id: str, entry: PatientEntry) -> None:
        self._live[patient_id] = entry

    def __delitem__(self, patient_id: str) -> None:
        self._live.pop(patient_id, None)
        self._raw.pop(patient_id, None)
        self.partition_of.pop(patient_id, None)

    def __contains__(self, patient_id: object) -> bool:
        return patient_id in self._live or patient_id in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter({**self._raw, **self._live})

    def __len__(self) -> int:
        return len(self._live.keys() | self._raw.keys())

    def restored(self, partition: int, raw: dict[str, bytes]) -> None:
        for patient_id, value in raw.items():
            self._live.pop(patient_id, None)
            self._raw[patient_id] = value
            self.partition_of[patient_id] = partition

    def drop_partitions(self, partitions: Iterable[int]) -> None:
        """Forget the patients of partitions this replica no longer owns."""
        gone = set(partitions)
        for patient_id in [p for p, n in self.partition_of.items() if n in gone]:
            del self[patient_id]

    def clear(self) -> None:
        self._live.clear()
        self._raw.clear()
        self.partition_of.clear()


def read_changelog(
    consumer: Consumer,
    topic: str,
    partitions: Iterable[int],
    *,
    probe: Consumer,
    progress: Callable[[int, int, int], None],
) -> dict[int, dict[str, bytes]]:
    """The latest committed value per key of each changelog partition (tombstones delete).

    ``consumer`` reads committed records only; ``probe`` is a read-uncommitted client whose
    watermarks are the log ends. The read ends at the log end seen at the start, not at the
    last stable offset: right after another replica's commit its transaction markers may not
    be written yet, and the last stable offset would then stop before that committed state.
    A transaction still open there is waited for (committed or aborted by its timeout).

    ``progress(partition, records_read, offsets_left)`` is called as the read advances
    (``offsets_left`` counts to the end seen at the start; 0 once the partition is read).
    """
    wanted = sorted(set(partitions))
    restored: dict[int, dict[str, bytes]] = {p: {} for p in wanted}
    if not wanted:
        return restored
    pending = set(wanted)
    ends: dict[int, int] = {}
    next_offset = dict.fromkeys(wanted, 0)
    for p in wanted:  # empty partitions report no EOF to a fresh assignment on some brokers
        tp = TopicPartition(topic, p)
        low, ends[p] = retrying(partial(probe.get_watermark_offsets, tp, timeout=10))  # leader may move
        next_offset[p] = low
        if ends[p] <= low:
            pending.discard(p)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(pending)])
    counts = dict.fromkeys(wanted, 0)
    try:
        while pending:
            for message in consumer.consume(10_000, timeout=0.5):
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise RuntimeError(f"changelog read failed: {error.str()}")
                    continue
                p = message.partition() or 0
                key = (message.key() or b"").decode()
                value = message.value()
                if value is None:
                    restored[p].pop(key, None)
                else:
                    restored[p][key] = value
                counts[p] += 1
            for tp in consumer.position([TopicPartition(topic, p) for p in sorted(pending)]):
                next_offset[tp.partition] = max(next_offset[tp.partition], tp.offset)
                if tp.offset >= ends[tp.partition]:
                    pending.discard(tp.partition)
            for p in wanted:
                progress(p, counts[p], 0 if p not in pending else max(ends[p] - next_offset[p], 0))
    finally:
        consumer.unassign()
    return restored
