"""Authentication and least-privilege ACLs on a real secured broker (SASL/SCRAM + ACLs).

One secured KRaft broker per module, started from the jars of ``make services`` on free ports;
users and ACLs come from the topic registry (novamind.privacy.acls). Every wait is bounded.
"""

from __future__ import annotations

import secrets
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import SecretStr

from novamind.kafka import consumer_config, producer_config
from novamind.privacy.acls import (
    acl_drift,
    apply_grants,
    create_scram_users,
    desired_grants,
    existing_grants,
)
from novamind.privacy.secure_broker import SecureBroker
from novamind.settings import Settings
from schemas.topics import Principal, declared_topics
from tests.services import ServiceAddresses

RAW_TOPICS = ("patient-reports", "wearable-biometrics", "ehr-clinical-events")
DERIVED_TOPICS = ("patient-daily-features", "twin-updates", "twin-alerts", "pipeline-deadletter")
TIMEOUT = 20.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Cluster:
    broker: SecureBroker
    passwords: dict[str, str]

    def as_user(self, name: str) -> Any:
        return self.broker.kafka_settings(name, self.passwords[name])


@pytest.fixture(scope="module")
def cluster(services: ServiceAddresses, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    libs = Settings().local.home / "kafka" / "libs"
    if not any(libs.glob("kafka_2.13-*.jar")):
        pytest.skip(f"the secured broker runs from the jars of `make services` ({libs})")
    broker = SecureBroker(
        home=Path(tmp_path_factory.mktemp("secure-kafka")),
        kafka_libs=libs,
        admin_password=SecretStr(secrets.token_urlsafe(24)),
        controller_password=SecretStr(secrets.token_urlsafe(24)),
        port=_free_port(),
        controller_port=_free_port(),
    )
    with broker:
        admin = AdminClient(broker.admin_config())
        passwords = {str(p): secrets.token_urlsafe(24) for p in Principal}
        create_scram_users(admin, passwords)
        topics = declared_topics(partitions=1)
        futures = admin.create_topics(
            [NewTopic(t.name, t.partitions, 1, config=dict(t.config)) for t in topics]
        )
        for future in futures.values():
            future.result(timeout=TIMEOUT)
        apply_grants(admin, desired_grants(topics))
        yield Cluster(broker, passwords)


# ---------------------------------------------------------------- client helpers
def produce(kafka: Any, topic: str, *, client_id: str = "acl-test") -> KafkaError | None:
    """Produce one record with the pipeline's idempotent producer; the delivery error or None."""
    conf = {**producer_config(kafka, client_id=client_id), "message.timeout.ms": 10_000, "log_level": 0}
    producer = Producer(conf)
    outcome: list[KafkaError | None] = []
    producer.produce(
        topic, key=b"p_" + b"0" * 32, value=b"x", on_delivery=lambda err, _msg: outcome.append(err)
    )
    producer.flush(TIMEOUT)
    assert outcome, f"no delivery report within {TIMEOUT}s"
    return outcome[0]


def fetch(kafka: Any, topic: str, *, group: str) -> list[bytes] | KafkaError:
    """Read ``topic`` from the beginning as a member of ``group``: the values, or the error."""
    conf = {**consumer_config(kafka, group_id=group, client_id="acl-test"), "log_level": 0}
    consumer = Consumer(conf)
    values: list[bytes] = []
    try:
        consumer.subscribe([topic])
        for _ in range(int(TIMEOUT)):
            message = consumer.poll(1.0)
            if message is None:
                if values:
                    return values
                continue
            error = message.error()
            if error is not None:
                return error
            values.append(message.value() or b"")
        return values
    finally:
        consumer.close()


def fetch_assigned(kafka: Any, topic: str) -> set[int]:
    """Read partition 0 by assignment (no group membership): the error codes seen until the
    topic is refused or the time is up; 0 stands for a record read. (librdkafka still asks
    for a group coordinator, which a principal without group ACLs is refused too.)"""
    conf = {**consumer_config(kafka, group_id=f"acl-{uuid.uuid4().hex[:6]}", client_id="t"), "log_level": 0}
    consumer = Consumer(conf)
    seen: set[int] = set()
    try:
        # Without DESCRIBE the topic is hidden: metadata answers TOPIC_AUTHORIZATION_FAILED.
        metadata = consumer.list_topics(topic, timeout=TIMEOUT).topics[topic]
        if metadata.error is not None:
            seen.add(metadata.error.code())
            return seen
        consumer.assign([TopicPartition(topic, 0, 0)])
        for _ in range(int(TIMEOUT)):
            message = consumer.poll(1.0)
            if message is not None:
                error = message.error()
                seen.add(0 if error is None else error.code())  # 0: a record was read
            if KafkaError.TOPIC_AUTHORIZATION_FAILED in seen or 0 in seen:
                break
        return seen
    finally:
        consumer.close()


def authentication_errors(conf: dict[str, Any]) -> list[KafkaError]:
    """The errors a client reports while trying to list topics with ``conf``."""
    errors: list[KafkaError] = []
    conf = {**conf, "error_cb": errors.append, "log_level": 0}
    admin = AdminClient(conf)
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)
    for _ in range(int(TIMEOUT)):  # error callbacks are served by poll
        if errors:
            break
        admin.poll(1.0)
    return errors


def code(error: object) -> int | None:
    return error.code() if isinstance(error, KafkaError) else None


# ---------------------------------------------------------------- authentication
def test_wrong_password_is_refused(cluster: Cluster) -> None:
    conf = cluster.broker.client_config("connector-wearables", "not-the-password")
    errors = authentication_errors(conf)
    assert [e.code() for e in errors][:1] == [KafkaError._AUTHENTICATION], errors
    # librdkafka reports the broker's SASL_AUTHENTICATION_FAILED as a local _AUTHENTICATION
    # error whose text carries the broker's reason.
    assert "invalid credentials" in errors[0].str()


def test_unknown_user_is_refused(cluster: Cluster) -> None:
    errors = authentication_errors(cluster.broker.client_config("mallory", "whatever-secret"))
    assert [e.code() for e in errors][:1] == [KafkaError._AUTHENTICATION], errors


def test_client_without_credentials_is_refused(cluster: Cluster) -> None:
    conf: dict[str, Any] = {
        "bootstrap.servers": cluster.broker.bootstrap,
        "security.protocol": "PLAINTEXT",
        "log_level": 0,
    }
    with pytest.raises(KafkaException):
        AdminClient(conf).list_topics(timeout=5)


# ---------------------------------------------------------------- authorisation
def test_wearable_connector_writes_its_topic_and_reads_nothing(cluster: Cluster) -> None:
    wearables = cluster.as_user("connector-wearables")
    # Idempotent producer with only WRITE on the topic: no cluster IDEMPOTENT_WRITE needed.
    assert produce(wearables, "wearable-biometrics") is None
    for other in ("ehr-clinical-events", "patient-reports", "twin-updates"):
        assert code(produce(wearables, other)) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    for topic in ("wearable-biometrics", "twin-updates", "audit-events"):
        seen = fetch_assigned(wearables, topic)
        assert KafkaError.TOPIC_AUTHORIZATION_FAILED in seen and 0 not in seen, (topic, seen)


def test_downstream_consumers_read_twin_updates_but_no_raw_phi(cluster: Cluster) -> None:
    assert produce(cluster.as_user("workers"), "twin-updates") is None
    consumers = cluster.as_user("twin-consumers")
    assert fetch(consumers, "twin-updates", group="twin-consumers") == [b"x"]
    for raw in RAW_TOPICS:
        assert code(fetch(consumers, raw, group="twin-consumers")) == (KafkaError.TOPIC_AUTHORIZATION_FAILED)
        assert code(produce(consumers, raw)) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # Only their own consumer group.
    assert code(fetch(consumers, "twin-updates", group="novamind-workers")) == (
        KafkaError.GROUP_AUTHORIZATION_FAILED
    )


def test_workers_read_sources_write_derived_never_write_sources(cluster: Cluster) -> None:
    assert produce(cluster.as_user("intake"), "patient-reports") is None
    workers = cluster.as_user("workers")
    assert fetch(workers, "patient-reports", group="novamind-workers") == [b"x"]
    for derived in DERIVED_TOPICS:
        assert produce(workers, derived) is None, derived
    for raw in RAW_TOPICS:
        assert code(produce(workers, raw)) == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_no_service_creates_topics(cluster: Cluster) -> None:
    admin = AdminClient({**producer_config(cluster.as_user("workers"), client_id="t"), "log_level": 0})
    name = f"novamind-workers-scratch-{uuid.uuid4().hex[:6]}"
    with pytest.raises(KafkaException) as caught:
        admin.create_topics([NewTopic(name, 1, 1)])[name].result(timeout=TIMEOUT)
    assert caught.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def _init_transactions(kafka: Any, transactional_id: str) -> KafkaError | None:
    conf = {
        **producer_config(kafka, client_id="acl-test"),
        "transactional.id": transactional_id,
        "log_level": 0,
    }
    try:
        Producer(conf).init_transactions(TIMEOUT)
    except KafkaException as exc:
        return exc.args[0]
    return None


def test_only_workers_use_the_workers_transactional_ids(cluster: Cluster) -> None:
    suffix = uuid.uuid4().hex[:6]
    assert _init_transactions(cluster.as_user("workers"), f"novamind-workers-{suffix}") is None
    assert code(_init_transactions(cluster.as_user("workers"), f"other-{suffix}")) == (
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    )
    assert code(_init_transactions(cluster.as_user("intake"), f"novamind-workers-{suffix}")) == (
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    )


def test_auditor_reads_audit_events_only(cluster: Cluster) -> None:
    assert produce(cluster.as_user("intake"), "audit-events") is None
    auditor = cluster.as_user("auditor")
    assert fetch(auditor, "audit-events", group="auditor") == [b"x"]
    assert code(fetch(auditor, "twin-updates", group="auditor")) == (KafkaError.TOPIC_AUTHORIZATION_FAILED)


def test_cluster_acls_match_the_registry(cluster: Cluster) -> None:
    admin = AdminClient(cluster.broker.admin_config())
    missing, extra = acl_drift(existing_grants(admin), desired_grants(declared_topics()))
    assert (missing, extra) == ([], [])


def test_service_users_cannot_change_acls(cluster: Cluster) -> None:
    admin = AdminClient({**producer_config(cluster.as_user("workers"), client_id="t"), "log_level": 0})
    from novamind.privacy.acls import Grant
    from novamind.privacy.exceptions import AclError

    with pytest.raises(AclError, match="CLUSTER_AUTHORIZATION_FAILED"):
        apply_grants(admin, [Grant("User:workers", "TOPIC", "patient-reports", "WRITE")])
