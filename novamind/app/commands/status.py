"""``novamind status``: consumer-group lag per partition, replicas, throughput, dead letters.

The figures come from the cluster through the admin client (this module); what they mean and
how they print is pure code in :mod:`novamind.app.status`.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

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
    render,
    to_json,
)
from novamind.platform.settings import KafkaSettings, Settings
from schemas.topics import WORKERS_GROUP, TopicName

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

TIMEOUT_S = 10.0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status",
        help="lag per group and partition, replicas, throughput, dead letters",
        description=(
            "Show the consumer groups of this environment (every group named <prefix>novamind-*, "
            "always the workers group): lag per topic and partition, the replicas in each group and "
            "the partitions they own, produced and consumed records per second, and the dead letters."
        ),
    )
    parser.add_argument(
        "--group",
        action="append",
        metavar="GROUP",
        help="only this consumer group (cluster name, repeatable)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=5.0,
        help="seconds between the two offset samples that give throughput; 0 skips it (default 5)",
    )
    parser.add_argument(
        "--dead-letters",
        action="store_true",
        help="read the dead-letter topic and count its records by reason and source topic",
    )
    parser.add_argument(
        "--all-partitions", action="store_true", help="list every partition, also those without lag"
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON (every partition)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from novamind.platform.exceptions import UsageError

    if args.interval < 0:
        raise UsageError(f"--interval must be 0 or more seconds, not {args.interval:g}")
    try:
        status = collect(
            settings.kafka, groups=args.group, interval_s=args.interval, read_dead_letters=args.dead_letters
        )
    except StatusError as exc:
        raise UsageError(str(exc)) from exc
    print(
        json.dumps(to_json(status), indent=2) if args.json else render(status), end="\n" if args.json else ""
    )
    return 0


# ---------------------------------------------------------------- reading the cluster
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
    from confluent_kafka import ConsumerGroupTopicPartitions

    future = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group)], request_timeout=TIMEOUT_S
    )[group]
    result = _result(future, f"read the committed offsets of group {group}")
    return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions if tp.offset >= 0}


def watermarks(admin: AdminClient, topics: Iterable[str]) -> dict[TopicPartition, tuple[int, int]]:
    """{(topic, partition): (earliest, end) offset} of the ``topics`` that exist."""
    from confluent_kafka import TopicPartition as KafkaTopicPartition
    from confluent_kafka.admin import OffsetSpec

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
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    from novamind.platform.kafka import admin_config

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
    from novamind.platform.topicreader import read_all
    from schemas.codec import AvroCodec
    from schemas.exceptions import SchemaError

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
    from confluent_kafka import KafkaException

    try:
        return future.result(timeout=TIMEOUT_S)
    except KafkaException as exc:
        raise StatusError(f"cannot {what}: {_reason(exc)}") from exc
    except TimeoutError as exc:
        raise StatusError(f"cannot {what}: no answer within {TIMEOUT_S:.0f}s") from exc


def _reason(exc: Exception) -> str:
    from confluent_kafka import KafkaError

    error = exc.args[0] if exc.args else None
    return str(error.str()) if isinstance(error, KafkaError) else str(exc)


def _state(state: Any) -> str:
    return str(getattr(state, "name", state))
