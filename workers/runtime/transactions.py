"""The checkpoint of an ingest batch: one Kafka transaction for outputs, state and source offsets.

Protocol of one batch (:class:`Checkpointer`):

1. ``begin``: open the transaction; the caller produces the batch's outputs and changelog
   records through :attr:`Checkpointer.outputs`;
2. ``commit``: add the source offsets to the transaction, then commit it. Calls that fail
   with a retriable error (a broker restarting, a coordinator moving) are retried until the
   transaction would have expired anyway;
3. on any other failure, ``roll_back``: abort, or replace the producer when it is stuck in a
   call or cannot even abort (a new producer with the same transactional id fences the old
   one and aborts its transaction). The caller then forgets its in-memory state and reads
   again from the committed offsets.

Every transactional call runs with a deadline (:mod:`workers.runtime.deadline`): librdkafka
#5456 can leave ``send_offsets_to_transaction`` blocked for good.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from novamind.platform.settings import Settings
from schemas.codec import AvroCodec
from workers.runtime import clients
from workers.runtime.deadline import CallStuck, call_with_deadline
from workers.runtime.monitor import PipelineAlerts
from workers.runtime.outputs import Outputs

log = structlog.get_logger(__name__)

SEND_OFFSETS_TIMEOUT_S = 30.0
COMMIT_TIMEOUT_S = 60.0
STUCK_MARGIN_S = 10.0  # a transactional call this late past its own timeout is stuck


class Checkpointer:
    """Owns the transactional producer of a replica."""

    def __init__(
        self,
        settings: Settings,
        *,
        codec: AvroCodec,
        topic_name: Callable[[str], str],
        alerts: PipelineAlerts,
    ) -> None:
        self.settings = settings
        self.codec = codec
        self.topic_name = topic_name
        self.alerts = alerts
        self.producer = Producer(clients.transactional_producer(settings))
        self.outputs = Outputs(self.producer, codec=codec, topic_name=topic_name)

    async def init(self) -> None:
        await self._call("init_transactions", timeout_s=30)

    def begin(self) -> Outputs:
        self.outputs.sent.clear()
        self.producer.begin_transaction()
        return self.outputs

    async def commit(self, offsets: list[TopicPartition], group_metadata: Any) -> None:
        """Add the offsets (if any) and commit; raises :class:`KafkaException` or :class:`CallStuck`."""
        if offsets:
            await self._retrying(
                "send_offsets_to_transaction", offsets, group_metadata, timeout_s=SEND_OFFSETS_TIMEOUT_S
            )
        await self._retrying("commit_transaction", timeout_s=COMMIT_TIMEOUT_S)

    def reached(self, topic: str, partitions: Any) -> dict[int, int]:
        """The next offset of each of ``topic``'s partitions written in the committed transaction,
        from its delivery reports."""
        self.producer.poll(0)  # serve the delivery reports of the committed transaction
        last = self.outputs.last_offsets
        return {p: last[(topic, p)] + 1 for p in partitions if (topic, p) in last}

    async def roll_back(self, exc: KafkaException | CallStuck) -> None:
        """Abort the failed transaction (or replace the producer); re-raise what is fatal."""
        if isinstance(exc, CallStuck):
            self.alerts.raise_alert(
                "checkpoint",
                "WARNING",
                "the transactional producer stopped answering; it is replaced and the batch read again",
                {"call": exc.name, "timeout_s": f"{exc.timeout_s:g}"},
            )
            await self.replace()
            return
        error = exc.args[0]
        fenced = error.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED)
        self.alerts.raise_alert(
            "checkpoint",
            "CRITICAL" if fenced else "WARNING",
            "a batch transaction failed and was rolled back",
            {"error": error.name(), "fenced": str(fenced)},
        )
        if fenced or not (error.txn_requires_abort() or error.retriable()):
            raise exc  # being fenced by another process with our id: two replicas share a name
        try:
            await self._call("abort_transaction", timeout_s=15)
        except (KafkaException, CallStuck):
            await self.replace()

    async def replace(self) -> None:
        """A new producer with the same transactional id; waits for a broker coming back."""
        delay, fresh = 1.0, True
        while True:
            if fresh:
                log.warning("transactional_producer_replaced")
                self.producer = Producer(clients.transactional_producer(self.settings))
                self.outputs = Outputs(self.producer, codec=self.codec, topic_name=self.topic_name)
            try:
                await self._call("init_transactions", timeout_s=60)
                return
            except KafkaException as exc:
                if not exc.args[0].retriable():
                    raise
                fresh = False
                log.warning("init_transactions_retry", error=exc.args[0].name())
            except CallStuck as exc:
                fresh = True  # that producer is lost to its stuck call
                log.warning("init_transactions_retry", error=str(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 15.0)

    async def _call(self, name: str, *args: Any, timeout_s: float) -> None:
        """A transactional-producer call, given up as stuck ``STUCK_MARGIN_S`` after its own
        timeout."""
        method = getattr(self.producer, name)
        await call_with_deadline(lambda: method(*args, timeout_s), timeout_s + STUCK_MARGIN_S, name=name)

    async def _retrying(self, name: str, *args: Any, timeout_s: float) -> None:
        deadline = time.monotonic() + self.settings.worker.transaction_timeout_ms / 1000
        attempt = 0
        while True:
            try:
                await self._call(name, *args, timeout_s=timeout_s)
                return
            except KafkaException as exc:
                error = exc.args[0]
                if not error.retriable() or time.monotonic() > deadline:
                    raise
                attempt += 1
                if attempt >= 3:
                    self.alerts.raise_alert(
                        "checkpoint",
                        "WARNING",
                        "Kafka is not accepting the batch's transaction; retrying",
                        {"error": error.name(), "attempt": str(attempt)},
                    )
                await asyncio.sleep(min(0.25 * 2**attempt, 5.0))
