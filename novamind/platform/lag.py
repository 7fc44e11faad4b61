"""Consumer-group lag: end offsets against committed offsets, per partition."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import TypeVar

from confluent_kafka import Consumer, KafkaException, TopicPartition

from novamind.platform.kafka import consumer_config
from novamind.platform.settings import KafkaSettings

TIMEOUT_S = 10.0
T = TypeVar("T")


def retrying(call: Callable[[], T], *, budget_s: float = 60.0) -> T:
    """``call()``, again while the broker is not ready to answer (just restarted: partitions
    without a leader yet, coordinator still loading), for up to ``budget_s``."""
    deadline = time.monotonic() + budget_s
    delay = 0.2
    while True:
        try:
            return call()
        except KafkaException:
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 3.0)


def end_offsets(kafka: KafkaSettings, topics: Iterable[str]) -> dict[tuple[str, int], int]:
    """{(topic, partition): high watermark} of the given cluster topics."""
    consumer = Consumer(consumer_config(kafka, group_id="novamind-offset-probe", client_id="offset-probe"))
    try:
        ends: dict[tuple[str, int], int] = {}
        for topic in topics:
            metadata = retrying(partial(consumer.list_topics, topic, timeout=TIMEOUT_S)).topics[topic]
            for partition in metadata.partitions:
                tp = TopicPartition(topic, partition)
                _, high = retrying(partial(consumer.get_watermark_offsets, tp, timeout=TIMEOUT_S))
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
        committed = retrying(lambda: consumer.committed(partitions, timeout=TIMEOUT_S)) if partitions else []
        done = {(tp.topic, tp.partition): max(tp.offset, 0) for tp in committed}
    finally:
        consumer.close()
    return {tp: max(end - done.get(tp, 0), 0) for tp, end in ends.items()}
