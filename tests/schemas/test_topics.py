"""The topic registry: co-partitioning, README table, plan/drift and ACLs."""

from __future__ import annotations

import pytest

from schemas.catalog import catalog
from schemas.topics import (
    README,
    AclBinding,
    ActionKind,
    Drift,
    Principal,
    TopicAction,
    acl_bindings,
    co_partitioning_problems,
    declared_topics,
    plan_topics,
    readme_with_table,
    render_topic_table,
    topic,
)

SPEC_TOPICS = {
    "ehr-clinical-events",
    "wearable-biometrics",
    "patient-reports",
    "patient-daily-features",
    "twin-inputs",
    "patient-windows",
    "twin-updates",
    "twin-alerts",
    "pipeline-deadletter",
    "audit-events",
    "pipeline-alerts",
}


def existing(partitions: int = 12) -> dict[str, tuple[int, dict[str, str]]]:
    return {t.name: (t.partitions, dict(t.config)) for t in declared_topics(partitions=partitions)}


def test_declared_topics_match_the_spec() -> None:
    names = [t.name for t in declared_topics()]
    assert set(names) == SPEC_TOPICS and len(names) == len(set(names))
    assert topic("patient-reports").values == ("SymptomReport", "AssessmentResult")


def test_every_value_type_is_a_known_record() -> None:
    known = set(catalog().record_names)
    for spec in declared_topics():
        if spec.value_format == "avro":
            assert spec.values and set(spec.values) <= known, spec.name
        else:
            assert not spec.values, spec.name


@pytest.mark.parametrize("partitions", [1, 12, 24])
def test_patient_topics_are_co_partitioned(partitions: int) -> None:
    topics = declared_topics(partitions=partitions)
    assert co_partitioning_problems(topics) == []
    assert {t.partitions for t in topics if t.patient_keyed} == {partitions}


def test_co_partitioning_problem_is_named() -> None:
    topics = declared_topics()
    from dataclasses import replace

    broken = (replace(topics[0], partitions=6), *topics[1:])
    assert co_partitioning_problems(broken) == [topics[0].name]


def test_readme_table_is_current() -> None:
    text = README.read_text()
    assert readme_with_table(text, render_topic_table()) == text


def test_plan_creates_missing_topics() -> None:
    plan = plan_topics({})
    assert {a.topic for a in plan} == SPEC_TOPICS
    assert all(isinstance(a, TopicAction) and a.kind is ActionKind.CREATE for a in plan)
    biometrics = next(a for a in plan if isinstance(a, TopicAction) and a.topic == "wearable-biometrics")
    assert biometrics.partitions == 12 and biometrics.config["cleanup.policy"] == "delete"


def test_plan_is_empty_when_in_sync_and_ignores_undeclared_topics() -> None:
    assert plan_topics(existing() | {"__consumer_offsets": (50, {})}) == []


def test_plan_reports_partition_drift_without_fixing_it() -> None:
    actual = existing() | {"twin-updates": (6, dict(topic("twin-updates").config))}
    assert plan_topics(actual) == [
        Drift(topic="twin-updates", setting="partitions", declared="12", actual="6")
    ]


def test_plan_alters_drifted_config_only() -> None:
    config = dict(topic("twin-alerts").config) | {"cleanup.policy": "compact", "segment.ms": "1"}
    assert plan_topics(existing() | {"twin-alerts": (12, config)}) == [
        TopicAction(kind=ActionKind.ALTER_CONFIG, topic="twin-alerts", config={"cleanup.policy": "delete"})
    ]


def test_acls_follow_readers_and_writers() -> None:
    acls = set(acl_bindings())
    assert AclBinding("User:workers", "TOPIC", "wearable-biometrics", "READ") in acls
    assert AclBinding("User:workers", "GROUP", "workers", "READ") in acls
    assert AclBinding("User:connector-wearables", "TOPIC", "wearable-biometrics", "WRITE") in acls
    assert not any(a.principal == "User:connector-wearables" and a.operation == "READ" for a in acls)
    assert not any(
        a.principal == "User:twin-consumers" and a.resource_name == "wearable-biometrics" for a in acls
    )
    assert {a.principal for a in acls} == {f"User:{p}" for p in Principal}


def test_partitions_must_be_positive() -> None:
    with pytest.raises(ValueError):
        declared_topics(partitions=0)
