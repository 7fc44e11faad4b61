"""Consumer-group lag: end offsets against committed offsets, per partition."""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import Consumer, TopicPartition

from novamind.kafka import consumer_config
from novamind.settings import KafkaSettings

TIMEOUT_S = 10.0


def end_offsets(kafka: KafkaSettings, topics: Iterable[str]) -> dict[tuple[str, int], int]:
    """{(topic, partition): high watermark} of the given cluster topics."""
    consumer = Consumer(consumer_config(kafka, group_id="novamind-offset-probe", client_id="offset-probe"))
    try:
        ends: dict[tuple[str, int], int] = {}
        for topic in topics:
            metadata = consumer.list_topics(topic, timeout=TIMEOUT_S).topics[topic]
            for partition in metadata.partitions:
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=TIMEOUT_S)
                ends[(topic, partition)] = high
        return ends
    finally:
        consumer.close()


def group_lag(kafka: KafkaSettings, group: str, topics: Iterable[str]) -> dict[tuple[str, int], int]:
    """{(topic, partition): records not yet committed by ``group``}."""
    ends = end_offsets(kafka, topics)
    consumer = Consumer(consumer_config(kafka, group_id=group, client_id="lag-probe"))
    try:
        partitions = [TopicPartition(t, p) for (t, p) in ends]
        committed = consumer.committed(partitions, timeout=TIMEOUT_S) if partitions else []
        done = {(tp.topic, tp.partition): max(tp.offset, 0) for tp in committed}
    finally:
        consumer.close()
    return {tp: max(end - done.get(tp, 0), 0) for tp, end in ends.items()}
