"""Read a topic from the beginning to its current end (tools, the demo, tests)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from novamind.platform.kafka import consumer_config
from novamind.platform.lag import end_offsets
from novamind.platform.settings import KafkaSettings


def read_all(kafka: KafkaSettings, topic: str, *, timeout_s: float = 60.0) -> list[Any]:
    """Every message now in ``topic``, in (partition, offset) order.

    Once the end offsets are reached they are asked again, and the read goes on while they
    moved: one end reported short (a broker still settling) must not cut the read short.
    """
    ends = _ends(kafka, topic)
    consumer = Consumer(consumer_config(kafka, group_id=f"reader-{uuid.uuid4().hex}", client_id="reader"))
    messages: list[Any] = []
    reached = dict.fromkeys(ends, 0)  # positions, not records: transaction markers take offsets too
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        deadline = time.monotonic() + timeout_s
        while True:
            pending = [p for p, end in ends.items() if reached[p] < end]
            if not pending:
                latest = _ends(kafka, topic)
                if all(end <= reached.get(p, 0) for p, end in latest.items()):
                    break
                added = [TopicPartition(topic, p, 0) for p in latest if p not in reached]
                if added:
                    consumer.incremental_assign(added)
                    reached.update((tp.partition, 0) for tp in added)
                ends = latest
                continue
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"partitions {pending} of {topic} not read to the end within {timeout_s:.0f}s"
                )
            for message in consumer.consume(1000, timeout=0.5):
                if message.error() is None:
                    messages.append(message)
            for tp in consumer.position([TopicPartition(topic, p) for p in pending]):
                reached[tp.partition] = max(reached[tp.partition], tp.offset)
    finally:
        consumer.close()
    messages.sort(key=lambda m: (m.partition(), m.offset()))
    return messages


def _ends(kafka: KafkaSettings, topic: str) -> dict[int, int]:
    return {partition: max(high, 0) for (_, partition), high in end_offsets(kafka, [topic]).items()}
