"""Helpers for pipeline tests on the real services: isolated topics, workers, catch-up, logs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from novamind.platform import lag
from novamind.platform.kafka import admin_config
from novamind.platform.settings import Settings
from novamind.platform.topicadmin import ensure_topics
from novamind.platform.topicreader import read_all
from schemas.codec import AvroCodec
from schemas.registry import ConfluentRegistryClient
from schemas.topics import WORKERS_GROUP
from workers.runtime.worker import SOURCE_TOPICS

ROOT = Path(__file__).resolve().parents[2]


def isolated(settings: Settings, name: str, *, max_batch: int | None = None) -> Settings:
    """Settings whose topics, consumer group and database belong to this scenario only;
    ``max_batch`` makes the workers commit in smaller steps (more batches mid-stream)."""
    kafka = settings.kafka.model_copy(update={"topic_prefix": f"{name}."})
    mongo = settings.mongo.model_copy(update={"database": f"{settings.mongo.database}_{name}"})
    worker = settings.worker.model_copy(update={"max_batch": max_batch or settings.worker.max_batch})
    scenario = settings.model_copy(update={"kafka": kafka, "mongo": mongo, "worker": worker})
    assert ensure_topics(kafka) == 0
    return scenario


def reader_codec(settings: Settings) -> AvroCodec:
    """A codec that reads what the services' processes write: both framings, Confluent schema
    ids through the configured registry (the local services configure one). It writes
    single-object records, which every reader still accepts."""
    url = settings.kafka.schema_registry_url
    return AvroCodec(registry=ConfluentRegistryClient(url=url)) if url else AvroCodec()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_env(settings: Settings) -> dict[str, str]:
    kafka, mongo = settings.kafka, settings.mongo
    secured: dict[str, str] = {"NOVAMIND_KAFKA__SECURITY_PROTOCOL": kafka.security_protocol}
    if kafka.security_protocol.startswith("SASL"):
        secured["NOVAMIND_KAFKA__SASL_MECHANISM"] = kafka.sasl_mechanism
        secured["NOVAMIND_KAFKA__SASL_USERNAME"] = kafka.sasl_username or ""
        secured["NOVAMIND_KAFKA__SASL_PASSWORD"] = (
            kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
        )
    if kafka.ssl_cafile:
        secured["NOVAMIND_KAFKA__SSL_CAFILE"] = str(kafka.ssl_cafile)
    if mongo.tls_ca_file:
        secured["NOVAMIND_MONGO__TLS_CA_FILE"] = str(mongo.tls_ca_file)
    if settings.worker.state_dir:
        secured["NOVAMIND_WORKER__STATE_DIR"] = str(settings.worker.state_dir)
    twin = settings.twin
    secured["NOVAMIND_TWIN__VERSION"] = twin.version
    secured["NOVAMIND_TWIN__VERSIONS"] = json.dumps(twin.versions)
    secured["NOVAMIND_TWIN__PLAN_REFRESH_S"] = str(twin.plan_refresh_s)
    if twin.shadow_version:
        secured["NOVAMIND_TWIN__SHADOW_VERSION"] = twin.shadow_version
    return {
        **os.environ,
        **secured,
        "NOVAMIND_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "NOVAMIND_KAFKA__PARTITIONS": str(settings.kafka.partitions),
        "NOVAMIND_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
        "NOVAMIND_KAFKA__SCHEMA_REGISTRY_URL": settings.kafka.schema_registry_url or "",
        "NOVAMIND_MONGO__URI": settings.mongo.uri.get_secret_value(),
        "NOVAMIND_MONGO__DATABASE": settings.mongo.database,
        "NOVAMIND_LOG_FORMAT": "json",
        "NOVAMIND_WORKER__MAX_BATCH": str(settings.worker.max_batch),
        "NOVAMIND_WORKER__STATE_WRITE_DELAY_S": str(settings.worker.state_write_delay_s),
        "NOVAMIND_WORKER__STATIC_MEMBERSHIP": str(settings.worker.static_membership).lower(),
    }


class WorkerProcess:
    """One ``novamind worker`` replica in a subprocess, its log in a file."""

    def __init__(self, settings: Settings, log_dir: Path, name: str) -> None:
        self.port = free_port()
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "novamind.app.cli",
                "worker",
                "--web-port",
                str(self.port),
                "--replica-id",
                name,
            ],
            cwd=ROOT,
            env=worker_env(settings),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def workers(settings: Settings, log_dir: Path, count: int = 1) -> Iterator[list[WorkerProcess]]:
    started = [WorkerProcess(settings, log_dir, f"worker-{i}") for i in range(count)]
    try:
        yield started
    finally:
        for worker in started:
            worker.stop()


def wait_group_empty(settings: Settings, timeout_s: float = 90) -> None:
    """Until the broker has evicted every member of the workers' group (e.g. a killed one)."""
    group = settings.kafka.topic(WORKERS_GROUP)
    client = admin(settings)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        description = client.describe_consumer_groups([group])[group].result(timeout=10)
        if not description.members:
            return
        time.sleep(0.5)
    raise AssertionError(f"group {group} still has members after {timeout_s}s")


def end_offsets(settings: Settings, topics: list[str]) -> dict[tuple[str, int], int]:
    return lag.end_offsets(settings.kafka, topics)


def wait_caught_up(settings: Settings, running: list[WorkerProcess], timeout_s: float = 240) -> None:
    """Until the group has committed every source and twin-input record (twice in a row)."""
    topics = [settings.kafka.topic(t) for t in (*SOURCE_TOPICS, "twin-inputs")]
    group = settings.kafka.topic(WORKERS_GROUP)
    deadline = time.monotonic() + timeout_s
    stable = 0
    while time.monotonic() < deadline:
        for worker in running:
            assert worker.alive(), f"worker died:\n{worker.log()[-3000:]}"
        lagging = {f"{t}[{p}]": n for (t, p), n in lag.group_lag(settings.kafka, group, topics).items() if n}
        stable = 0 if lagging else stable + 1
        if stable >= 3:
            return
        time.sleep(1.0)
    tails = "\n".join(f"--- {w.log_path.name} (last lines)\n{w.log()[-4000:]}" for w in running)
    raise AssertionError(f"workers did not catch up within {timeout_s}s; lag: {lagging}\n{tails}")


def read_topic(settings: Settings, name: str) -> list[Any]:
    """Every message of a registry topic, partition by partition, in offset order."""
    return read_all(settings.kafka, settings.kafka.topic(name))


def admin(settings: Settings) -> AdminClient:
    return AdminClient(admin_config(settings.kafka))
