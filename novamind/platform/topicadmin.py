"""Apply the topic registry to a cluster: create what is missing, fix configs, report drift."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from novamind.platform.kafka import admin_config
from novamind.platform.settings import KafkaSettings
from schemas.topics import (
    ActionKind,
    Drift,
    TopicAction,
    TopicSpec,
    declared_topics,
    plan_topics,
    render_topic_table,
)

TIMEOUT_S = 30.0


def cluster_topics(kafka: KafkaSettings) -> tuple[TopicSpec, ...]:
    """The registry's topics as named on this cluster (with the configured prefix)."""
    return tuple(
        replace(spec, name=kafka.topic(spec.name)) for spec in declared_topics(partitions=kafka.partitions)
    )


def existing_topics(
    admin: AdminClient, declared: tuple[TopicSpec, ...]
) -> dict[str, tuple[int, dict[str, str]]]:
    """{name: (partitions, config)} of the cluster's declared topics."""
    metadata = admin.list_topics(timeout=TIMEOUT_S)
    declared_names = {spec.name for spec in declared}
    names = [name for name in metadata.topics if name in declared_names]
    configs: dict[str, dict[str, str]] = {}
    if names:
        resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
        for resource, future in admin.describe_configs(resources).items():
            entries = future.result(timeout=TIMEOUT_S)
            configs[resource.name] = {key: entry.value for key, entry in entries.items()}
    return {name: (len(metadata.topics[name].partitions), configs.get(name, {})) for name in names}


def apply_plan(admin: AdminClient, plan: list[TopicAction | Drift], *, replication_factor: int) -> None:
    """Create missing topics and set changed configs (incrementally, leaving others alone)."""
    creates = [
        NewTopic(
            a.topic,
            num_partitions=a.partitions or 1,
            replication_factor=replication_factor,
            config=dict(a.config),
        )
        for a in plan
        if isinstance(a, TopicAction) and a.kind is ActionKind.CREATE
    ]
    if creates:
        for future in admin.create_topics(creates, operation_timeout=TIMEOUT_S).values():
            try:
                future.result(timeout=TIMEOUT_S)
            except KafkaException as exc:  # created meanwhile (metadata lagged): already there
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
        _wait_visible(admin, {t.topic for t in creates})
    alters = [a for a in plan if isinstance(a, TopicAction) and a.kind is ActionKind.ALTER_CONFIG]
    for action in alters:
        entries = [
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
            for key, value in action.config.items()
        ]
        resource = ConfigResource(ResourceType.TOPIC, action.topic, incremental_configs=entries)
        for future in admin.incremental_alter_configs([resource]).values():
            future.result(timeout=TIMEOUT_S)


def _wait_visible(admin: AdminClient, names: set[str]) -> None:
    """Until the cluster's metadata lists the created topics (a broker's metadata can lag the
    controller's answer for a moment), so what follows can use them."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if names <= set(admin.list_topics(timeout=TIMEOUT_S).topics):
            return
        time.sleep(0.1)


def ensure_topics(kafka: KafkaSettings, *, admin: AdminClient | None = None) -> int:
    """Create or check every declared topic; prints what it did; 1 when drift remains."""
    admin = admin or AdminClient(admin_config(kafka))
    declared = cluster_topics(kafka)
    plan = plan_topics(existing_topics(admin, declared), declared=declared)
    apply_plan(admin, plan, replication_factor=kafka.replication_factor)
    for item in plan:
        if isinstance(item, Drift):
            print(f"DRIFT   {item.topic}: {item.setting} is {item.actual}, declared {item.declared}")
        elif item.kind is ActionKind.CREATE:
            print(f"created {item.topic} ({item.partitions} partitions)")
        else:
            print(f"altered {item.topic}: {_format(item.config)}")
    drifts = [item for item in plan if isinstance(item, Drift)]
    if not plan:
        print(f"all {len(declared)} topics exist as declared")
    if drifts:
        print(
            "partition counts are not changed automatically: adding partitions re-maps patient keys "
            "and breaks per-patient order; see README 'Scaling' for how to repartition"
        )
    return 1 if drifts else 0


def print_registry(kafka: KafkaSettings) -> None:
    print(render_topic_table(cluster_topics(kafka)))


def _format(config: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(config.items()))
