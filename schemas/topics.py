"""The topic registry: every topic with its key, value records, partitions, retention, ACLs.

Pure data and pure functions; the admin CLI applies :func:`plan_topics` results and
:func:`acl_bindings`. All patient-keyed topics share one partition count (co-partitioning:
one worker owns all of a patient's streams).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from schemas.catalog import NAMESPACE
from schemas.exceptions import WrongTopic

DEFAULT_PARTITIONS = 12
DAY_MS = 24 * 60 * 60 * 1000
PSEUDONYM_KEY = "patient pseudonym (utf-8)"


class TopicName(StrEnum):
    """Every declared topic's name (before the environment's prefix). Code names a topic by one
    of these, never by a string literal; :func:`declared_topics` declares each of them."""

    EHR_CLINICAL_EVENTS = "ehr-clinical-events"
    WEARABLE_BIOMETRICS = "wearable-biometrics"
    PATIENT_REPORTS = "patient-reports"
    PATIENT_DAILY_FEATURES = "patient-daily-features"
    TWIN_INPUTS = "twin-inputs"
    PATIENT_WINDOWS = "patient-windows"
    TWIN_UPDATES = "twin-updates"
    TWIN_ALERTS = "twin-alerts"
    PIPELINE_DEADLETTER = "pipeline-deadletter"
    AUDIT_EVENTS = "audit-events"
    PIPELINE_ALERTS = "pipeline-alerts"


# The topics the sources write and the workers consume (co-partitioned, keyed by pseudonym).
SOURCE_TOPICS: tuple[TopicName, ...] = (
    TopicName.WEARABLE_BIOMETRICS,
    TopicName.PATIENT_REPORTS,
    TopicName.EHR_CLINICAL_EVENTS,
)
# Consumer groups (before the environment's prefix): the group is the service name.
WORKERS_GROUP = "novamind-workers"  # every worker replica's main loop
SAFETY_GROUP = f"{WORKERS_GROUP}-safety"  # the item-9 watch: its own group, its own pace


class Principal(StrEnum):
    """Service principals (Kafka ``User:<name>``; also the consumer group name)."""

    CONNECTOR_EHR = "connector-ehr"
    CONNECTOR_WEARABLES = "connector-wearables"
    INTAKE = "intake"
    WORKERS = "workers"
    TWIN_CONSUMERS = "twin-consumers"
    AUDITOR = "auditor"


@dataclass(frozen=True, kw_only=True)
class TopicSpec:
    """One declared topic."""

    name: str
    key: str
    values: tuple[str, ...]  # Avro record names the topic carries
    partitions: int
    config: Mapping[str, str]
    writers: tuple[Principal, ...]
    readers: tuple[Principal, ...]
    description: str = ""
    patient_keyed: bool = True
    value_format: str = "avro"  # "avro": values are the records above; else what they are

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", str(self.name))  # a plain str, as clients and YAML expect

    @property
    def cleanup_policy(self) -> str:
        return self.config.get("cleanup.policy", "delete")


def value_subjects(spec: TopicSpec) -> dict[str, str]:
    """Registry subject of each record the topic carries, by the topic-name strategy.

    ``<topic>-value`` when the topic carries one record type (the subject ksqlDB, Flink, Spark
    and Kafka Connect look up). A subject holds one record's versions, so a topic that carries
    several types gets ``<topic>-<record full name>`` per type (Confluent's
    TopicRecordNameStrategy). Topics whose values are not Avro records have none.

    >>> value_subjects(topic("twin-updates"))
    {'TwinUpdate': 'twin-updates-value'}
    >>> value_subjects(topic("patient-reports"))["SymptomReport"]
    'patient-reports-health.novamind.v1.SymptomReport'
    """
    if spec.value_format != "avro":
        return {}
    if len(spec.values) == 1:
        return {spec.values[0]: f"{spec.name}-value"}
    return {record: f"{spec.name}-{NAMESPACE}.{record}" for record in spec.values}


def _delete(days: int) -> dict[str, str]:
    return {"cleanup.policy": "delete", "retention.ms": str(days * DAY_MS)}


def declared_topics(*, partitions: int = DEFAULT_PARTITIONS) -> tuple[TopicSpec, ...]:
    """All topics; ``partitions`` applies to every patient-keyed topic."""
    if partitions < 1:
        raise ValueError("partitions must be >= 1")
    p = Principal
    src_readers = (p.WORKERS,)
    return (
        TopicSpec(
            name=TopicName.EHR_CLINICAL_EVENTS,
            key=PSEUDONYM_KEY,
            values=("ClinicalEvent", "MedicationEvent", "Demographics", "GeneticProfile", "AssessmentResult"),
            partitions=partitions,
            config=_delete(90),
            writers=(p.CONNECTOR_EHR,),
            readers=src_readers,
            description="Coded EHR facts from FHIR R4 exports.",
        ),
        TopicSpec(
            name=TopicName.WEARABLE_BIOMETRICS,
            key=PSEUDONYM_KEY,
            values=("BiometricSample",),
            partitions=partitions,
            config=_delete(90),
            writers=(p.CONNECTOR_WEARABLES,),
            readers=src_readers,
            description="Normalised wearable samples; backfills up to 30 days late.",
        ),
        TopicSpec(
            name=TopicName.PATIENT_REPORTS,
            key=PSEUDONYM_KEY,
            values=("SymptomReport", "AssessmentResult"),
            partitions=partitions,
            config=_delete(90),
            writers=(p.INTAKE,),
            readers=src_readers,
            description="Symptom reports and scored questionnaires from the intake.",
        ),
        TopicSpec(
            name=TopicName.PATIENT_DAILY_FEATURES,
            key=PSEUDONYM_KEY,
            values=("PatientDailyFeatures",),
            partitions=partitions,
            # Not compacted: the key is the pseudonym (co-partitioning), so compaction would
            # keep one day per patient. Consumers take the highest `revision` per date.
            config=_delete(400),
            writers=(p.WORKERS,),
            readers=(p.WORKERS,),
            description="Per-day features; a higher revision supersedes a lower one.",
        ),
        TopicSpec(
            name=TopicName.TWIN_INPUTS,
            key=PSEUDONYM_KEY,
            values=(
                "PatientDailyFeatures",
                "AssessmentResult",
                "SymptomReport",
                "MedicationEvent",
                "GeneticProfile",
                "Demographics",
                "TwinRestore",
            ),
            partitions=partitions,
            # Internal: the one ordered log each twin is folded from (replay equals live). An
            # operator's rollback (TwinRestore) is written here too, by the twin CLI acting with
            # the workers' credentials, so that it takes its place in the patient's order.
            config=_delete(400),
            writers=(p.WORKERS,),
            readers=(p.WORKERS,),
            description="Validated twin inputs of each patient, in the order the twin applies them.",
        ),
        TopicSpec(
            name=TopicName.PATIENT_WINDOWS,
            key="`<pseudonym>|<part>` (utf-8), in the patient's partition",
            values=(),
            partitions=partitions,
            # Internal changelog of the workers' window state: each patient's state as keyed
            # parts and a journal (workers/features/parts.py), written in the transaction of
            # the batch that changed them.
            config={
                "cleanup.policy": "compact",
                "max.message.bytes": str(16 * 1024 * 1024),
                "min.cleanable.dirty.ratio": "0.1",
                "segment.ms": str(DAY_MS // 24),
            },
            writers=(p.WORKERS,),
            readers=(p.WORKERS,),
            description="Workers' per-patient window state (changelog, compacted).",
            value_format="packed binary state parts",
        ),
        TopicSpec(
            name=TopicName.TWIN_UPDATES,
            key=PSEUDONYM_KEY,
            values=("TwinUpdate",),
            partitions=partitions,
            config=_delete(30),
            writers=(p.WORKERS,),
            readers=(p.TWIN_CONSUMERS,),
            description="Twin state after each update.",
        ),
        TopicSpec(
            name=TopicName.TWIN_ALERTS,
            key=PSEUDONYM_KEY,
            values=("TwinAlert",),
            partitions=partitions,
            config=_delete(90),
            writers=(p.WORKERS,),
            readers=(p.TWIN_CONSUMERS,),
            description="Clinical alerts (item-9 safety first).",
        ),
        TopicSpec(
            name=TopicName.PIPELINE_DEADLETTER,
            key="original message key (bytes, usually the pseudonym)",
            values=("DeadLetter",),
            partitions=partitions,
            config=_delete(30),
            writers=(p.WORKERS,),
            readers=(p.AUDITOR,),
            description="Undecodable or invalid messages with their original bytes.",
        ),
        TopicSpec(
            name=TopicName.AUDIT_EVENTS,
            key="patient pseudonym (utf-8), else the actor",
            values=("AuditEvent",),
            partitions=partitions,
            config=_delete(6 * 365),
            writers=(p.CONNECTOR_EHR, p.CONNECTOR_WEARABLES, p.INTAKE, p.WORKERS, p.TWIN_CONSUMERS),
            readers=(p.AUDITOR,),
            description="Every collection of and access to patient data (6-year retention).",
        ),
        TopicSpec(
            name=TopicName.PIPELINE_ALERTS,
            key="component name (utf-8)",
            values=("PipelineAlert",),
            partitions=3,
            config=_delete(7),
            writers=(p.CONNECTOR_EHR, p.CONNECTOR_WEARABLES, p.INTAKE, p.WORKERS),
            readers=(p.AUDITOR,),
            description="Operational alerts about the pipeline, no PHI.",
            patient_keyed=False,
        ),
    )


def topic(name: str, *, partitions: int = DEFAULT_PARTITIONS) -> TopicSpec:
    """The declared topic called ``name``; KeyError when undeclared."""
    for spec in declared_topics(partitions=partitions):
        if spec.name == name:
            return spec
    raise KeyError(name)


def carried_records() -> Mapping[str, frozenset[str]]:
    """Topic name -> the record names its values may be (the registry's ``values``)."""
    return _CARRIED


def check_carries(topic_name: str, record_name: str) -> None:
    """Raise :class:`WrongTopic` unless the declared topic ``topic_name`` carries ``record_name``."""
    carried = _CARRIED.get(topic_name)
    if carried is None or record_name not in carried:
        allowed = ", ".join(sorted(carried)) if carried else "no declared records"
        raise WrongTopic(f"topic {topic_name} carries {allowed}, not {record_name}")


def record_routes(*topics: TopicName) -> Mapping[str, TopicName]:
    """Record name -> the first of ``topics`` (in the order given) that carries it.

    Producers route by record type with this instead of a copied table: the order settles a
    record two topics carry (``AssessmentResult``: the EHR's own topic or ``patient-reports``).
    """
    routes: dict[str, TopicName] = {}
    for name in topics:
        for record in sorted(_CARRIED[name]):
            routes.setdefault(record, name)
    return routes


_CARRIED: Mapping[str, frozenset[str]] = {spec.name: frozenset(spec.values) for spec in declared_topics()}

# The source topics that carry assessment results: the item-9 watch reads each of them with a
# consumer of its own (patient-reports from the intake, ehr-clinical-events from the FHIR
# connector), so neither topic's backlog sits in front of the other's safety alerts.
SAFETY_TOPICS: tuple[TopicName, ...] = tuple(t for t in SOURCE_TOPICS if "AssessmentResult" in _CARRIED[t])


# ---------------------------------------------------------------- planning
class ActionKind(StrEnum):
    CREATE = "create"
    ALTER_CONFIG = "alter_config"


@dataclass(frozen=True, kw_only=True)
class TopicAction:
    """A change the admin can apply safely."""

    kind: ActionKind
    topic: str
    partitions: int | None = None
    config: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Drift:
    """A difference that must not be fixed automatically (e.g. partition count of a keyed
    topic: adding partitions re-maps keys and breaks per-patient order)."""

    topic: str
    setting: str
    declared: str
    actual: str


def plan_topics(
    existing: Mapping[str, tuple[int, Mapping[str, str]]],
    *,
    declared: tuple[TopicSpec, ...] | None = None,
) -> list[TopicAction | Drift]:
    """Actions and drifts turning ``existing`` {name: (partitions, config)} into the declared
    topics. Undeclared topics (another application's, Kafka's internal ones) are ignored."""
    plan: list[TopicAction | Drift] = []
    for spec in declared or declared_topics():
        if spec.name not in existing:
            plan.append(
                TopicAction(
                    kind=ActionKind.CREATE,
                    topic=spec.name,
                    partitions=spec.partitions,
                    config=dict(spec.config),
                )
            )
            continue
        partitions, config = existing[spec.name]
        if partitions != spec.partitions:
            plan.append(
                Drift(
                    topic=spec.name,
                    setting="partitions",
                    declared=str(spec.partitions),
                    actual=str(partitions),
                )
            )
        changed = {k: v for k, v in spec.config.items() if config.get(k) != v}
        if changed:
            plan.append(TopicAction(kind=ActionKind.ALTER_CONFIG, topic=spec.name, config=changed))
    return plan


def co_partitioning_problems(topics: tuple[TopicSpec, ...] | None = None) -> list[str]:
    """Names of patient-keyed topics whose partition count differs from the others."""
    keyed = [t for t in topics or declared_topics() if t.patient_keyed]
    counts = {t.partitions for t in keyed}
    if len(counts) <= 1:
        return []
    expected = max(counts, key=lambda c: sum(t.partitions == c for t in keyed))
    return [t.name for t in keyed if t.partitions != expected]


# ---------------------------------------------------------------- ACLs
@dataclass(frozen=True, order=True)
class AclBinding:
    """Allow ``principal`` ``operation`` on ``resource_type`` ``resource_name`` (literal)."""

    principal: str  # "User:<name>"
    resource_type: str  # TOPIC | GROUP
    resource_name: str
    operation: str  # READ | WRITE | DESCRIBE


def acl_bindings(topics: tuple[TopicSpec, ...] | None = None) -> list[AclBinding]:
    """Least-privilege allow list derived from each topic's readers and writers; readers
    also get READ on the consumer group named after them."""
    bindings: set[AclBinding] = set()
    for spec in topics or declared_topics():
        for writer in spec.writers:
            for op in ("WRITE", "DESCRIBE"):
                bindings.add(AclBinding(f"User:{writer}", "TOPIC", spec.name, op))
        for reader in spec.readers:
            for op in ("READ", "DESCRIBE"):
                bindings.add(AclBinding(f"User:{reader}", "TOPIC", spec.name, op))
            bindings.add(AclBinding(f"User:{reader}", "GROUP", str(reader), "READ"))
    return sorted(bindings)


# ---------------------------------------------------------------- documentation
def _retention(spec: TopicSpec) -> str:
    ms = spec.config.get("retention.ms")
    days = f"{int(ms) // DAY_MS} d" if ms and int(ms) >= 0 else "forever"
    return f"{spec.cleanup_policy}, {days}"


def render_topic_table(topics: tuple[TopicSpec, ...] | None = None) -> str:
    """Markdown table of the topics (the README embeds it; a test keeps them equal)."""
    rows = [
        "| topic | key | value records | partitions | cleanup, retention | writers | readers |",
        "|---|---|---|---|---|---|---|",
    ]
    for spec in topics or declared_topics():
        rows.append(
            f"| `{spec.name}` | {spec.key} | {', '.join(spec.values) or spec.value_format} "
            f"| {spec.partitions} "
            f"| {_retention(spec)} | {', '.join(spec.writers)} | {', '.join(spec.readers)} |"
        )
    return "\n".join(rows) + "\n"


README = Path(__file__).parent / "README.md"
_START, _END = "<!-- topics:start -->\n", "<!-- topics:end -->"


def readme_with_table(text: str, table: str) -> str:
    """``text`` with the topic table between its markers replaced by ``table``."""
    head, rest = text.split(_START, 1)
    return head + _START + table + _END + rest.split(_END, 1)[1]


def main() -> None:
    """Rewrite the topic table in schemas/README.md."""
    README.write_text(readme_with_table(README.read_text(), render_topic_table()))


if __name__ == "__main__":
    main()
