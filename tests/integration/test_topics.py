"""`novamind topics create` creates the registry's topics idempotently and reports drift."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from novamind.platform.kafka import admin_config
from novamind.platform.settings import Settings
from novamind.platform.topicadmin import cluster_topics, ensure_topics, existing_topics


def test_create_is_idempotent_and_reports_drift(settings: Settings, run_id: str, capsys) -> None:
    kafka = settings.kafka.model_copy(update={"topic_prefix": f"topics-{run_id}."})
    admin = AdminClient(admin_config(kafka))
    declared = cluster_topics(kafka)

    assert ensure_topics(kafka, admin=admin) == 0
    actual = existing_topics(admin, declared)
    assert {spec.name: spec.partitions for spec in declared} == {n: p for n, (p, _) in actual.items()}
    for spec in declared:
        assert actual[spec.name][1]["cleanup.policy"] == spec.cleanup_policy
    capsys.readouterr()

    assert ensure_topics(kafka, admin=admin) == 0
    assert f"all {len(declared)} topics exist as declared" in capsys.readouterr().out

    # A wrong cleanup policy is corrected; a wrong partition count is reported, never changed.
    features = kafka.topic("patient-daily-features")
    resource = ConfigResource(ResourceType.TOPIC, features, set_config={"cleanup.policy": "compact"})
    for future in admin.alter_configs([resource]).values():
        future.result(timeout=30)
    reports = kafka.topic("patient-reports")
    for future in admin.delete_topics([reports], operation_timeout=30).values():
        future.result(timeout=30)
    _wait_deleted(admin, reports)
    for future in admin.create_topics(
        [NewTopic(reports, num_partitions=kafka.partitions + 1, replication_factor=1)]
    ).values():
        future.result(timeout=30)

    assert ensure_topics(kafka, admin=admin) == 1
    out = capsys.readouterr().out
    assert f"DRIFT   {reports}: partitions is {kafka.partitions + 1}, declared {kafka.partitions}" in out
    assert f"altered {features}: cleanup.policy=delete" in out
    config = existing_topics(admin, declared)[features][1]
    assert config["cleanup.policy"] == "delete"
    declared_features = next(spec for spec in declared if spec.name == features)
    assert config["retention.ms"] == declared_features.config["retention.ms"]  # others left alone


def _wait_deleted(admin: AdminClient, topic: str) -> None:
    import time

    deadline = time.monotonic() + 30
    while topic in admin.list_topics(timeout=10).topics and time.monotonic() < deadline:
        time.sleep(0.2)
