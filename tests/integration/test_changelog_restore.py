"""Restoring window state: the latest committed value per key, tombstones delete, progress ends
at zero offsets left."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from novamind.platform.kafka import admin_config
from novamind.platform.settings import Settings
from workers.runtime import clients
from workers.runtime.state import read_changelog


def test_read_changelog_keeps_the_latest_committed_value(settings: Settings, run_id: str) -> None:
    topic = f"restore-{run_id}"
    admin = AdminClient(admin_config(settings.kafka))
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(timeout=30)
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "transactional.id": topic})
    producer.init_transactions(30)
    producer.begin_transaction()
    for key, value in ((b"a", b"1"), (b"b", b"1"), (b"a", b"2"), (b"b", None)):
        producer.produce(topic, key=key, value=value, partition=0)
    producer.commit_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, key=b"a", value=b"aborted", partition=0)
    producer.abort_transaction(30)

    seen: list[tuple[int, int, int]] = []
    consumer = Consumer(clients.restore_consumer(settings))
    probe = Consumer(clients.offset_probe(settings))
    try:
        restored, reached = _read(consumer, topic, {0: None, 1: None}, probe, seen)
        tail, _ = _read(consumer, topic, {0: 2, 1: None}, probe, [])  # from a checkpoint
    finally:
        consumer.close()
        probe.close()
    assert restored == {0: {b"a": b"2"}, 1: {}}
    assert seen[-2:] == [(0, 4, 0), (1, 0, 0)]
    assert reached[0] >= 4 and reached[1] == 0
    assert tail == {0: {b"a": b"2", b"b": None}, 1: {}}


def _read(consumer, topic, starts, probe, seen):
    latest: dict[int, dict[bytes, bytes | None]] = {}

    def apply(partition, records):
        for key, value in records:
            latest.setdefault(partition, {})[key] = value

    reached = read_changelog(
        consumer, topic, starts, probe=probe, apply=apply, progress=lambda *p: seen.append(p)
    )
    for p in starts:
        if starts[p] is None:
            latest.setdefault(p, {})
            latest[p] = {k: v for k, v in latest[p].items() if v is not None}
    return latest, reached


def test_read_changelog_waits_for_a_transaction_open_at_the_log_end(settings: Settings, run_id: str) -> None:
    """A state write whose markers are still pending is read, not skipped at the stable offset."""
    topic = f"restore-open-{run_id}"
    admin = AdminClient(admin_config(settings.kafka))
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "transactional.id": topic})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, key=b"a", value=b"pending", partition=0)
    producer.flush(30)

    consumer = Consumer(clients.restore_consumer(settings))
    probe = Consumer(clients.offset_probe(settings))
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            reading = pool.submit(_read, consumer, topic, {0: None}, probe, [])
            time.sleep(2.0)
            assert not reading.done()  # the open transaction's fate is not known yet
            producer.commit_transaction(30)
            restored, _ = reading.result(timeout=60)
    finally:
        consumer.close()
        probe.close()
    assert restored == {0: {b"a": b"pending"}}
