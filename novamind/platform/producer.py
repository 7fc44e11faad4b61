"""The one Kafka producer of connectors and the intake: nothing acknowledged is lost.

confluent-kafka with idempotence, acks=all and compression (see ``novamind.platform.kafka``). Every
delivery report is checked; ``send`` applies backpressure when the local queue is full;
``flush`` (also run on SIGTERM by the connectors) waits for every outstanding delivery, and
``deliver`` awaits one record's acknowledgement for request/response callers such as the intake.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from novamind.platform.kafka import producer_config
from novamind.platform.settings import KafkaSettings

log = structlog.get_logger(__name__)


class DeliveryFailed(RuntimeError):
    """Kafka refused or could not acknowledge a record."""


@dataclass
class DeliveryStats:
    """What a producer sent, per topic; ``failed`` counts refused deliveries by reason."""

    produced: Counter[str] = field(default_factory=Counter)
    acknowledged: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)


class EventProducer:
    """Produce keyed records and account for every acknowledgement."""

    def __init__(self, *, kafka: KafkaSettings, client_id: str, producer: Producer | None = None) -> None:
        self._producer = producer or Producer(producer_config(kafka, client_id=client_id))
        self.stats = DeliveryStats()
        self._lock = threading.Lock()

    def send(
        self,
        topic: str,
        *,
        key: bytes,
        value: bytes,
        on_delivery: Callable[[KafkaError | None, Message], None] | None = None,
    ) -> None:
        """Queue one record; blocks (serving delivery reports) while the local queue is full."""

        def report(err: KafkaError | None, msg: Message) -> None:
            with self._lock:
                if err is None:
                    self.stats.acknowledged[topic] += 1
                else:
                    self.stats.failed[err.name()] += 1
            if err is not None:
                log.error("delivery_failed", topic=topic, error=err.name(), reason=err.str())
            if on_delivery is not None:
                on_delivery(err, msg)

        while True:
            try:
                self._producer.produce(topic, key=key, value=value, on_delivery=report)
                break
            except BufferError:
                self._producer.poll(0.1)  # backpressure: wait for the broker to catch up
        self.stats.produced[topic] += 1
        self._producer.poll(0)

    async def deliver(self, topic: str, *, key: bytes, value: bytes, timeout: float = 30.0) -> None:
        """Send one record and return only once Kafka has acknowledged it."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def settle(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                loop.call_soon_threadsafe(_set_result, done)
            else:
                loop.call_soon_threadsafe(_set_exception, done, DeliveryFailed(err.str()))

        self.send(topic, key=key, value=value, on_delivery=settle)
        deadline = loop.time() + timeout
        while not done.done():
            if loop.time() > deadline:
                raise DeliveryFailed(f"no acknowledgement from Kafka within {timeout:.0f}s")
            await loop.run_in_executor(None, self._producer.poll, 0.05)
        await done

    def flush(self, timeout: float = 60.0) -> int:
        """Wait for outstanding deliveries; returns how many are still unacknowledged."""
        try:
            return int(self._producer.flush(timeout))
        except KafkaException as exc:  # pragma: no cover - broker gone while flushing
            raise DeliveryFailed(str(exc)) from exc

    def discard_unsent(self) -> int:
        """Drop what Kafka has not taken (after a flush that timed out), so the client stops
        retrying an unreachable broker; returns how many records were dropped."""
        left = len(self._producer)
        if left:
            self._producer.purge()
            self._producer.flush(0)  # serves the purged records' reports
        return left

    def outstanding(self) -> int:
        return len(self._producer)

    def summary(self) -> dict[str, Any]:
        return {
            "produced": dict(self.stats.produced),
            "acknowledged": dict(self.stats.acknowledged),
            "failed": dict(self.stats.failed),
        }


def _set_result(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _set_exception(future: asyncio.Future[None], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
