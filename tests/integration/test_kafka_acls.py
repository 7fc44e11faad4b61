"""TLS, authentication and least-privilege ACLs on a real secured broker (SASL_SSL/SCRAM + ACLs).

One secured KRaft broker per module, started from the jars of ``make services`` on free ports,
with certificates from a CA made for it (novamind.platform.privacy.pki); every client below speaks TLS
and verifies the broker's certificate and host name unless a test says otherwise. Users and ACLs
come from the topic registry (novamind.platform.privacy.acls). Every wait is bounded.
"""

from __future__ import annotations

import secrets
import socket
import ssl
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import SecretStr

from novamind.app.secure_broker import SecureBroker
from novamind.platform.kafka import consumer_config, producer_config
from novamind.platform.privacy.acls import (
    acl_drift,
    apply_grants,
    create_scram_users,
    desired_grants,
    existing_grants,
)
from novamind.platform.privacy.pki import local_pki
from novamind.platform.settings import Settings
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

    def as_config(self, name: str) -> dict[str, Any]:
        return self.broker.client_config(name, self.passwords[name])


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
    conf = {**cluster.broker.client_config("intake", "x" * 16), "security.protocol": "SSL"}
    del conf["sasl.mechanism"], conf["sasl.username"], conf["sasl.password"]
    # TLS with the right CA but no SASL: the handshake succeeds, the first request is refused.
    errors = authentication_errors(conf)
    assert errors and all(e.code() != KafkaError.NO_ERROR for e in errors), errors
    assert not any("certificate verify failed" in e.str() for e in errors), errors


# ---------------------------------------------------------------- transport (TLS)
def transport_errors(conf: dict[str, Any]) -> list[KafkaError]:
    """The errors of a client that fails to reach the cluster (it must fail)."""
    errors = authentication_errors(conf)
    assert errors, "the client reported no error"
    return errors


def assert_verification_failed(errors: list[KafkaError]) -> None:
    """Every connection attempt failed in the TLS handshake on the broker's certificate."""
    attempts = [e for e in errors if e.code() in (KafkaError._SSL, KafkaError._TRANSPORT)]
    assert any(e.code() == KafkaError._SSL for e in attempts), errors
    assert all("certificate verify failed" in e.str() for e in attempts), errors
    expected = {KafkaError._SSL, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN}
    assert {e.code() for e in errors} <= expected, errors


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_plaintext_clients_are_refused_by_the_tls_listener(cluster: Cluster, protocol: str) -> None:
    # Right user and password, no TLS: the broker never sees a request it would answer.
    conf = {**cluster.as_config("workers"), "security.protocol": protocol}
    del conf["ssl.ca.location"]
    if protocol == "PLAINTEXT":
        del conf["sasl.mechanism"], conf["sasl.username"], conf["sasl.password"]
    errors = transport_errors(conf)
    assert {e.code() for e in errors} <= {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN}, errors


def test_a_plaintext_kafka_request_gets_no_kafka_answer(cluster: Cluster) -> None:
    client_id = b"plain"
    request = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id  # ApiVersions v0, id 1
    with socket.create_connection(("127.0.0.1", cluster.broker.port), timeout=TIMEOUT) as raw:
        raw.sendall(struct.pack(">i", len(request)) + request)
        answer = b""
        while chunk := raw.recv(4096):  # until the broker closes the connection
            answer += chunk
    # Nothing, or a TLS alert record (content type 21): never a Kafka response frame.
    assert answer == b"" or answer[0] == 21, answer[:16]


def test_a_client_trusting_another_ca_fails_verification(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other_ca = local_pki(tmp_path_factory.mktemp("other-ca"), common_name="Somebody else's CA").ca_cert
    conf = {**cluster.as_config("workers"), "ssl.ca.location": str(other_ca)}
    assert_verification_failed(transport_errors(conf))


def test_a_client_with_only_the_system_cas_fails_verification(cluster: Cluster) -> None:
    conf = cluster.as_config("workers")
    del conf["ssl.ca.location"]  # librdkafka falls back to the system's trust store
    assert_verification_failed(transport_errors(conf))


def test_a_name_the_certificate_does_not_carry_fails_verification(cluster: Cluster) -> None:
    # This machine's own name reaches the loopback listener but is not in the certificate.
    name = socket.gethostname()
    try:
        address = socket.gethostbyname(name)
    except OSError:
        address = ""
    if address != "127.0.0.1" or name in ("localhost", "127.0.0.1"):
        pytest.skip(f"needs a host name other than localhost that resolves to 127.0.0.1 ({name})")
    conf = {**cluster.as_config("workers"), "bootstrap.servers": f"{name}:{cluster.broker.port}"}
    errors = transport_errors(conf)
    assert_verification_failed(errors)
    # The same client by a name the certificate carries gets in.
    assert produce(cluster.as_user("connector-wearables"), "wearable-biometrics") is None


def test_the_broker_presents_the_profile_certificate_for_loopback_names_only(cluster: Cluster) -> None:
    context = ssl.create_default_context(cafile=str(cluster.broker.ca_file))
    address = ("127.0.0.1", cluster.broker.port)
    with (
        socket.create_connection(address, timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() in ("TLSv1.3", "TLSv1.2")
        names = {value for _kind, value in tls.getpeercert()["subjectAltName"]}
    assert names == {"localhost", "127.0.0.1"}
    # The same certificate does not vouch for another host: host-name checks have teeth.
    with (
        socket.create_connection(address, timeout=TIMEOUT) as raw,
        pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"),
    ):
        context.wrap_socket(raw, server_hostname="kafka.example.org")


def test_scram_clients_produce_and_consume_over_tls(cluster: Cluster) -> None:
    wearables = cluster.as_user("connector-wearables")
    assert wearables.security_protocol == "SASL_SSL" and wearables.ssl_cafile == cluster.broker.ca_file
    # Bootstrap by DNS name (localhost), then the advertised IP: both are in the certificate.
    by_name = wearables.model_copy(update={"bootstrap_servers": f"localhost:{cluster.broker.port}"})
    assert produce(by_name, "wearable-biometrics") is None
    read = fetch(cluster.as_user("workers"), "wearable-biometrics", group="novamind-workers")
    assert b"x" in _values(read)
    # ACLs still apply over TLS.
    assert code(produce(by_name, "twin-updates")) == KafkaError.TOPIC_AUTHORIZATION_FAILED


def _values(outcome: list[bytes] | KafkaError) -> list[bytes]:
    assert isinstance(outcome, list), outcome
    return outcome


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
    from novamind.platform.privacy.acls import Grant
    from novamind.platform.privacy.exceptions import AclError

    with pytest.raises(AclError, match="CLUSTER_AUTHORIZATION_FAILED"):
        apply_grants(admin, [Grant("User:workers", "TOPIC", "patient-reports", "WRITE")])
