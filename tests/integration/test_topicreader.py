"""read_all against the real broker: every partition is read to its end, even when an end
offset is first reported short."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from novamind.platform import topicreader
from novamind.platform.kafka import admin_config, producer_config
from novamind.platform.settings import Settings

PARTITIONS = 3


@pytest.fixture
def topic(settings: Settings, run_id: str) -> Iterator[str]:
    name = f"reader-{run_id}"
    admin = AdminClient(admin_config(settings.kafka))
    created = admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)])
    for future in created.values():
        future.result(timeout=30)
    producer = Producer(producer_config(settings.kafka, client_id="reader-test"))
    for partition in range(PARTITIONS):
        for i in range(4):
            producer.produce(name, key=b"k", value=f"{partition}-{i}".encode(), partition=partition)
    assert producer.flush(30) == 0
    yield name
    for future in admin.delete_topics([name], operation_timeout=30).values():
        future.result(timeout=30)


def values(messages: list) -> list[str]:
    return [m.value().decode() for m in messages]


def test_every_partition_is_read_to_its_end(settings: Settings, topic: str) -> None:
    assert values(topicreader.read_all(settings.kafka, topic)) == [
        f"{p}-{i}" for p in range(PARTITIONS) for i in range(4)
    ]


def test_an_end_reported_short_at_first_is_read_to_the_real_end(
    settings: Settings, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_ends = topicreader._ends
    calls = []

    def first_short(kafka, name):
        ends = real_ends(kafka, name)
        calls.append(ends)
        return {p: (1 if p == 1 else 0) for p in ends} if len(calls) == 1 else ends

    monkeypatch.setattr(topicreader, "_ends", first_short)
    got = values(topicreader.read_all(settings.kafka, topic))
    assert got == [f"{p}-{i}" for p in range(PARTITIONS) for i in range(4)]
    assert len(calls) >= 2 and calls[-1] == dict.fromkeys(range(PARTITIONS), 4)
