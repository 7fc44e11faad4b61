"""Model versions an operator can trust, on the real broker and MongoDB wire protocol.

A worker replica runs a cohort's twins under a current version with the build's standard
version in shadow; ``novamind twin promote`` applies the promotion rule to the shadow's paired
metrics and promotes it; the twins move to it at their next input; ``novamind twin rollback``
puts one patient back on a snapshot of the replaced version. Checked on the way: the shadow
publishes nothing and leaves the live outputs byte for byte; live and shadow state together
stay within the 32 KB budget; every stored twin still equals the one-pass replay of its
twin-input log (under the promoted version, the rollback included); both changes left an
AMEND audit event with the actor, the patient pseudonym (rollback) and the from/to versions.

The current version here is deliberately worse than the standard one (fast level, fast expert
weights and no linear member: ``UNTUNED``) so that the rule has something to find on 24
patients in 6 weeks; the rule is the product's default
(:class:`workers.twin.promotion.PromotionRule`). Since the published forecast is the median on
the report grid, a fast level and fast weights alone differ too little from the standard version
on these 24 patients for the sign test (better on 16, worse on 8).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Any

from pymongo import MongoClient

from bench import _cohort
from novamind.app.cli import build_parser
from novamind.platform.privacy.audit import AuditLog, AuditQuery
from novamind.platform.producer import EventProducer
from novamind.platform.settings import Settings, TwinSettings
from schemas import models as m
from schemas.codec import AvroCodec
from schemas.models import AuditAction
from tests.integration.harness import isolated, read_topic, reader_codec, wait_caught_up, workers
from workers.pipeline.ingest import Inbound
from workers.pipeline.twin import TwinEntry, TwinProcessor, replay_log
from workers.runtime.worker import inbound
from workers.twin.serialize import BUDGET_BYTES, deserialize, state_digest
from workers.twin.twin import new_twin
from workers.twin.versions import STANDARD, VersionPlan, registry

UNTUNED = {"forecast.ALPHA_FAST": 0.9, "forecast.ALPHA_ERR": 0.5, "forecast.LINEAR_WARMUP": 1000}
PATIENTS, DAYS, PROMOTE_AT, ROLLBACK_AT = 24, 70, 42, 56
ACTOR = "ops-on-call"
codec = AvroCodec()
MODELS = {
    "features": m.PatientDailyFeatures,
    "assessment": m.AssessmentResult,
    "medication": m.MedicationEvent,
    "genetic": m.GeneticProfile,
    "demographics": m.Demographics,
}


def _record(kind: str, rec: dict[str, Any]) -> m.Record:
    """A bench cohort event as its contract record (times as datetimes, quality filled in)."""
    fields = dict(rec)
    for key in ("event_time", "received_time"):
        fields[key] = dt.datetime.fromtimestamp(rec[key] / 1000, dt.UTC)
    if kind == "features":
        fields.update(completeness=1.0, outlier_share=0.0, consistency=1.0)
    return MODELS[kind](**fields)


def _cohort_by_day() -> list[list[tuple[str, m.Record]]]:
    """Each day's twin inputs of the cohort, patients interleaved (one day = one slice)."""
    days: list[list[tuple[str, m.Record]]] = [[] for _ in range(DAYS)]
    start = _cohort.START
    for p in _cohort.generate_cohort(PATIENTS, 5, DAYS):
        for kind, rec in p.events:
            day = (dt.datetime.fromtimestamp(rec["event_time"] / 1000, dt.UTC).date() - start).days
            days[day].append((p.patient_id, _record(kind, rec)))
    return days


def _publish(settings: Settings, days: list[list[tuple[str, m.Record]]]) -> None:
    producer = EventProducer(kafka=settings.kafka, client_id="twin-versions-test")
    topic = settings.kafka.topic("twin-inputs")
    for day in days:
        for patient, record in day:
            producer.send(topic, key=patient.encode(), value=codec.encode(record))
    assert producer.flush(60) == 0


def _cli(settings: Settings, *argv: str) -> int:
    args = build_parser().parse_args(list(argv))
    return int(args.handler(args, settings))


def _amend_events(settings: Settings) -> list[Any]:
    from novamind.platform.mongo import database, mongo_client

    async def query() -> list[Any]:
        client = mongo_client(settings.mongo, app_name="twin-versions-test")
        try:
            audit = AuditLog(db=database(client, settings.mongo), codec=codec)
            return await audit.query(AuditQuery(action=AuditAction.AMEND))
        finally:
            await client.close()

    return asyncio.run(query())


def test_shadow_promotion_and_rollback_with_audit(settings: Settings, run_id: str, tmp_path: Path) -> None:
    twin = TwinSettings(
        version="untuned", shadow_version="standard", versions={"untuned": UNTUNED}, plan_refresh_s=1.0
    )
    scenario = isolated(settings, f"tver-{run_id}").model_copy(update={"twin": twin})
    versions = registry(twin.versions)
    untuned = versions.get("untuned")
    db = MongoClient(scenario.mongo.uri.get_secret_value(), tz_aware=True)[scenario.mongo.database]
    days = _cohort_by_day()

    # 1. the current version runs live, the standard one in shadow
    _publish(scenario, days[:PROMOTE_AT])
    with workers(scenario, tmp_path / "w", count=1) as running:
        wait_caught_up(scenario, running)
        twins = list(db.twins.find({}, {"state": 0}))
        assert len(twins) == PATIENTS
        for doc in twins:
            assert doc["model_version_id"] == untuned.id and doc["shadow"]["version_id"] == STANDARD.id
            assert doc["shadow"]["paired"]["pairs"] >= 14
            assert doc["total_state_bytes"] == doc["state_bytes"] + doc["shadow"]["state_bytes"]
            assert doc["total_state_bytes"] <= BUDGET_BYTES
        # the shadow published nothing: twin-updates and alerts are exactly the live twins'
        log = [inbound(msg) for msg in read_topic(scenario, "twin-inputs")]
        reference = _live_outputs(scenario, log, VersionPlan(live=untuned), versions)
        published = sorted(
            msg.value() for t in ("twin-updates", "twin-alerts") for msg in read_topic(scenario, t)
        )
        assert published == reference

        # 2. the rule, dry run then for real: audited, recorded, taken by the worker
        assert _cli(scenario, "twin", "promote", "--dry-run", "--actor", ACTOR) == 0
        assert db.twin_versions.find_one({"_id": "deployment"}) is None
        assert _cli(scenario, "twin", "promote", "--actor", ACTOR) == 0
        deployment = db.twin_versions.find_one({"_id": "deployment"})
        assert (deployment["live"], deployment["previous"]) == (STANDARD.id, untuned.id)
        assert deployment["history"][0]["report"]["promote"] is True
        time.sleep(1.5)  # past the workers' plan refresh interval: the next batch reads it
        _publish(scenario, days[PROMOTE_AT:ROLLBACK_AT])
        wait_caught_up(scenario, running)
        for doc in db.twins.find({}, {"state": 0}):
            assert doc["model_version_id"] == STANDARD.id and doc["shadow"] is None
        retired = {d["patient_id"]: d for d in db.twin_models.find({"note.replaced_by": STANDARD.id})}
        assert len(retired) == PATIENTS
        assert all(d["model_version_id"] == untuned.id for d in retired.values())
        promoted = list(db.twin_models.find({"note.promoted_from": untuned.id}, {"model": 0}))
        assert len(promoted) == PATIENTS and {d["model_version_id"] for d in promoted} == {STANDARD.id}

        # 3. one patient back on its pre-promotion snapshot, pinned to the replaced version
        patient = sorted(retired)[0]
        snapshot = retired[patient]["version"]
        assert _cli(scenario, "twin", "rollback", patient, "--to", str(snapshot), "--actor", ACTOR) == 0
        _publish(scenario, days[ROLLBACK_AT:])
        wait_caught_up(scenario, running)

    doc = db.twins.find_one({"_id": patient})
    assert doc["pinned"] is True and doc["model_version_id"] == untuned.id
    restored = db.twin_models.find_one({"patient_id": patient, "note.restored_from": snapshot})
    assert restored is not None and restored["version"] > snapshot
    others = {
        d["model_version_id"] for d in db.twins.find({"_id": {"$ne": patient}}, {"model_version_id": 1})
    }
    assert others == {STANDARD.id}

    # replay equals live through shadow, promotion and rollback (the restore is in the log)
    log = [inbound(msg) for msg in read_topic(scenario, "twin-inputs")]
    reference = replay_log(reader_codec(scenario), log, plan=VersionPlan(live=STANDARD), versions=versions)
    stored = {d["_id"]: deserialize(bytes(d["state"])) for d in db.twins.find({}, {"state": 1})}
    assert sorted(stored) == sorted(reference)
    for pid, state in reference.items():
        assert state_digest(stored[pid]) == state_digest(state), pid

    # the audit trail: who promoted what, who rolled which patient back from what to what
    events = _amend_events(scenario)
    promote = [e for e in events if e.resource == "twin_versions/promote"]
    rollback = [e for e in events if e.resource == "twins/rollback"]
    assert len(promote) == 1 and len(rollback) == 1
    assert promote[0].actor == ACTOR and promote[0].patient_id is None
    assert (promote[0].details["from_version"], promote[0].details["to_version"]) == (untuned.id, STANDARD.id)
    assert rollback[0].actor == ACTOR and rollback[0].patient_id == patient
    assert rollback[0].purpose == "OPERATIONS"
    assert rollback[0].details == {
        "from_version": STANDARD.id,
        "to_version": untuned.id,
        "snapshot": str(snapshot),
        "pinned": "true",
        "via": "cli",
    }
    reader = reader_codec(scenario)
    [restore] = [
        reader.decode_dict(msg.value())[1]
        for msg in read_topic(scenario, "twin-inputs")
        if reader.decode_dict(msg.value())[0] == "TwinRestore"
    ]
    assert restore["audit_event_id"] == rollback[0].event_id and restore["patient_id"] == patient
    audit_topic = [reader.decode_dict(msg.value())[1] for msg in read_topic(scenario, "audit-events")]
    assert {e["event_id"] for e in audit_topic} >= {promote[0].event_id, rollback[0].event_id}


def _live_outputs(settings: Settings, log: list[Inbound], plan: VersionPlan, versions: Any) -> list[bytes]:
    """The updates and alerts of the log's twins under ``plan`` without a shadow, encoded as
    the workers encode them (Confluent framing through the same registry, when one is set)."""
    writer = AvroCodec.from_settings(settings)
    entries = {msg.key.decode(): TwinEntry(new_twin(msg.key.decode())) for msg in log if msg.key is not None}
    result = TwinProcessor(codec=reader_codec(settings), plan=plan, versions=versions).process(log, entries)
    updates, alerts = settings.kafka.topic("twin-updates"), settings.kafka.topic("twin-alerts")
    encoded = [writer.encode_dict("TwinUpdate", u, topic=updates) for u in result.updates]
    encoded += [writer.encode_dict("TwinAlert", a, topic=alerts) for a in result.alerts]
    return sorted(encoded)
