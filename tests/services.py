"""Where the integration tests find real Kafka and MongoDB.

In order: services named by the environment (``KAFKA_BOOTSTRAP_SERVERS``, ``MONGODB_URI``);
else containers started with testcontainers when a Docker engine answers; else the local
Docker-free services of ``make services`` (started here if they are not running).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass

KAFKA_IMAGE = "apache/kafka:4.1.1"
MONGO_IMAGE = "mongo:8.0"


@dataclass(frozen=True)
class ServiceAddresses:
    kafka_bootstrap: str
    mongodb_uri: str
    origin: str


def docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _containers() -> Iterator[ServiceAddresses]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs
    from testcontainers.mongodb import MongoDbContainer

    port = _free_port()
    kafka = (
        DockerContainer(KAFKA_IMAGE)
        .with_bind_ports(9092, port)
        .with_env("KAFKA_NODE_ID", "1")
        .with_env("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env("KAFKA_LISTENERS", "PLAINTEXT://:9092,CONTROLLER://:9093")
        .with_env("KAFKA_ADVERTISED_LISTENERS", f"PLAINTEXT://127.0.0.1:{port}")
        .with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT")
        .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
        .with_env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
        .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
    )
    with kafka, MongoDbContainer(MONGO_IMAGE) as mongo:
        wait_for_logs(kafka, "Kafka Server started", timeout=120)
        yield ServiceAddresses(f"127.0.0.1:{port}", mongo.get_connection_url(), "testcontainers")


@contextlib.contextmanager
def real_services() -> Iterator[ServiceAddresses]:
    """The services for this test session, started if needed."""
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    mongo = os.environ.get("MONGODB_URI")
    if kafka and mongo:
        yield ServiceAddresses(kafka, mongo, "environment")
        return
    if os.environ.get("NOVAMIND_TEST_DOCKER", "auto") != "never" and docker_answers():
        with _containers() as addresses:
            yield addresses
        return
    from novamind.app.localservices import LocalServices
    from novamind.platform.settings import Settings

    local = Settings().local
    LocalServices(settings=local).up()
    yield ServiceAddresses(
        f"127.0.0.1:{local.kafka_port}", f"mongodb://127.0.0.1:{local.mongo_port}/", "local"
    )
