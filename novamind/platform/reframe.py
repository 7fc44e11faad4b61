"""Move a topic's single-object records to the Confluent wire format (docs/consumers.md).

Kafka cannot rewrite a record in place, so :func:`reframe_topic` copies a topic into another,
partition by partition and in offset order: a single-object record gets the registry id of the
schema version that wrote it (the version its fingerprint names, registered under the source
topic's subject) and keeps its Avro body byte for byte; a Confluent record is copied as it is;
bytes that are neither are copied untouched and counted. Keys, timestamps and headers are kept,
so the copy partitions like the source. The dry run only counts, and names per partition the
offset from which every record is already Confluent-framed (where a consumer that reads only
that framing can start).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from novamind.platform.exceptions import UsageError
from novamind.platform.kafka import admin_config, consumer_config, producer_config
from novamind.platform.lag import end_offsets
from novamind.platform.settings import KafkaSettings
from schemas.codec import CONFLUENT_MAGIC, SINGLE_OBJECT_MAGIC, AvroCodec, Framing
from schemas.exceptions import DecodeError
from schemas.topics import declared_topics

TIMEOUT_S = 30.0


class ReframeError(UsageError):
    """The copy could not be made or was not acknowledged in full."""


@dataclass
class PartitionReport:
    """One source partition: how many records of each framing, and the cut-over offset."""

    partition: int
    single_object: int = 0
    confluent: int = 0
    other: int = 0  # tombstones and bytes of neither framing, copied untouched
    cutover: int = 0  # every record from this offset on is Confluent-framed (or not Avro)


@dataclass
class ReframeReport:
    source: str
    target: str
    dry_run: bool
    partitions: list[PartitionReport] = field(default_factory=list)
    copied: int = 0

    @property
    def single_object(self) -> int:
        return sum(p.single_object for p in self.partitions)


def reframe_topic(
    kafka: KafkaSettings, source: str, target: str, *, dry_run: bool = False, timeout_s: float = 600.0
) -> ReframeReport:
    """Copy registry topic ``source`` into ``target`` (both get the environment's prefix) with
    every single-object record re-framed; ``dry_run`` only counts."""
    codec = AvroCodec.from_settings(kafka)
    if codec.framing is not Framing.CONFLUENT:
        raise ReframeError("reframing needs a schema registry: set NOVAMIND_KAFKA__SCHEMA_REGISTRY_URL")
    src, dst = kafka.topic(source), kafka.topic(target)
    if src == dst:
        raise ReframeError("source and target must differ: Kafka cannot rewrite records in place")
    admin = AdminClient(admin_config(kafka))
    topics = admin.list_topics(timeout=TIMEOUT_S).topics
    if src not in topics:
        raise ReframeError(f"topic {src} does not exist")
    partitions = len(topics[src].partitions)
    report = ReframeReport(source=src, target=dst, dry_run=dry_run)
    report.partitions = [PartitionReport(p) for p in range(partitions)]
    if not dry_run:
        _prepare_target(admin, kafka, source, dst, partitions, existing=topics.get(dst))
    producer = None if dry_run else Producer(producer_config(kafka, client_id="reframe"))
    failures: list[str] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failures.append(f"{err.name()}: {err.str()}")

    for message in _read_to_end(kafka, src, timeout_s):
        part = report.partitions[message.partition() or 0]
        value = message.value()
        if value is not None and value[:2] == SINGLE_OBJECT_MAGIC:
            part.single_object += 1
            part.cutover = (message.offset() or 0) + 1
            value = value if dry_run else _to_confluent(codec, value, src)
        elif value is not None and value[:1] == CONFLUENT_MAGIC:
            part.confluent += 1
        else:
            part.other += 1
        if producer is None:
            continue
        timestamp_type, timestamp = message.timestamp()
        options: dict[str, Any] = {"timestamp": timestamp} if timestamp_type != 0 else {}
        while True:
            try:
                producer.produce(
                    dst,
                    key=message.key(),
                    value=value,
                    partition=message.partition(),
                    headers=message.headers(),
                    on_delivery=delivered,
                    **options,
                )
                break
            except BufferError:
                producer.poll(0.05)
        report.copied += 1
        producer.poll(0)
    if producer is not None:
        if producer.flush(timeout_s) > 0:
            failures.append("not every record was acknowledged in time")
        if failures:
            raise ReframeError(f"copy to {dst} incomplete: {failures[0]} ({len(failures)} failures)")
    return report


def _to_confluent(codec: AvroCodec, value: bytes, topic: str) -> bytes:
    try:
        return codec.to_confluent(value, topic=topic)
    except DecodeError:
        return value  # not a record this build can read: copied untouched, like a dead letter


def _prepare_target(
    admin: AdminClient, kafka: KafkaSettings, source: str, dst: str, partitions: int, *, existing: Any
) -> None:
    """Create ``dst`` like the declared ``source`` (same partitions, same configuration); an
    existing target must be empty and have as many partitions."""
    if existing is not None:
        if len(existing.partitions) != partitions:
            raise ReframeError(f"{dst} has {len(existing.partitions)} partitions, the source {partitions}")
        if any(end > 0 for end in end_offsets(kafka, [dst]).values()):
            raise ReframeError(f"{dst} already holds records: copy into a new or empty topic")
        return
    declared = {spec.name: spec for spec in declared_topics(partitions=partitions)}
    config = dict(declared[source].config) if source in declared else {}
    new = NewTopic(dst, num_partitions=partitions, replication_factor=kafka.replication_factor, config=config)
    for future in admin.create_topics([new], operation_timeout=TIMEOUT_S).values():
        future.result(timeout=TIMEOUT_S)
    deadline = time.monotonic() + TIMEOUT_S
    while dst not in admin.list_topics(timeout=TIMEOUT_S).topics and time.monotonic() < deadline:
        time.sleep(0.1)


def _read_to_end(kafka: KafkaSettings, topic: str, timeout_s: float) -> Any:
    """The topic's committed records up to its end now, partition by partition in offset order
    (read-committed: aborted transactional records are not copied)."""
    ends = end_offsets(kafka, [topic])
    config = consumer_config(kafka, group_id=f"reframe-{uuid.uuid4().hex}", client_id="reframe")
    consumer = Consumer({**config, "isolation.level": "read_committed"})
    try:
        for (_, partition), end in sorted(ends.items()):
            if end <= 0:
                continue
            consumer.assign([TopicPartition(topic, partition, 0)])
            deadline = time.monotonic() + timeout_s
            position = 0
            while position < end:
                if time.monotonic() > deadline:
                    raise ReframeError(f"partition {partition} of {topic} not read to its end in time")
                for message in consumer.consume(1000, timeout=0.5):
                    if message.error() is None and (message.offset() or 0) < end:
                        yield message
                position = consumer.position([TopicPartition(topic, partition)])[0].offset
    finally:
        consumer.close()


def print_report(report: ReframeReport) -> None:
    verb = "would copy" if report.dry_run else "copied"
    for part in report.partitions:
        print(
            f"{report.source}[{part.partition}]: {part.single_object} single-object, "
            f"{part.confluent} confluent, {part.other} other; all confluent from offset {part.cutover}"
        )
    total = sum(p.single_object + p.confluent + p.other for p in report.partitions)
    print(
        f"{verb} {total} records from {report.source} to {report.target} "
        f"({report.single_object} re-framed)"
    )
