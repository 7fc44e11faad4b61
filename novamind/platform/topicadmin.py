"""Apply the topic registry to a cluster and its schema registry: create what is missing, fix
configs, register every value schema's published versions, report drift."""

from __future__ import annotations

import json
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
from fastavro.schema import to_parsing_canonical_form

from novamind.platform.kafka import admin_config
from novamind.platform.settings import KafkaSettings
from schemas.catalog import catalog, full_name
from schemas.codec import registry_text
from schemas.exceptions import IncompatibleSchema
from schemas.registry import ConfluentRegistryClient
from schemas.topics import (
    ActionKind,
    Drift,
    TopicAction,
    TopicSpec,
    declared_topics,
    plan_topics,
    render_topic_table,
    value_subjects,
)

TIMEOUT_S = 30.0
COMPATIBILITY = "BACKWARD"
# Levels at least as strict as BACKWARD for our evolution rules: left as an operator set them.
ACCEPTED_COMPATIBILITY = frozenset({"BACKWARD", "BACKWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"})


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


def registry_client(kafka: KafkaSettings) -> ConfluentRegistryClient | None:
    """The configured schema registry's client; None when records use single-object encoding."""
    if not kafka.schema_registry_url:
        return None
    password = kafka.schema_registry_password
    return ConfluentRegistryClient(
        url=kafka.schema_registry_url,
        username=kafka.schema_registry_username,
        password=password.get_secret_value() if password else None,
    )


def ensure_subjects(kafka: KafkaSettings, *, registry: ConfluentRegistryClient | None = None) -> int:
    """Register every topic's value schemas under the topic-name strategy, oldest published
    version first, with BACKWARD compatibility; prints what it did; 1 when drift remains.

    Keys are not registered: every key is the plain UTF-8 pseudonym (or component name), not
    Avro, so that a patient's records hash to the same partition on every topic and client.
    """
    registry = registry or registry_client(kafka)
    if registry is None:
        print("no schema registry configured: records use single-object encoding, no subjects")
        return 0
    versions = catalog().versions
    subjects = drifts = registered = 0
    for spec in cluster_topics(kafka):
        for record, subject in value_subjects(spec).items():
            subjects += 1
            level = registry.compatibility(subject)
            if level not in ACCEPTED_COMPATIBILITY:
                registry.set_compatibility(subject, COMPATIBILITY)
                was = level or "the global default"
                print(f"set     {subject}: compatibility {COMPATIBILITY} (was {was})")
            texts = [registry_text(v) for v in versions[full_name(record)]]
            problem = _subject_drift(registry, subject, texts)
            if problem:
                drifts += 1
                print(f"DRIFT   {subject}: {problem}")
                continue
            for number, text in enumerate(texts, start=1):
                if registry.lookup(subject, text) is not None:
                    continue
                try:
                    schema_id = registry.register(subject, text)
                except IncompatibleSchema as exc:
                    drifts += 1
                    print(f"DRIFT   {subject}: v{number} of {record} refused by the registry: {exc}")
                    break
                registered += 1
                print(f"registered {subject}: {record} v{number} (id {schema_id})")
    print(
        f"schema registry: {subjects} subjects ({COMPATIBILITY}), {registered} versions registered now; "
        "keys are UTF-8 strings (no key subjects)"
    )
    return 1 if drifts else 0


def _subject_drift(registry: ConfluentRegistryClient, subject: str, texts: list[str]) -> str | None:
    """Why the subject cannot take this build's versions, or None: its newest version must be
    one this build knows (else a newer deployment wrote it, or someone else uses the name)."""
    latest = registry.latest(subject)
    if latest is None:
        return None
    known = {_canonical(text) for text in texts}
    if _canonical(latest[1]) not in known:
        return f"its latest version (id {latest[0]}) is not a published version of this build's schema"
    return None


def _canonical(text: str) -> str:
    try:
        return str(to_parsing_canonical_form(json.loads(text)))
    except Exception:  # a foreign schema this build cannot even parse
        return text


def print_registry(kafka: KafkaSettings) -> None:
    print(render_topic_table(cluster_topics(kafka)))


def _format(config: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(config.items()))
