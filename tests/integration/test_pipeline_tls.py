"""The pipeline end to end over TLS, with SCRAM users and least-privilege ACLs.

A secured broker (every listener SASL_SSL) and a FerretDB that speaks only TLS, both started
here on free ports with certificates from their own CAs (the shared services are not touched).
Each source topic is written by its own principal (EHR connector, wearables connector, intake),
the worker runs as ``workers`` with nothing but its ACLs, and the twins land in the TLS store.
The outputs are then checked against one-pass references as in test_pipeline, read by the admin.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr

from connectors.delivery import SOURCE_ROUTES
from connectors.simulator import simulate
from connectors.simulator.publish import publish
from novamind.app.secure_broker import SecureBroker
from novamind.app.secure_mongo import TlsFerretDB
from novamind.platform.privacy.acls import apply_grants, create_scram_users, desired_grants
from novamind.platform.producer import EventProducer
from novamind.platform.settings import Settings
from novamind.platform.topicadmin import ensure_topics
from schemas.topics import Principal, TopicName, declared_topics
from tests.integration.checks import assert_twins_equal_replay, check_outputs, codec
from tests.integration.harness import free_port, wait_caught_up, workers

PARTITIONS = 2
WRITER = {
    "ehr-clinical-events": "connector-ehr",
    "wearable-biometrics": "connector-wearables",
    "patient-reports": "intake",
}


@dataclass(frozen=True)
class Secured:
    broker: SecureBroker
    mongo: TlsFerretDB
    passwords: dict[str, str]

    def settings(self, user: str | None) -> Settings:
        """Settings of ``user`` (None: the admin) on the secured broker and the TLS store."""
        kafka = (
            self.broker.admin_settings()
            if user is None
            else self.broker.kafka_settings(user, self.passwords[user])
        )
        # A copy, not keyword arguments: KAFKA_BOOTSTRAP_SERVERS / MONGODB_URI (set for the
        # shared services) would win over those.
        return Settings(environment="test").model_copy(
            update={
                "kafka": kafka.model_copy(update={"partitions": PARTITIONS}),
                "mongo": self.mongo.mongo_settings("novamind_tls_pipeline"),
            }
        )


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    local = Settings().local.home
    libs, ferretdb = local / "kafka" / "libs", local / "bin" / "ferretdb"
    if not any(libs.glob("kafka_2.13-*.jar")) or not ferretdb.exists():
        pytest.skip(f"the secured services run from the jars and binary of `make services` ({local})")
    broker = SecureBroker(
        home=tmp_path_factory.mktemp("tls-pipeline-kafka"),
        kafka_libs=libs,
        admin_password=SecretStr(secrets.token_urlsafe(24)),
        controller_password=SecretStr(secrets.token_urlsafe(24)),
        port=free_port(),
        controller_port=free_port(),
    )
    mongo = TlsFerretDB(
        home=tmp_path_factory.mktemp("tls-pipeline-mongo"), ferretdb_bin=ferretdb, port=free_port()
    )
    with broker, mongo:
        admin = AdminClient(broker.admin_config())
        passwords = {str(p): secrets.token_urlsafe(24) for p in Principal}
        create_scram_users(admin, passwords)
        secured = Secured(broker, mongo, passwords)
        assert ensure_topics(secured.settings(None).kafka, admin=admin) == 0
        apply_grants(admin, desired_grants(declared_topics(partitions=PARTITIONS)))
        yield secured


def _by_topic(deliveries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    routed: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in deliveries:
        kind = item["record_type"]
        raw = kind == "RAW"  # garbage goes where the simulator publishes it
        routed[
            TopicName.WEARABLE_BIOMETRICS if raw else SOURCE_ROUTES.get(kind, TopicName.EHR_CLINICAL_EVENTS)
        ].append(item)
    return routed


def test_cohort_runs_end_to_end_over_tls_with_scram_and_acls(secured: Secured, tmp_path: Path) -> None:
    cohort = simulate(4, 21, 11, dt.date(2026, 3, 2))
    for topic, items in _by_topic(cohort.deliveries).items():
        kafka = secured.settings(WRITER[topic]).kafka
        assert kafka.security_protocol == "SASL_SSL" and kafka.ssl_cafile is not None
        producer = EventProducer(kafka=kafka, client_id=f"tls-{WRITER[topic]}")
        summary = publish(items, producer=producer, codec=codec)
        assert summary["unacknowledged"] == 0, (topic, summary)
        assert set(summary["produced"]) <= {topic}, summary  # each writer only its own topic

    as_workers = secured.settings("workers")
    # No topic prefix here (the ACLs name the registry's topics), so no shared state folder.
    worker = as_workers.worker.model_copy(update={"state_dir": tmp_path / "state"})
    as_workers = as_workers.model_copy(update={"worker": worker})
    observer = secured.settings(None)  # the admin reads the outputs for the checks
    with workers(as_workers, tmp_path, count=1) as running:
        wait_caught_up(observer, running)
        log = running[0].log()
    assert "AUTHORIZATION_FAILED" not in log and "certificate verify failed" not in log, log[-3000:]
    check_outputs(observer, cohort)
    assert assert_twins_equal_replay(observer) == 4
