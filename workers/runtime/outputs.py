"""Encode and produce a batch's outputs; find out whether Kafka accepted every one."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from schemas.codec import AvroCodec
from schemas.topics import check_carries


class DeliveryFailed(RuntimeError):
    """Kafka refused at least one output of the batch."""


class Outputs:
    """Records of registry topics to one producer; ``sent`` counts them per topic."""

    def __init__(self, producer: Producer, *, codec: AvroCodec, topic_name: Callable[[str], str]) -> None:
        self.producer = producer
        self.codec = codec
        self.topic_name = topic_name
        self.sent: Counter[str] = Counter()
        self.last_offsets: dict[tuple[str, int], int] = {}  # newest acknowledged, per partition
        self._failed: list[str] = []

    def send(self, topic: str, record_name: str, key: bytes, record: dict[str, Any]) -> None:
        """Encode ``record`` as ``record_name`` to ``topic``, which must carry that record type."""
        check_carries(topic, record_name)
        self.send_raw(topic, key, self.codec.encode_dict(record_name, record, topic=self.topic_name(topic)))

    def send_raw(self, topic: str, key: bytes, value: bytes | None, partition: int | None = None) -> None:
        self._produce(self.topic_name(topic), key, value, partition, report=True)
        self.sent[topic] += 1

    def send_records(self, topic: str, partition: int, records: Mapping[bytes, bytes | None]) -> None:
        """Raw records to one partition, in order. Only the last one reports its delivery (it
        has the partition's newest offset): inside a transaction a refused record fails the
        commit, so the others need no report."""
        name = self.topic_name(topic)
        last = len(records) - 1
        for i, (key, value) in enumerate(records.items()):
            self._produce(name, key, value, partition, report=i == last)
        self.sent[topic] += len(records)

    def _produce(
        self, name: str, key: bytes, value: bytes | None, partition: int | None, *, report: bool
    ) -> None:
        """Produce one record (to ``partition``, else the partitioner's), waiting while the
        local queue is full."""
        options: dict[str, Any] = {"key": key, "value": value}
        if partition is not None:
            options["partition"] = partition
        if report:
            options["on_delivery"] = self._report
        while True:
            try:
                self.producer.produce(name, **options)
                return
            except BufferError:
                self.producer.poll(0.05)  # backpressure: the local queue is full

    def _report(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._failed.append(f"{err.name()}: {err.str()}")
            return
        tp = (msg.topic() or "", msg.partition() or 0)
        offset = msg.offset() or 0
        if offset > self.last_offsets.get(tp, -1):
            self.last_offsets[tp] = offset

    def flush(self, timeout_s: float = 600.0) -> None:
        """Block until Kafka has acknowledged every output (a broker restart only delays
        that; a record fails once its ``message.timeout.ms`` passes); raise if any was refused."""
        remaining = self.producer.flush(timeout_s)
        failed, self._failed = self._failed, []
        if remaining:
            raise DeliveryFailed(f"{remaining} outputs not acknowledged within {timeout_s:.0f}s")
        if failed:
            raise DeliveryFailed(f"{len(failed)} outputs refused by Kafka: {failed[0]}")
