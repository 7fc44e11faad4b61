"""ACL derivation from the topic registry: least privilege, as data (no broker needed)."""

from __future__ import annotations

from confluent_kafka.admin import AclOperation, AclPermissionType, ResourcePatternType, ResourceType

from novamind.platform.privacy.acls import (
    WORKERS_GROUPS,
    WORKERS_TRANSACTIONAL_PREFIX,
    Grant,
    acl_drift,
    desired_grants,
)
from schemas.topics import Principal, declared_topics

RAW_TOPICS = ("ehr-clinical-events", "wearable-biometrics", "patient-reports")


def ops(principal: Principal, resource: str, kind: str = "TOPIC") -> set[str]:
    return {
        g.operation
        for g in desired_grants()
        if g.principal == f"User:{principal}" and g.resource_type == kind and g.resource_name == resource
    }


def test_grants_follow_the_registry_readers_and_writers() -> None:
    for spec in declared_topics():
        for writer in spec.writers:
            assert {"WRITE", "DESCRIBE"} <= ops(writer, spec.name), (writer, spec.name)
        for reader in spec.readers:
            assert {"READ", "DESCRIBE"} <= ops(reader, spec.name), (reader, spec.name)
            assert "READ" in ops(reader, str(reader), "GROUP")


def test_nobody_gets_more_than_the_registry_declares_on_declared_topics() -> None:
    declared = {spec.name: spec for spec in declared_topics()}
    for grant in desired_grants():
        if grant.resource_type != "TOPIC" or grant.resource_name not in declared:
            continue
        spec = declared[grant.resource_name]
        name = grant.principal.removeprefix("User:")
        if grant.operation == "WRITE":
            assert name in spec.writers
        elif grant.operation == "READ":
            assert name in spec.readers
        else:
            assert grant.operation == "DESCRIBE"
            assert name in spec.writers or name in spec.readers


def test_wearable_connector_only_writes() -> None:
    mine = [g for g in desired_grants() if g.principal == "User:connector-wearables"]
    assert mine and all(g.operation in {"WRITE", "DESCRIBE"} for g in mine)
    assert ops(Principal.CONNECTOR_WEARABLES, "wearable-biometrics") == {"WRITE", "DESCRIBE"}


def test_downstream_consumers_never_see_raw_phi_topics() -> None:
    for raw in RAW_TOPICS:
        assert ops(Principal.TWIN_CONSUMERS, raw) == set()
    assert "READ" in ops(Principal.TWIN_CONSUMERS, "twin-updates")


def test_workers_read_sources_write_derived_never_write_sources() -> None:
    for raw in RAW_TOPICS:
        assert "READ" in ops(Principal.WORKERS, raw)
        assert "WRITE" not in ops(Principal.WORKERS, raw)
    for derived in ("patient-daily-features", "twin-updates", "twin-alerts", "pipeline-deadletter"):
        assert "WRITE" in ops(Principal.WORKERS, derived)


def test_workers_get_their_groups_and_transactional_ids_only_by_prefix() -> None:
    grants = desired_grants()
    for group in WORKERS_GROUPS:
        assert Grant("User:workers", "GROUP", group, "READ") in grants
    prefixed = [g for g in grants if g.pattern == "PREFIXED"]
    assert {(g.principal, g.resource_type, g.resource_name) for g in prefixed} == {
        ("User:workers", "TRANSACTIONAL_ID", WORKERS_TRANSACTIONAL_PREFIX)
    }
    assert {g.operation for g in prefixed} == {"WRITE", "DESCRIBE"}
    # No principal can create topics: every topic, the changelog too, is declared.
    assert not [g for g in grants if g.operation == "CREATE"]


def test_no_cluster_or_wildcard_grants() -> None:
    for grant in desired_grants():
        assert grant.resource_type in {"TOPIC", "GROUP", "TRANSACTIONAL_ID"}
        assert grant.resource_name not in {"*", ""}
        assert grant.operation != "ALL"


def test_grants_are_sorted_and_unique() -> None:
    grants = desired_grants()
    assert grants == sorted(set(grants))


def test_grant_to_confluent_binding_and_back() -> None:
    grant = Grant("User:workers", "TRANSACTIONAL_ID", WORKERS_TRANSACTIONAL_PREFIX, "WRITE", "PREFIXED")
    binding = grant.to_binding()
    assert binding.restype == ResourceType.TRANSACTIONAL_ID
    assert binding.resource_pattern_type == ResourcePatternType.PREFIXED
    assert binding.operation == AclOperation.WRITE
    assert binding.permission_type == AclPermissionType.ALLOW
    assert binding.host == "*"
    assert Grant.from_binding(binding) == grant


def test_acl_drift_reports_missing_and_extra() -> None:
    a = Grant("User:a", "TOPIC", "t", "READ")
    b = Grant("User:b", "TOPIC", "t", "WRITE")
    c = Grant("User:c", "GROUP", "c", "READ")
    assert acl_drift([a, b], [b, c]) == ([c], [a])
    assert acl_drift(desired_grants(), desired_grants()) == ([], [])
