"""Foundation: an Avro record through real Kafka, a worker replica, and MongoDB over the wire.

A PHQ-9 result produced with confluent-kafka reaches a ``novamind worker`` subprocess, whose
twin lands in FerretDB (read back with PyMongo) and whose item-9 alert lands on its topic.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from pymongo import MongoClient

from novamind.platform.producer import EventProducer
from novamind.platform.settings import Settings
from schemas.assessments import score_items
from schemas.codec import AvroCodec
from schemas.models import AssessmentResult, Instrument
from tests.integration.harness import isolated, read_topic, reader_codec, workers

PATIENT = "p_" + "ab" * 16


def _phq9(items: list[int]) -> AssessmentResult:
    at = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
    scored = score_items("PHQ9", items)
    return AssessmentResult(
        event_id="foundation-phq9-1",
        patient_id=PATIENT,
        event_time=at,
        received_time=at + dt.timedelta(seconds=3),
        source="test",
        submission_id="sub-1",
        instrument=Instrument.PHQ9,
        item_responses=items,
        total=scored.total,
        band=scored.band,
        item9_positive=scored.item9_positive,
    )


def _item9_alerts(scenario: Settings, codec: AvroCodec, timeout_s: float = 60) -> list[dict]:
    """ITEM9_SAFETY alerts on the topic; the item-9 watch publishes on its own schedule."""
    deadline = time.monotonic() + timeout_s
    while True:
        alerts = [codec.decode_dict(m.value())[1] for m in read_topic(scenario, "twin-alerts")]
        item9 = [a for a in alerts if a["alert_type"] == "ITEM9_SAFETY"]
        if item9 or time.monotonic() > deadline:
            return item9
        time.sleep(0.5)


def test_avro_record_flows_from_kafka_through_a_worker_into_mongodb(
    settings: Settings, run_id: str, tmp_path: Path
) -> None:
    scenario = isolated(settings, f"found-{run_id}")
    codec = AvroCodec()
    result = _phq9([2, 2, 2, 2, 1, 1, 1, 1, 1])
    producer = EventProducer(kafka=scenario.kafka, client_id="foundation-test")
    producer.send(scenario.kafka.topic("patient-reports"), key=PATIENT.encode(), value=codec.encode(result))
    assert producer.flush(30) == 0

    twins = MongoClient(scenario.mongo.uri.get_secret_value())[scenario.mongo.database]["twins"]
    with workers(scenario, tmp_path) as running:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and twins.find_one({"_id": PATIENT}) is None:
            assert running[0].alive(), running[0].log()[-3000:]
            time.sleep(0.5)
        item9 = _item9_alerts(scenario, reader_codec(scenario))
    twin = twins.find_one({"_id": PATIENT})
    assert twin is not None, "no twin stored"
    assert twin["phq9_band"] == "MODERATE"  # total 13
    assert twin["risk_level"] == "CRITICAL"  # item 9 answered 1
    assert "ITEM9_SAFETY" in twin["active_alerts"]
    assert [(a["patient_id"], a["trigger_event_id"]) for a in item9] == [(PATIENT, result.event_id)]
