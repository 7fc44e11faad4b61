"""Checks shared by the pipeline, scaling and fault tests: outputs equal one-pass references.

Daily features equal a one-pass reference over the same source log; every stored twin equals
the one-pass replay of its twin-input log; dead letters hold exactly the bad inputs; every
item-9 answer raised an alert.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pymongo import MongoClient

from connectors.simulator import simulate
from connectors.simulator.publish import publish
from novamind.platform.producer import EventProducer
from novamind.platform.settings import Settings
from schemas.codec import AvroCodec
from tests.integration.harness import read_topic, reader_codec
from workers.pipeline.ingest import IngestProcessor
from workers.pipeline.twin import replay_log
from workers.runtime.worker import inbound
from workers.twin.serialize import deserialize, state_digest

# Fields that depend on how the three source topics interleave (when a day closed and how
# often it was revised), not on the events themselves.
VOLATILE = {"event_id", "event_time", "received_time", "revision", "normalized", "late_events"}
codec = AvroCodec()  # publishes the inputs single-object; outputs are read with reader_codec()


def publish_cohort(settings: Settings, *, patients: int, days: int, seed: int, share: float = 1.0) -> Any:
    """Simulate a cohort and publish the first ``share`` of its deliveries (in arrival order)."""
    cohort = simulate(patients, days, seed, dt.date(2026, 3, 2))
    publish_deliveries(settings, cohort.deliveries[: round(len(cohort.deliveries) * share)])
    return cohort


def publish_rest(settings: Settings, cohort: Any, share: float) -> None:
    """Publish what ``publish_cohort(..., share=share)`` held back."""
    publish_deliveries(settings, cohort.deliveries[round(len(cohort.deliveries) * share) :])


def publish_deliveries(settings: Settings, deliveries: list[dict[str, Any]]) -> None:
    producer = EventProducer(kafka=settings.kafka, client_id="pipeline-test")
    summary = publish(deliveries, producer=producer, codec=codec, topic_name=settings.kafka.topic)
    assert summary["unacknowledged"] == 0


def _final_features(records: list[dict[str, Any]]) -> dict[tuple[str, dt.date], dict[str, Any]]:
    final: dict[tuple[str, dt.date], dict[str, Any]] = {}
    for record in records:
        key = (record["patient_id"], record["date"])
        if key not in final or record["revision"] >= final[key]["revision"]:
            final[key] = record
    return {key: {k: v for k, v in r.items() if k not in VOLATILE} for key, r in final.items()}


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-9, abs=1e-9)
    return bool(a == b)


def _reference(settings: Settings) -> tuple[dict[tuple[str, dt.date], dict[str, Any]], list[dict[str, Any]]]:
    """Daily features and dead letters from one pass over the source log, no workers."""
    processor = IngestProcessor(codec=reader_codec(settings), entries={})
    features: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    for topic in ("ehr-clinical-events", "patient-reports", "wearable-biometrics"):
        result = processor.process(inbound(m) for m in read_topic(settings, topic))
        features.extend(result.features)
        dead.extend(result.dead_letters)
    return _final_features(features), dead


def assert_twins_equal_replay(settings: Settings) -> int:
    codec = reader_codec(settings)
    reference = replay_log(codec, (inbound(m) for m in read_topic(settings, "twin-inputs")))
    ca = settings.mongo.tls_ca_file
    tls: dict[str, Any] = {"tls": True, "tlsCAFile": str(ca)} if ca else {}
    db = MongoClient(settings.mongo.uri.get_secret_value(), **tls)[settings.mongo.database]
    stored = {doc["_id"]: deserialize(bytes(doc["state"])) for doc in db.twins.find({}, {"state": 1})}
    assert sorted(stored) == sorted(reference)
    for patient, state in reference.items():
        assert state_digest(stored[patient]) == state_digest(state), patient
    return len(stored)


def check_outputs(settings: Settings, cohort: Any) -> None:
    codec = reader_codec(settings)
    live = _final_features(
        [codec.decode_dict(m.value())[1] for m in read_topic(settings, "patient-daily-features")]
    )
    reference, reference_dead = _reference(settings)
    assert live.keys() == reference.keys()
    for key in reference:
        differing = {
            f: (live[key][f], reference[key][f])
            for f in reference[key]
            if not _close(live[key][f], reference[key][f])
        }
        assert not differing, (key, differing)

    dead = [codec.decode_dict(m.value())[1] for m in read_topic(settings, "pipeline-deadletter")]
    twin_inputs = settings.kafka.topic("twin-inputs")
    positions = {
        (d["source_topic"], d["source_partition"], d["source_offset"])
        for d in dead
        if d["source_topic"] != twin_inputs
    }
    assert positions == {
        (d["source_topic"], d["source_partition"], d["source_offset"]) for d in reference_dead
    }
    bad = sum(1 for d in cohort.deliveries if d.get("defect"))
    assert len(positions) >= bad  # every deliberately bad record, plus any late beyond 30 days

    alerts = [codec.decode_dict(m.value())[1] for m in read_topic(settings, "twin-alerts")]
    item9 = {a["trigger_event_id"] for a in alerts if a["alert_type"] == "ITEM9_SAFETY"}
    positives = {
        d["record"]["event_id"]
        for d in cohort.deliveries
        if d["record_type"] == "AssessmentResult" and d["record"]["item9_positive"] and not d.get("defect")
    }
    assert positives <= item9
