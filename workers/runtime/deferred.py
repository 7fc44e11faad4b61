"""Journal-only state writes held back for a while, and where a restore re-reads them from.

In a trickle each patient brings one sample per batch, and writing its journal to the store
and the changelog costs about as much as folding the sample. Those samples need not be
written at once: the source topic already holds them, at offsets the Kafka transaction
commits. So a patient whose changes are journal-only (every change since its last write is a
journaled sample, :mod:`workers.features.journal`) may wait up to ``delay_s`` to be written,
and each batch's transaction records, per changelog partition, the lowest source offsets
whose samples are folded into memory but not yet written (the *replay floor*, one small
changelog record under :data:`FLOOR_KEY`). A replica that restores the partition reads the
source from that floor up to the committed offsets again: the patients' offset fences skip
every record already in the stored state, and folding the others again is deterministic, so
the state is exactly the one that was in memory. Their outputs were committed the first time
and are dropped (journal-only samples produce none). As Flink restores operator state from a
checkpoint and re-reads the sources from the offsets stored with it, but the outputs stay
committed with every batch.

A patient is written anyway once it changes more than its journal, once it has waited
``delay_s``, and whenever the replica holds more patients than its cache allows (a deferred
patient cannot leave memory).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from workers.features.parts import SEP

FLOOR_KEY = f"~{SEP}replay".encode()  # "~" begins no pseudonym; the separator keeps it a part key
Floor = dict[str, int]  # source topic -> first offset a restore must read again


@dataclass
class Waiting:
    """A patient whose journal-only changes are not written yet."""

    partition: int
    since: float
    floor: Floor


@dataclass
class DeferredWrites:
    """The patients held back, oldest first, and the floor each partition's changelog records."""

    delay_s: float
    waiting: dict[str, Waiting] = field(default_factory=dict)
    recorded: dict[int, Floor] = field(default_factory=dict)  # the floor last sent per partition

    def hold(self, patient_id: str, partition: int, floor: Floor, now: float) -> bool:
        """Hold ``patient_id`` back unless it has waited ``delay_s``; True when held. ``floor``
        bounds from below the offsets of the samples it folded since its last write."""
        if self.delay_s <= 0:
            return False
        waiting = self.waiting.get(patient_id)
        if waiting is None:
            self.waiting[patient_id] = Waiting(partition, now, floor)
            return True
        return now - waiting.since < self.delay_s

    def due(self, now: float) -> list[str]:
        """The held patients that have waited ``delay_s`` (oldest first)."""
        out = []
        for patient_id, waiting in self.waiting.items():
            if now - waiting.since < self.delay_s:
                break
            out.append(patient_id)
        return out

    def written(self, patient_id: str) -> None:
        self.waiting.pop(patient_id, None)

    def floors(self, partitions: set[int]) -> dict[int, Floor | None]:
        """The floor of each of ``partitions`` that changed since it was last recorded
        (``None``: nothing held there any more), recorded as sent."""
        lowest: dict[int, Floor] = {}
        seen: set[tuple[int, int]] = set()
        for waiting in self.waiting.values():
            key = (waiting.partition, id(waiting.floor))  # one floor object per batch and partition
            if waiting.partition not in partitions or key in seen:
                continue
            seen.add(key)
            low = lowest.setdefault(waiting.partition, {})
            for topic, offset in waiting.floor.items():
                low[topic] = min(offset, low.get(topic, offset))
        changed: dict[int, Floor | None] = {}
        for partition in partitions:
            floor = lowest.get(partition)
            if floor != self.recorded.get(partition):
                changed[partition] = floor
                if floor is None:
                    self.recorded.pop(partition, None)
                else:
                    self.recorded[partition] = floor
        return changed

    def restored(self, partition: int, floor: Floor | None) -> None:
        """``partition`` was restored; its changelog's floor is ``floor``."""
        if floor is None:
            self.recorded.pop(partition, None)
        else:
            self.recorded[partition] = floor

    def forget(self, partitions: set[int] | None = None) -> None:
        """Drop the held patients of ``partitions`` (``None``: all), whose memory is forgotten;
        the floor stored with their partition still covers them."""
        if partitions is None:
            self.waiting.clear()
            self.recorded.clear()
            return
        for patient_id in [p for p, w in self.waiting.items() if w.partition in partitions]:
            del self.waiting[patient_id]
        for partition in partitions:
            self.recorded.pop(partition, None)


def encode_floor(floor: Floor) -> bytes:
    return json.dumps(floor, sort_keys=True, separators=(",", ":")).encode()


def decode_floor(raw: bytes | None) -> Floor | None:
    return None if raw is None else {str(k): int(v) for k, v in json.loads(raw).items()}
