"""Publish a simulated cohort straight to the source topics, as fast as possible or at a rate."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from novamind.producer import EventProducer
from schemas.codec import AvroCodec
from schemas.exceptions import SchemaError

TOPIC_OF_RECORD = {
    "BiometricSample": "wearable-biometrics",
    "SymptomReport": "patient-reports",
    "AssessmentResult": "patient-reports",
    "ClinicalEvent": "ehr-clinical-events",
    "MedicationEvent": "ehr-clinical-events",
    "GeneticProfile": "ehr-clinical-events",
    "Demographics": "ehr-clinical-events",
}
RAW_TOPIC = "wearable-biometrics"  # where undecodable simulated bytes are sent


def encode_delivery(codec: AvroCodec, delivery: dict[str, Any]) -> tuple[str, bytes | None, bytes]:
    """(registry topic, key, value) of one simulated delivery; garbage stays garbage."""
    record = delivery["record"]
    if delivery["record_type"] == "RAW":
        return RAW_TOPIC, None, record["raw"]
    name = delivery["record_type"]
    return TOPIC_OF_RECORD[name], record["patient_id"].encode(), codec.encode_dict(name, record)


def publish(
    deliveries: Iterable[dict[str, Any]],
    *,
    producer: EventProducer,
    codec: AvroCodec,
    topic_name: Any = str,
    rate_per_s: float | None = None,
) -> dict[str, Any]:
    """Send every delivery in arrival order; returns a summary (sent per topic, rejected)."""
    sent: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    started = time.monotonic()
    for n, delivery in enumerate(deliveries, start=1):
        try:
            topic, key, value = encode_delivery(codec, delivery)
        except SchemaError as exc:  # a record the contract cannot even carry
            rejected[type(exc).__name__] += 1
            continue
        producer.send(topic_name(topic), key=key or b"", value=value)
        sent[topic] += 1
        if rate_per_s:
            ahead = n / rate_per_s - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    unacknowledged = producer.flush()
    return {
        "sent": dict(sent),
        "rejected": dict(rejected),
        "unacknowledged": unacknowledged,
        "seconds": round(time.monotonic() - started, 2),
    }
