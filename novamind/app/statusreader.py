"""Read the figures of ``novamind status`` from the cluster through the admin client.

:mod:`novamind.app.status` says what they mean and how they print (pure code).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException
from confluent_kafka import TopicPartition as KafkaTopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from novamind.app.status import (
    GroupView,
    Member,
    Sample,
    Status,
    StatusError,
    TopicPartition,
    build_status,
    dead_letter_figures,
    group_topics,
)
from novamind.platform.kafka import admin_config
from novamind.platform.settings import KafkaSettings
from novamind.platform.topicreader import read_all
from schemas.codec import AvroCodec
from schemas.exceptions import SchemaError
from schemas.topics import WORKERS_GROUP, TopicName

TIMEOUT_S = 10.0


def list_groups(admin: AdminClient, prefix: str) -> list[str]:
    """Ids of the consumer groups whose name starts with ``prefix``."""
    listed = _result(admin.list_consumer_groups(request_timeout=TIMEOUT_S), "list consumer groups")
    return sorted(g.group_id for g in listed.valid if g.group_id.startswith(prefix))


def describe_groups(admin: AdminClient, groups: list[str]) -> list[GroupView]:
    """Each group's state and members with their assigned partitions."""
    if not groups:
        return []
    futures = admin.describe_consumer_groups(groups, request_timeout=TIMEOUT_S)
    views = []
    for group in groups:
        description = _result(futures[group], f"describe group {group}")
        members = tuple(
            Member(
                member_id=m.member_id,
                client_id=m.client_id,
                host=m.host,
                partitions=tuple(sorted((tp.topic, tp.partition) for tp in m.assignment.topic_partitions)),
            )
            for m in description.members
        )
        views.append(GroupView(group=group, state=_state(description.state), members=members))
    return views


def committed_offsets(admin: AdminClient, group: str) -> dict[TopicPartition, int]:
    """{(topic, partition): committed offset} of every partition ``group`` has committed."""
    future = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group)], request_timeout=TIMEOUT_S
    )[group]
    result = _result(future, f"read the committed offsets of group {group}")
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions if tp.offset >= 0}


def watermarks(admin: AdminClient, topics: Iterable[str]) -> dict[TopicPartition, tuple[int, int]]:
    """{(topic, partition): (earliest, end) offset} of the ``topics`` that exist."""
    metadata = admin.list_topics(timeout=TIMEOUT_S)
    partitions = [
        KafkaTopicPartition(topic, p)
        for topic in sorted(set(topics))
        if topic in metadata.topics
        for p in metadata.topics[topic].partitions
    ]
    if not partitions:
        return {}
    bounds: dict[TopicPartition, list[int]] = {(tp.topic, tp.partition): [0, 0] for tp in partitions}
    for index, spec in enumerate((OffsetSpec.earliest(), OffsetSpec.latest())):
        futures = admin.list_offsets({tp: spec for tp in partitions}, request_timeout=TIMEOUT_S)
        for tp, future in futures.items():
            bounds[(tp.topic, tp.partition)][index] = _result(future, f"read offsets of {tp.topic}").offset
    return {tp: (low, high) for tp, (low, high) in bounds.items()}


def take_sample(admin: AdminClient, groups: Iterable[str], topics: Iterable[str]) -> Sample:
    """Committed offsets of ``groups`` and watermarks of ``topics`` plus every committed topic."""
    committed = {group: committed_offsets(admin, group) for group in groups}
    wanted = set(topics) | {t for offsets in committed.values() for t, _ in offsets}
    return Sample(taken_at=time.monotonic(), watermarks=watermarks(admin, wanted), committed=committed)


def collect(
    kafka: KafkaSettings,
    *,
    groups: list[str] | None = None,
    interval_s: float = 5.0,
    read_dead_letters: bool = False,
    admin: AdminClient | None = None,
) -> Status:
    """The status of ``groups`` (default: every ``<prefix>novamind-`` group and the workers group)."""
    # librdkafka's own connection logs would repeat what the one error line below says.
    admin = admin or AdminClient({**admin_config(kafka), "log_level": 0})
    try:
        admin.list_topics(timeout=TIMEOUT_S)
    except KafkaException as exc:
        raise StatusError(f"cannot reach Kafka at {kafka.bootstrap_servers}: {_reason(exc)}") from exc
    try:
        if groups is None:
            workers = kafka.topic(WORKERS_GROUP)
            groups = sorted(set(list_groups(admin, kafka.topic("novamind-"))) | {workers})
        views = describe_groups(admin, groups)
        dead_letter_topic = kafka.topic(TopicName.PIPELINE_DEADLETTER)
        committed = {group: committed_offsets(admin, group) for group in groups}
        topics = {dead_letter_topic}
        for view in views:
            topics |= group_topics(view.group, view, committed[view.group], prefix=kafka.topic_prefix)
        first = Sample(taken_at=time.monotonic(), watermarks=watermarks(admin, topics), committed=committed)
        second = None
        if interval_s > 0:
            time.sleep(interval_s)
            second = take_sample(admin, groups, topics)
            views = describe_groups(admin, groups)
    except KafkaException as exc:
        raise StatusError(
            f"cannot read the consumer groups at {kafka.bootstrap_servers}: {_reason(exc)}"
        ) from exc
    dead = None
    if any(tp[0] == dead_letter_topic for tp in first.watermarks):
        records, undecodable = _dead_letter_records(kafka) if read_dead_letters else (None, 0)
        dead = dead_letter_figures(dead_letter_topic, first, second, records, undecodable=undecodable)
    return build_status(views, first, second, prefix=kafka.topic_prefix, dead_letters=dead)


def _dead_letter_records(kafka: KafkaSettings) -> tuple[list[dict[str, Any]], int]:
    """The decoded records of the dead-letter topic, and how many did not decode."""
    codec = AvroCodec.from_settings(kafka)
    topic = kafka.topic(TopicName.PIPELINE_DEADLETTER)
    try:
        messages = read_all(kafka, topic)
    except TimeoutError as exc:
        raise StatusError(f"cannot read {topic}: {exc}") from exc
    letters, undecodable = [], 0
    for message in messages:
        try:
            letters.append(codec.decode_dict(message.value())[1])
        except SchemaError:
            undecodable += 1
    return letters, undecodable


def _result(future: Any, what: str) -> Any:
    try:
        return future.result(timeout=TIMEOUT_S)
    except KafkaException as exc:
        raise StatusError(f"cannot {what}: {_reason(exc)}") from exc
    except TimeoutError as exc:
        raise StatusError(f"cannot {what}: no answer within {TIMEOUT_S:.0f}s") from exc


def _reason(exc: Exception) -> str:
    error = exc.args[0] if exc.args else None
    return str(error.str()) if isinstance(error, KafkaError) else str(exc)


def _state(state: Any) -> str:
    return str(getattr(state, "name", state))
