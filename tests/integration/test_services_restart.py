"""The local services are databases, not fixtures: data survives a restart."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from pymongo import MongoClient

from novamind.app.localservices import LocalServices
from novamind.platform.kafka import admin_config, consumer_config, producer_config
from novamind.platform.settings import Settings
from tests.services import ServiceAddresses


def test_restart_keeps_topic_data_and_documents(
    settings: Settings, services: ServiceAddresses, run_id: str
) -> None:
    if services.origin != "local":
        pytest.skip("restarts only the Docker-free local services")
    topic = f"restart-check-{run_id}"
    admin = AdminClient(admin_config(settings.kafka))
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(timeout=30)
    producer = Producer(producer_config(settings.kafka, client_id="restart-test"))
    for i in range(3):
        producer.produce(topic, key=b"k", value=f"record-{i}".encode())
    assert producer.flush(30) == 0
    mongo_uri = settings.mongo.uri.get_secret_value()
    MongoClient(mongo_uri)[settings.mongo.database]["restart_check"].insert_one({"_id": run_id, "kept": True})

    local = LocalServices(settings=Settings().local)
    local.down()
    assert not any(status.answering for status in local.status())
    local.up()

    assert MongoClient(mongo_uri)[settings.mongo.database]["restart_check"].find_one({"_id": run_id}) == {
        "_id": run_id,
        "kept": True,
    }
    consumer = Consumer(
        consumer_config(settings.kafka, group_id=f"restart-{run_id}", client_id="restart-test")
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    try:
        for _ in range(120):
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                values.append(message.value())
            if len(values) == 3:
                break
    finally:
        consumer.close()
    assert values == [b"record-0", b"record-1", b"record-2"]
