"""``novamind dataset export`` on the real broker and FerretDB: refuses, then exports and audits."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bson import Binary
from fastavro import reader
from pymongo import MongoClient

from novamind.app.cli import build_parser
from novamind.app.datasets.manifest import verify
from novamind.platform.exceptions import UsageError
from novamind.platform.mongo import database, mongo_client
from novamind.platform.privacy.audit import AuditLog, AuditQuery
from novamind.platform.producer import EventProducer
from novamind.platform.settings import PROJECT_ROOT, Settings
from novamind.platform.topicadmin import ensure_topics
from novamind.platform.topicreader import read_all
from schemas.codec import AvroCodec
from schemas.models import AuditAction, AuditEvent, AuditOutcome
from tests.novamind.app.datasets.factories import START, cohort, feature_record, pseudonym
from workers.twin.serialize import serialize
from workers.twin.twin import new_twin

PATIENTS, DAYS = 4, 40
FAILING = [(1, 5), (3, 30)]


def _scenario(settings: Settings, name: str) -> Settings:
    kafka = settings.kafka.model_copy(update={"topic_prefix": f"{name}."})
    mongo = settings.mongo.model_copy(update={"database": f"{settings.mongo.database}_{name}"})
    assert ensure_topics(kafka) == 0
    return settings.model_copy(update={"kafka": kafka, "mongo": mongo})


def _publish(settings: Settings) -> None:
    codec = AvroCodec()
    # Patient 0's third day fails at first; a later revision of it passes and replaces it.
    records = cohort(PATIENTS, DAYS, failing=[*FAILING, (0, 2)])
    records.append(
        feature_record(pseudonym(0), START + dt.timedelta(days=2), revision=1, heart_rate_mean=88.0)
    )
    producer = EventProducer(kafka=settings.kafka, client_id="dataset-export-test")
    topic = settings.kafka.topic("patient-daily-features")
    for record in records:
        producer.send(
            topic, key=record["patient_id"].encode(), value=codec.encode_dict("PatientDailyFeatures", record)
        )
    assert producer.flush(30) == 0


def _twins(settings: Settings) -> None:
    state = new_twin(pseudonym(0))
    state.age_band, state.sex = "AGE_35_44", "FEMALE"
    client: MongoClient[dict[str, Any]] = MongoClient(settings.mongo.uri.get_secret_value())
    twins = client[settings.mongo.database].twins
    twins.insert_one({"_id": pseudonym(0), "state": Binary(serialize(state)), "risk_level": "LOW"})


def _export(settings: Settings, output: Path, *options: str) -> int:
    argv = ["dataset", "export", "-o", str(output), "--actor", "analyst-1", *options]
    args = build_parser().parse_args(argv)
    return int(args.handler(args, settings))


async def _exports(settings: Settings) -> list[AuditEvent]:
    client = mongo_client(settings.mongo, app_name="dataset-export-test")
    try:
        log = AuditLog(db=database(client, settings.mongo), codec=AvroCodec())
        return await log.query(AuditQuery(action=AuditAction.EXPORT))
    finally:
        await client.close()


def test_export_refuses_below_the_standards_then_writes_audited_avro(
    settings: Settings, run_id: str, tmp_path: Path
) -> None:
    scenario = _scenario(settings, f"dataset-{run_id}")
    _publish(scenario)
    _twins(scenario)
    params = ("--train-share", "0.6", "--validation-share", "0.2", "--gap-days", "7")

    with pytest.raises(UsageError) as refused:
        _export(scenario, tmp_path / "strict", *params)
    message = str(refused.value)
    assert "2 of 160 patient-days" in message
    assert f"{pseudonym(1)}: 2026-01-10" in message and f"{pseudonym(3)}: 2026-02-04" in message
    assert pseudonym(0) not in message  # its failing day was fixed by a later revision
    assert not (tmp_path / "strict").exists()

    output = tmp_path / "dataset"
    assert _export(scenario, output, *params, "--min-passing-share", "0.95") == 0
    assert verify(output) == []
    manifest = json.loads((output / "manifest.json").read_text())
    rows: dict[str, list[Any]] = {}
    for name in ("train", "validation", "test"):
        with (output / f"{name}.avro").open("rb") as handle:
            avro = reader(handle)
            schema: Any = avro.writer_schema
            assert schema["name"] == "health.novamind.dataset.v1.TrainingDay"
            rows[name] = list(avro)
        assert manifest["files"][name]["rows"] == len(rows[name])
    # 40 days: train days 0-23, gap 24-30, validation 31, gap 32-38, test 39. Of the two failing
    # days, one was in train and one in a gap; both are dropped before the split.
    assert {n: len(r) for n, r in rows.items()} == {"train": 4 * 24 - 1, "validation": 4, "test": 4}
    assert manifest["quality"]["days_failing_dropped"] == 2
    assert manifest["counts"]["days_embargoed"] == 4 * 14 - 1
    everything = [r for split in rows.values() for r in split]
    assert len({r["subject_id"] for r in everything}) == PATIENTS
    assert {r["age_band"] for r in everything} == {"AGE_35_44", "UNKNOWN"}
    assert 88.0 in {r["heart_rate_mean"] for r in everything}  # the last revision was exported
    decoded = json.dumps([*everything, manifest], default=str)  # the Avro blocks are compressed
    assert all(pseudonym(n) not in decoded for n in range(PATIENTS))

    denied, allowed = asyncio.run(_exports(scenario))
    assert (denied.outcome, denied.actor, denied.purpose, denied.details["reason"]) == (
        AuditOutcome.DENIED,
        "analyst-1",
        "RESEARCH",
        "QualityGateFailed",
    )
    assert (denied.details["patients_failing"], denied.details["days_failing"]) == ("2", "2")
    assert (allowed.outcome, allowed.resource) == (AuditOutcome.ALLOWED, f"datasets/{manifest['export_id']}")
    assert allowed.details["rows_train"] == str(len(rows["train"])) and allowed.details["subjects"] == "4"
    assert (
        allowed.details["manifest_sha256"]
        == hashlib.sha256((output / "manifest.json").read_bytes()).hexdigest()
    )
    keys = [m.key().decode() for m in read_all(scenario.kafka, scenario.kafka.topic("audit-events"))]
    assert keys == ["analyst-1", "analyst-1"]


def test_the_command_line_exits_2_with_one_line(settings: Settings, run_id: str, tmp_path: Path) -> None:
    scenario = _scenario(settings, f"dataset-cli-{run_id}")
    _publish(scenario)
    env = {
        **os.environ,
        "NOVAMIND_KAFKA__BOOTSTRAP_SERVERS": scenario.kafka.bootstrap_servers,
        "NOVAMIND_KAFKA__TOPIC_PREFIX": scenario.kafka.topic_prefix,
        "NOVAMIND_KAFKA__SCHEMA_REGISTRY_URL": scenario.kafka.schema_registry_url or "",
        "NOVAMIND_MONGO__URI": scenario.mongo.uri.get_secret_value(),
        "NOVAMIND_MONGO__DATABASE": scenario.mongo.database,
        "NOVAMIND_LOG_LEVEL": "ERROR",
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "novamind"), "dataset", "export", "-o", str(tmp_path / "out")],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert (
        line.startswith("novamind dataset: quality gate: 2 of 160 patient-days") and "Traceback" not in line
    )
