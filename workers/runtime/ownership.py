"""Which partitions a replica owns, and bringing their window state up to date when it gets them.

``consume`` reports rebalances through callbacks (:meth:`Ownership.listeners`); the loop applies
them between batches, never inside a transaction (:meth:`Ownership.apply`):

* revoked partitions stay open until the next assignment: every rebalance revokes everything
  (eager range assignment), and a partition that comes straight back keeps its cache;
* lost partitions (the group evicted this replica) may have moved on: forgotten at once;
* assigned partitions are restored first (:class:`Restorer`): each local store reads the
  changelog after its checkpoint - the tail written since this replica last held it, or
  all of it for a store seen for the first time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import structlog
from confluent_kafka import Consumer, KafkaException, TopicPartition

from novamind.platform import metrics
from novamind.platform.metrics import Step, timed
from schemas.topics import TopicName
from workers.runtime.state import PatientStates, read_changelog

log = structlog.get_logger(__name__)
CHANGELOG = TopicName.PATIENT_WINDOWS
RESTORE_ATTEMPTS = 6  # about a minute of retries, then the replica fails (and is restarted)
Partition = tuple[str, int]


@dataclass
class Ownership:
    """The partitions this replica owns and those being restored."""

    assigned: set[Partition] = field(default_factory=set)
    restoring: set[int] = field(default_factory=set)
    restored_records: dict[int, int] = field(default_factory=dict)
    released: set[Partition] = field(default_factory=set)  # revoked, kept until reassigned
    events: list[tuple[str, list[TopicPartition]]] = field(default_factory=list)

    def listeners(
        self, before_revoke: Callable[[], None] = lambda: None
    ) -> dict[str, Callable[[Consumer, list[TopicPartition]], None]]:
        """``subscribe`` callbacks that record what ``consume`` reports. ``before_revoke`` runs
        first when partitions are taken away (on the thread in ``consume``): the commit in
        flight settles while the group still counts this replica as their owner."""

        def revoke(kind: str, parts: list[TopicPartition]) -> None:
            before_revoke()
            self.events.append((kind, parts))

        return {
            "on_assign": lambda _c, parts: self.events.append(("assign", parts)),
            "on_revoke": lambda _c, parts: revoke("revoke", parts),
            "on_lost": lambda _c, parts: revoke("lost", parts),
        }

    async def apply(
        self,
        *,
        forget: Callable[[set[Partition]], None],
        restore: Callable[[set[Partition]], Awaitable[None]],
    ) -> None:
        """Apply the reported rebalances, in order."""
        events, self.events = self.events, []
        for kind, parts in events:
            tps = {(tp.topic, tp.partition) for tp in parts}
            if kind == "assign":
                forget(self.released - tps)
                self.released = set()
                self.assigned |= tps
                await restore(tps)
                log.info("partitions_assigned", partitions=describe(tps))
                continue
            self.assigned -= tps
            if kind == "lost":
                forget(tps)
            else:
                self.released |= tps
            log.info(f"partitions_{kind}", partitions=describe(tps))


class Restorer:
    """Reads changelog partitions into the local stores (off the event loop)."""

    def __init__(
        self,
        *,
        states: PatientStates,
        ownership: Ownership,
        restorer: Consumer,
        probe: Consumer,
        topic: str,
        blocking: Callable[..., Awaitable[Any]],
    ) -> None:
        self.states = states
        self.ownership = ownership
        self.restorer = restorer
        self.probe = probe
        self.topic = topic
        self._blocking = blocking

    async def restore(self, partitions: set[int]) -> None:
        if not partitions:
            return
        started = time.perf_counter()
        own = self.ownership
        own.restoring |= partitions

        def progress(partition: int, records: int, left: int) -> None:
            before = own.restored_records.get(partition, 0)
            own.restored_records[partition] = records
            metrics.record_restore(partition, max(records - before, 0), left)

        for partition in partitions:
            own.restored_records[partition] = 0
        starts: dict[int, int | None] = {}
        try:
            with timed(Step.RESTORE):
                for attempt in range(1, RESTORE_ATTEMPTS + 1):
                    # a failed read is read again from the checkpoint: applying a record twice
                    # leaves the store as once (the latest value per key wins)
                    starts = {p: self.states.start_offset(p) for p in sorted(partitions)}
                    try:
                        read = partial(
                            read_changelog,
                            self.restorer,
                            self.topic,
                            starts,
                            probe=self.probe,
                            apply=self.states.apply_changelog,
                            progress=progress,
                        )
                        reached = await self._blocking(read)
                        break
                    except (KafkaException, RuntimeError) as exc:  # e.g. the broker restarting
                        if attempt == RESTORE_ATTEMPTS:
                            raise
                        log.warning("restore_retry", attempt=attempt, reason=str(exc))
                        await asyncio.sleep(min(2.0**attempt, 30.0))
                for partition, offset in reached.items():
                    self.states.restored(partition, offset)
        finally:
            own.restoring -= partitions
        log.info(
            "state_restored",
            partitions=sorted(partitions),
            full=sorted(p for p, start in starts.items() if start is None),
            records=sum(own.restored_records.get(p, 0) for p in partitions),
            ms=round((time.perf_counter() - started) * 1000, 1),
        )


def describe(tps: set[Partition]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for topic, partition in sorted(tps):
        out.setdefault(topic, []).append(partition)
    return out
