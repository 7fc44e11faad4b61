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
    """Every message now in ``topic``, in (partition, offset) order."""
    ends = end_offsets(kafka, [topic])
    consumer = Consumer(consumer_config(kafka, group_id=f"reader-{uuid.uuid4().hex}", client_id="reader"))
    messages: list[Any] = []
    try:
        consumer.assign([TopicPartition(topic, p, 0) for (_, p) in ends])
        # Count positions, not records: transaction markers take offsets too.
        pending = {p: end for (_, p), end in ends.items() if end > 0}
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=0.5):
                if message.error() is None:
                    messages.append(message)
            positions = consumer.position([TopicPartition(topic, p) for p in pending])
            for tp in positions:
                if tp.offset >= pending[tp.partition]:
                    del pending[tp.partition]
        if pending:
            raise TimeoutError(
                f"partitions {sorted(pending)} of {topic} not read to the end within {timeout_s:.0f}s"
            )
    finally:
        consumer.close()
    messages.sort(key=lambda m: (m.partition(), m.offset()))
    return messages
