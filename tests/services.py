"""Where the integration tests find real Kafka, MongoDB and a schema registry.

In order: services named by the environment (``KAFKA_BOOTSTRAP_SERVERS``, ``MONGODB_URI``, and
``SCHEMA_REGISTRY_URL``, else the local registry is started); else containers started with
testcontainers when a Docker engine answers; else the local Docker-free services of
``make services`` (started here if they are not running).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass

KAFKA_IMAGE = "apache/kafka:4.1.1"
MONGO_IMAGE = "mongo:8.0"
REGISTRY_IMAGE = "apicurio/apicurio-registry:3.0.9"
CCOMPAT = "/apis/ccompat/v7"


@dataclass(frozen=True)
class ServiceAddresses:
    kafka_bootstrap: str
    mongodb_uri: str
    origin: str
    registry_url: str  # a Confluent-compatible API


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
    registry = (
        DockerContainer(REGISTRY_IMAGE)
        .with_exposed_ports(8080)
        .with_env("APICURIO_STORAGE_KIND", "sql")
        .with_env("APICURIO_STORAGE_SQL_KIND", "h2")
    )
    with kafka, MongoDbContainer(MONGO_IMAGE) as mongo, registry:
        wait_for_logs(kafka, "Kafka Server started", timeout=120)
        wait_for_logs(registry, "Installed features", timeout=120)
        url = f"http://{registry.get_container_host_ip()}:{registry.get_exposed_port(8080)}{CCOMPAT}"
        yield ServiceAddresses(f"127.0.0.1:{port}", mongo.get_connection_url(), "testcontainers", url)


@contextlib.contextmanager
def real_services() -> Iterator[ServiceAddresses]:
    """The services for this test session, started if needed."""
    from novamind.app.localservices import LocalServices
    from novamind.platform.settings import Settings, local_registry_url

    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    mongo = os.environ.get("MONGODB_URI")
    local = Settings().local
    if kafka and mongo:
        registry = os.environ.get("SCHEMA_REGISTRY_URL")
        if not registry:
            LocalServices(settings=local).up(only=("registry",))
            registry = local_registry_url(local)
        yield ServiceAddresses(kafka, mongo, "environment", registry)
        return
    if os.environ.get("NOVAMIND_TEST_DOCKER", "auto") != "never" and docker_answers():
        with _containers() as addresses:
            yield addresses
        return
    LocalServices(settings=local).up()
    yield ServiceAddresses(
        f"127.0.0.1:{local.kafka_port}",
        f"mongodb://127.0.0.1:{local.mongo_port}/",
        "local",
        local_registry_url(local),
    )
