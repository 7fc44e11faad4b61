"""`novamind status` on the real broker: lag, replicas, throughput and dead letters of a group."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from novamind.app.cli import build_parser
from novamind.app.status import WORKERS_GROUP, GroupView, build_status
from novamind.app.statusreader import collect, take_sample
from novamind.platform.exceptions import UsageError
from novamind.platform.kafka import admin_config, consumer_config
from novamind.platform.settings import KafkaSettings, Settings
from novamind.platform.topicadmin import ensure_topics
from schemas.codec import AvroCodec
from schemas.models import DeadLetter

REPLICA = "status-test-replica"
# Records produced to each partition of wearable-biometrics, and what the group commits.
PRODUCED = {0: 10, 1: 5, 2: 3, 3: 7}
COMMITTED = {0: 4, 1: 5, 3: 0}  # partition 2: never committed


@pytest.fixture(scope="module")
def kafka(settings: Settings, run_id: str) -> KafkaSettings:
    kafka = settings.kafka.model_copy(update={"topic_prefix": f"status-{run_id}."})
    assert ensure_topics(kafka) == 0
    return kafka


def produce(kafka: KafkaSettings, topic: str, per_partition: dict[int, int], value: bytes = b"x") -> None:
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    for partition, count in per_partition.items():
        for i in range(count):
            producer.produce(topic, key=f"p_{partition}_{i}".encode(), value=value, partition=partition)
    assert producer.flush(30) == 0


def dead_letter(codec: AvroCodec, kafka: KafkaSettings, error_class: str, offset: int) -> bytes:
    return codec.encode(
        DeadLetter(
            event_id=f"dl-{offset}",
            source="tests.status",
            original_value=b"\x00bad",
            error_class=error_class,
            reason=f"{error_class} in a test",
            source_topic=kafka.topic("wearable-biometrics"),
            source_partition=0,
            source_offset=offset,
            first_seen_time=datetime(2026, 1, 1, tzinfo=UTC),
        ),
        topic=kafka.topic("pipeline-deadletter"),
    )


def join_group(kafka: KafkaSettings, topic: str) -> Consumer:
    """A plain consumer in the workers' group that owns every partition of ``topic``."""
    consumer = Consumer(consumer_config(kafka, group_id=kafka.topic(WORKERS_GROUP), client_id=REPLICA))
    consumer.subscribe([topic])
    deadline = time.monotonic() + 60
    while not consumer.assignment():
        assert time.monotonic() < deadline, "the consumer was not assigned partitions within 60 s"
        consumer.poll(0.5)
    return consumer


def commit(consumer: Consumer, topic: str, offsets: dict[int, int]) -> None:
    consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)


def test_status_reports_lag_replicas_throughput_and_dead_letters(kafka: KafkaSettings) -> None:
    topic = kafka.topic("wearable-biometrics")
    group = kafka.topic(WORKERS_GROUP)
    codec = AvroCodec.from_settings(kafka)
    produce(kafka, topic, PRODUCED)
    dlq = kafka.topic("pipeline-deadletter")
    for offset, reason in enumerate(["LateEvent", "LateEvent", "OutOfRange"]):
        produce(kafka, dlq, {offset % 2: 1}, value=dead_letter(codec, kafka, reason, offset))
    produce(kafka, dlq, {1: 1}, value=b"not a dead letter")

    consumer = join_group(kafka, topic)
    try:
        commit(consumer, topic, COMMITTED)
        status = collect(kafka, interval_s=0, read_dead_letters=True)

        (workers,) = [g for g in status.groups if g.group == group]
        assert [m.client_id for m in workers.members] == [REPLICA]
        assert set(workers.members[0].partitions) == {(topic, p) for p in PRODUCED}
        lags = {p.partition: p for p in workers.partitions if p.topic == topic}
        assert {p: row.lag for p, row in lags.items()} == {0: 6, 1: 0, 2: 3, 3: 7}
        assert lags[2].committed is None and lags[0].committed == 4
        assert {row.owner for row in lags.values()} == {REPLICA}
        # The other source topics are reported too, empty.
        assert workers.lag_by_topic() == {
            topic: 16,
            kafka.topic("patient-reports"): 0,
            kafka.topic("ehr-clinical-events"): 0,
        }
        dead = status.dead_letters
        assert dead is not None
        assert (dead.retained, dead.read, dead.undecodable) == (4, 4, 1)
        assert dead.by_reason == {"LateEvent": 2, "OutOfRange": 1}
        assert dead.by_source == {topic: 3}

        # Throughput: 20 records produced and 10 committed between two samples.
        admin = AdminClient(admin_config(kafka))
        first = take_sample(admin, [group], [topic])
        produce(kafka, topic, {0: 20})
        commit(consumer, topic, {0: 14})
        second = take_sample(admin, [group], [topic])
        seconds = second.taken_at - first.taken_at
        view = GroupView(group=group, state=workers.state, members=workers.members)
        (rated,) = build_status([view], first, second, prefix=kafka.topic_prefix).groups
        (rate,) = [r for r in rated.rates if r.topic == topic]
        assert rate.produced_per_s * seconds == pytest.approx(20)
        assert rate.consumed_per_s is not None and rate.consumed_per_s * seconds == pytest.approx(10)
        assert rated.total_lag == 16 + 20 - 10
    finally:
        consumer.close()


def test_cli_prints_json_and_refuses_an_unreachable_broker(
    kafka: KafkaSettings, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    scoped = settings.model_copy(update={"kafka": kafka})
    args = build_parser().parse_args(["status", "--json", "--interval", "0.5", "--group", "no-such-group"])
    assert args.handler(args, scoped) == 0
    data = json.loads(capsys.readouterr().out)
    assert [g["group"] for g in data["groups"]] == ["no-such-group"]
    assert data["groups"][0]["members"] == [] and data["groups"][0]["total_lag"] == 0
    assert data["interval_s"] >= 0.5

    args = build_parser().parse_args(["status", "--interval", "0"])
    unreachable = settings.model_copy(
        update={"kafka": kafka.model_copy(update={"bootstrap_servers": "127.0.0.1:1"})}
    )
    with pytest.raises(UsageError, match=r"cannot reach Kafka at 127\.0\.0\.1:1"):
        args.handler(args, unreachable)
