"""Kafka client configuration built from settings: one place for every client's knobs."""

from __future__ import annotations

from typing import Any

from novamind.platform.settings import KafkaSettings


def _security(kafka: KafkaSettings) -> dict[str, Any]:
    conf: dict[str, Any] = {"security.protocol": kafka.security_protocol}
    if kafka.security_protocol.startswith("SASL"):
        conf["sasl.mechanism"] = kafka.sasl_mechanism
        conf["sasl.username"] = kafka.sasl_username or ""
        conf["sasl.password"] = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
    if kafka.security_protocol.endswith("SSL"):
        # librdkafka's default since 2.0, stated so that no client can run without it.
        conf["ssl.endpoint.identification.algorithm"] = "https"
    if kafka.ssl_cafile:
        conf["ssl.ca.location"] = str(kafka.ssl_cafile)
    return conf


def producer_config(kafka: KafkaSettings, *, client_id: str) -> dict[str, Any]:
    """An idempotent, acks=all, compressed confluent-kafka producer configuration."""
    return {
        "bootstrap.servers": kafka.bootstrap_servers,
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": kafka.compression,
        "linger.ms": kafka.linger_ms,
        "queue.buffering.max.messages": kafka.max_in_flight_messages,
        "partitioner": "murmur2_random",  # same partition for a key as the Java and aiokafka clients
        **_security(kafka),
    }


def consumer_config(kafka: KafkaSettings, *, group_id: str, client_id: str) -> dict[str, Any]:
    """A confluent-kafka consumer that commits only what it has processed."""
    return {
        "bootstrap.servers": kafka.bootstrap_servers,
        "group.id": group_id,
        "client.id": client_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        **_security(kafka),
    }


def admin_config(kafka: KafkaSettings) -> dict[str, Any]:
    """A confluent-kafka admin client configuration."""
    return {"bootstrap.servers": kafka.bootstrap_servers, **_security(kafka)}
