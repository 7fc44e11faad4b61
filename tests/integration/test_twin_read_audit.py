"""``novamind twin show|plot`` write an ACCESS audit event before showing anything."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from novamind.app.cli import build_parser
from novamind.platform.exceptions import UsageError
from novamind.platform.privacy.audit import AuditLog, AuditQuery
from novamind.platform.settings import Settings
from novamind.platform.topicadmin import ensure_topics
from novamind.platform.topicreader import read_all
from schemas.codec import AvroCodec
from schemas.models import AuditAction, AuditEvent
from tests.integration.harness import reader_codec

PATIENT = "p_" + "d4" * 16
ABSENT = "p_" + "e5" * 16


def _scenario(settings: Settings, name: str) -> Settings:
    kafka = settings.kafka.model_copy(update={"topic_prefix": f"{name}."})
    mongo = settings.mongo.model_copy(update={"database": f"{settings.mongo.database}_{name}"})
    assert ensure_topics(kafka) == 0
    return settings.model_copy(update={"kafka": kafka, "mongo": mongo})


def _twin() -> dict[str, Any]:
    return {
        "_id": PATIENT,
        "twin_version": 3,
        "as_of_date": "2026-03-01",
        "updated_at": dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
        "risk_level": "LOW",
        "model_source": "POPULATION_PRIOR",
        "model_version": 0,
        "phq9_band": "MILD",
        "gad7_band": None,
        "forecast_severity": 3.2,
        "forecast_mae": None,
        "forecast_phq9": None,
        "anomaly_score": None,
        "deterioration": False,
        "active_alerts": [],
        "summary": {},
    }


def _run(settings: Settings, *argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return int(args.handler(args, settings))


async def _events(settings: Settings, patient: str) -> list[AuditEvent]:
    from novamind.platform.mongo import database, mongo_client

    client = mongo_client(settings.mongo, app_name="twin-read-test")
    try:
        log = AuditLog(db=database(client, settings.mongo), codec=AvroCodec())
        return await log.query(AuditQuery(patient_id=patient))
    finally:
        await client.close()


def test_every_twin_read_is_audited(settings: Settings, run_id: str, tmp_path: Path, capsys: Any) -> None:
    scenario = _scenario(settings, f"twinread-{run_id}")
    client: MongoClient[dict[str, Any]] = MongoClient(scenario.mongo.uri.get_secret_value())
    client[scenario.mongo.database].twins.insert_one(_twin())

    assert _run(scenario, "twin", "show", PATIENT, "--actor", "dr-a", "--purpose", "treatment") == 0
    assert f"twin {PATIENT}  version 3" in capsys.readouterr().out
    png = tmp_path / "twin.png"
    assert _run(scenario, "twin", "plot", PATIENT, "-o", str(png), "--actor", "dr-b") == 0
    assert png.stat().st_size > 0
    with pytest.raises(UsageError, match="no twin"):
        _run(scenario, "twin", "show", ABSENT, "--actor", "dr-a", "--purpose", "PATIENT_SAFETY")
    with pytest.raises(UsageError, match="unknown purpose"):
        _run(scenario, "twin", "show", PATIENT, "--purpose", "CURIOSITY")

    events = asyncio.run(_events(scenario, PATIENT))
    assert [(e.action, e.actor, e.purpose, e.resource, e.details["found"]) for e in events] == [
        (AuditAction.ACCESS, "dr-a", "TREATMENT", "twins/show", "true"),
        (AuditAction.ACCESS, "dr-b", "TREATMENT", "twins/plot", "true"),
    ]
    (absent,) = asyncio.run(_events(scenario, ABSENT))
    assert (absent.purpose, absent.details["found"]) == ("PATIENT_SAFETY", "false")

    published = read_all(scenario.kafka, scenario.kafka.topic("audit-events"))
    codec = reader_codec(scenario)
    on_topic = sorted((m.key().decode(), codec.decode_dict(m.value())[1]["event_id"]) for m in published)
    assert on_topic == sorted((e.patient_id, e.event_id) for e in [*events, absent])
