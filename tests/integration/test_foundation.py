"""Foundation: Avro through real Kafka, a Faust agent, and MongoDB over the wire protocol."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from pymongo import MongoClient

from novamind.kafka import admin_config, producer_config
from novamind.settings import Settings
from schemas.codec import AvroCodec
from schemas.models import BiometricSample, Metric

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "NOVAMIND_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "NOVAMIND_MONGO__URI": settings.mongo.uri.get_secret_value(),
        "NOVAMIND_MONGO__DATABASE": settings.mongo.database,
        "NOVAMIND_KAFKA__PARTITIONS": str(settings.kafka.partitions),
        **extra,
    }


def _sample(index: int) -> BiometricSample:
    now = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC) + dt.timedelta(minutes=index)
    return BiometricSample(
        event_id=f"foundation-{index}",
        patient_id="p_" + "ab" * 16,
        event_time=now,
        received_time=now + dt.timedelta(seconds=3),
        source="test",
        metric=Metric.HEART_RATE,
        value=60.0 + index,
        unit="beats/min",
        device_id="dev_1",
    )


def test_avro_record_flows_from_kafka_through_faust_into_mongodb(settings: Settings, run_id: str) -> None:
    topic = f"foundation-check-{run_id}"
    admin = AdminClient(admin_config(settings.kafka))
    for future in admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)]).values():
        future.result(timeout=30)

    port = _free_port()
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.apps.foundation_worker",
            "worker",
            "-l",
            "warn",
            "--web-port",
            str(port),
        ],
        cwd=ROOT,
        env=_worker_env(settings, FOUNDATION_TOPIC=topic, FOUNDATION_WEB_PORT=str(port)),
    )
    try:
        codec = AvroCodec()
        producer = Producer(producer_config(settings.kafka, client_id="foundation-test"))
        delivered: list[str] = []

        def on_delivery(err, msg):  # type: ignore[no-untyped-def]
            assert err is None, err
            delivered.append(msg.key().decode())

        samples = [_sample(i) for i in range(5)]
        for sample in samples:
            producer.produce(
                topic, key=sample.patient_id.encode(), value=codec.encode(sample), on_delivery=on_delivery
            )
        assert producer.flush(30) == 0
        assert len(delivered) == 5

        collection = MongoClient(settings.mongo.uri.get_secret_value())[settings.mongo.database][
            "foundation_samples"
        ]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and collection.count_documents({}) < 5:
            assert worker.poll() is None, "the worker exited"
            time.sleep(0.5)
        stored = {doc["_id"]: doc for doc in collection.find()}
        assert sorted(stored) == sorted(s.event_id for s in samples)
        for sample in samples:
            assert stored[sample.event_id]["value"] == sample.value
            assert stored[sample.event_id]["metric"] == "HEART_RATE"
            assert stored[sample.event_id]["patient_id"] == sample.patient_id
    finally:
        worker.terminate()
        worker.wait(timeout=60)
