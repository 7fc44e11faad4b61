"""Every source connector against the real broker and audit store.

Each test runs a connector job (``connectors.jobs``, what ``novamind connect`` runs; the SIGTERM
test runs the command itself) or the simulator's ``publish`` on
vendor-shaped fixtures, reads the topics back with the product's topic reader and checks the
exact decoded records, the pseudonym keys, deterministic event ids across two runs, the
summary's rejections, the audit events, and that no real identifier reaches a key or a value.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr
from pymongo import MongoClient

from connectors.ehr import FhirMapper
from connectors.ehr.patients import index_key
from connectors.jobs import (
    JobResult,
    Reporting,
    run_fhir_files,
    run_fhir_sync,
    run_wearable,
)
from connectors.pseudonyms import device_ref, pseudonymize
from connectors.simulator import simulate
from connectors.simulator.publish import publish
from connectors.wearables import WearableFormat
from connectors.wearables.apple_health import parse_export
from connectors.wearables.fitbit import parse_fitbit
from connectors.wearables.openmhealth import parse_omh
from novamind.platform.kafka import admin_config
from novamind.platform.lag import end_offsets
from novamind.platform.mongo import database, mongo_client
from novamind.platform.privacy.audit import AuditLog, AuditQuery
from novamind.platform.privacy.fieldcrypt import FieldCipher, field_context, generate_key
from novamind.platform.producer import EventProducer
from novamind.platform.settings import PROJECT_ROOT, SecuritySettings, Settings
from novamind.platform.topicadmin import ensure_topics
from novamind.platform.topicreader import read_all
from schemas.codec import AvroCodec
from schemas.models import EncryptedText
from tests.integration.harness import reader_codec

FIXTURES = Path(__file__).resolve().parents[1] / "connectors" / "fixtures"
KEY = "integration-pseudonym-key-0123456789"
AS_OF = dt.date(2024, 6, 1)
TOPICS = ("ehr-clinical-events", "wearable-biometrics", "patient-reports", "audit-events")
codec = AvroCodec()

SYNTHEA_MRN = ("http://hospital.smarthealthit.org", "8c95253e-8ee8-9ae8-6d40-021d702dc78e")
SYNTHEA_PHI = ("8c95253e-8ee8-9ae8", "Kuhn96", "Marcia", "999-44-7259", "1987-06-23", "555-846-1732", "Bosco")


# ------------------------------------------------------------------ helpers
@pytest.fixture
def scenario(settings: Settings, run_id: str, request: pytest.FixtureRequest) -> Iterator[Settings]:
    """Settings with this test's own topics (created from the registry, deleted after), its own
    database (the FHIR patient index and parked resources persist: another test's must not be
    released here) and the pseudonym key."""
    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40]
    kafka = settings.kafka.model_copy(update={"topic_prefix": f"conn-{run_id}-{name}."})
    assert ensure_topics(kafka) == 0
    mongo = settings.mongo.model_copy(
        update={"database": f"{settings.mongo.database}_conn_{run_id}_{zlib.crc32(name.encode()):08x}"}
    )
    security = SecuritySettings(pseudonym_key=SecretStr(KEY))
    yield settings.model_copy(update={"kafka": kafka, "mongo": mongo, "security": security})
    with MongoClient(mongo.uri.get_secret_value()) as client:
        client.drop_database(mongo.database)
    admin = AdminClient(admin_config(kafka))
    created = [t for t in admin.list_topics(timeout=30).topics if t.startswith(kafka.topic_prefix)]
    for future in admin.delete_topics(created, operation_timeout=30).values():
        future.result()


def completed(result: JobResult) -> dict[str, Any]:
    """The JSON summary of a run that delivered everything it sent."""
    summary = result.as_dict()
    assert result.complete, summary
    return summary


def settling(exc: KafkaException) -> bool:
    """A metadata error of a topic just created on a busy broker (leadership not yet known)."""
    error = exc.args[0]
    return bool(error.retriable()) or error.code() in (
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
    )


def messages(settings: Settings, topic: str) -> list[Any]:
    for attempt in range(5):
        try:
            return read_all(settings.kafka, settings.kafka.topic(topic))
        except KafkaException as exc:
            if not settling(exc) or attempt == 4:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def decoded(settings: Settings, topic: str) -> list[tuple[bytes, str, dict[str, Any]]]:
    reader = reader_codec(settings)
    return [(m.key(), *reader.decode_dict(m.value())) for m in messages(settings, topic)]


def millis(value: Any) -> Any:
    """Instants at the contract's millisecond precision (Avro truncates)."""
    return (
        value.replace(microsecond=value.microsecond // 1000 * 1000) if isinstance(value, datetime) else value
    )


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """A record without its receive time, instants in milliseconds."""
    return {k: millis(v) for k, v in record.items() if k != "received_time"}


def by_id(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["event_id"]: comparable(r) for r in records}


def assert_no_phi(settings: Settings, secrets: tuple[str, ...]) -> None:
    """No secret appears in any key or value of the source and audit topics."""
    for topic in TOPICS:
        for m in messages(settings, topic):
            blob = (m.key() or b"") + m.value()
            for secret in secrets:
                assert secret.encode() not in blob, f"{secret!r} leaked into {topic}"


def audit_events(settings: Settings, patient_id: str) -> list[Any]:
    async def query() -> list[Any]:
        client = mongo_client(settings.mongo, app_name="connectors-test")
        try:
            log = AuditLog(db=database(client, settings.mongo), codec=codec)
            return await log.query(AuditQuery(patient_id=patient_id))
        finally:
            await client.close()

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(query())
    finally:
        loop.close()


def expected_fhir(path: Path, *, source: str = "fhir:ehr") -> list[tuple[str, str, dict[str, Any]]]:
    return list(FhirMapper(key=KEY.encode(), as_of=AS_OF, source=source).map_path(path))


# ------------------------------------------------------------------ FHIR files
def test_fhir_bundle_file_exact_records_keys_ids_audit(scenario: Settings):
    bundle = FIXTURES / "fhir/synthea_patient_bundle.json"
    pid = pseudonymize(*SYNTHEA_MRN, key=KEY.encode())
    result = run_fhir_files([bundle], scenario, as_of=AS_OF)
    summary = completed(result)
    expected = expected_fhir(bundle)
    assert summary["read"] == 20 and summary["records"] == len(expected) == 8
    assert summary["produced"] == {"ehr-clinical-events": 8}
    assert summary["skipped"] == {"Claim": 1, "Observation:unmapped-code": 1}
    assert (summary["rejected"], summary["unacknowledged"], summary["patients"], summary["audited"]) == (
        0,
        0,
        1,
        1,
    )

    got = decoded(scenario, "ehr-clinical-events")
    assert {key for key, _, _ in got} == {pid.encode()}
    assert Counter(name for _, name, _ in got) == Counter(t for _, t, _ in expected)
    assert by_id([r for _, _, r in got]) == by_id([r for _, _, r in expected])

    assert result.free_text == "dropped" and result.warnings == ()  # no field keys configured
    again = run_fhir_files([bundle], scenario, as_of=AS_OF)
    assert again.complete and again.produced == 8 and again.audited == 1
    ids = Counter(r["event_id"] for _, _, r in decoded(scenario, "ehr-clinical-events"))
    assert set(ids) == {r["event_id"] for _, _, r in expected} and set(ids.values()) == {2}

    events = audit_events(scenario, pid)
    assert len(events) == 2 and len({e.details["run"] for e in events}) == 2
    event = events[0]
    assert (event.actor, str(event.action), event.purpose, event.resource) == (
        "connector-ehr",
        "COLLECT",
        "TREATMENT",
        "fhir:ehr",
    )
    assert event.details["system"] == "fhir:ehr" and event.details["connector"] == "fhir"
    assert "system/Patient.read" in event.details["scopes"]
    assert "system/MedicationStatement.read" in event.details["scopes"] + event.details.get("scopes_2", "")
    audit_keys = {m.key() for m in messages(scenario, "audit-events")}
    assert audit_keys == {pid.encode()}
    assert_no_phi(scenario, SYNTHEA_PHI)


def test_fhir_free_text_reaches_kafka_only_field_encrypted(scenario: Settings, tmp_path: Path):
    keys = tmp_path / "field-keys.json"
    keys.write_text(json.dumps({"k1": generate_key()}))
    security = scenario.security.model_copy(update={"field_keys_file": keys, "active_field_key_id": "k1"})
    secured = scenario.model_copy(update={"security": security})
    bundle = FIXTURES / "fhir/synthea_patient_bundle.json"
    result = run_fhir_files([bundle], secured, as_of=AS_OF)
    summary = completed(result)
    assert summary["free_text"] == "encrypted" and summary["produced"] == {"ehr-clinical-events": 8}

    cipher = FieldCipher.from_settings(security)

    def opened(record: dict[str, Any]) -> str:
        context = field_context(record["patient_id"], "ClinicalEvent", "narrative")
        return cipher.decrypt(EncryptedText(**record["narrative"]), context=context)

    narratives = {
        r["kind"]: opened(r)
        for _, name, r in decoded(secured, "ehr-clinical-events")
        if name == "ClinicalEvent" and r["narrative"] is not None
    }
    assert "sister Anna is main support" in narratives["CONDITION"]
    assert_no_phi(secured, (*SYNTHEA_PHI, "sister Anna", "divorce", "anxious"))


def test_fhir_ndjson_directory_reports_each_bad_resource(scenario: Settings):
    bulk = FIXTURES / "fhir/bulk"
    notes = io.StringIO()
    reporting = Reporting(notes, prefix="fhir: ", progress=False)
    summary = completed(run_fhir_files([bulk], scenario, as_of=AS_OF, reporting=reporting))
    # rejections are reported, everything sent was acknowledged
    assert summary["read"] == 14 and summary["skipped"] == {"Procedure": 1}
    assert summary["rejected"] == 4 and summary["parked"] == 1  # o4: Patient/b9 not in the input
    assert summary["identities"] == {"mrn": 2, "logical-id": 1}  # b3 has no identifier
    rejections = {(r["id"], r["path"].removeprefix(f"{bulk}/")): r["reason"] for r in summary["rejections"]}
    assert set(rejections) == {
        ("c2", "Condition.ndjson:2"),
        ("o3", "Observation.ndjson:3.valueQuantity.value"),
        (None, "Observation.ndjson:4"),
        ("o6", "Observation.ndjson:7"),
    }
    assert "out of range" in rejections[("o6", "Observation.ndjson:7")]
    assert notes.getvalue().count("fhir: rejected ") == 4  # one line each, as they happen

    expected = expected_fhir(bulk)
    got = decoded(scenario, "ehr-clinical-events")
    assert summary["produced"] == {"ehr-clinical-events": len(expected)}  # mapped as in one process
    assert len(got) == len(expected)  # and all of it on the topic
    assert by_id([r for _, _, r in got]) == by_id([r for _, _, r in expected])
    patients = {pseudonymize("urn:oid:1.2.840.114350", mrn, key=KEY.encode()) for mrn in ("E1001", "E1002")}
    b3 = pseudonymize("fhir:ehr", "Patient/b3", key=KEY.encode())
    assert {key.decode() for key, _, _ in got} == patients | {b3}
    assert all(key.decode() == rec["patient_id"] for key, _, rec in got)
    for pid in patients:
        assert [(e.details["connector"], e.details["identity"]) for e in audit_events(scenario, pid)] == [
            ("fhir", "mrn")
        ]
    assert [e.details["identity"] for e in audit_events(scenario, b3)] == ["logical-id"]
    assert_no_phi(scenario, ("E1001", "E1002", "NoIdentifier", "2003-02-14", "1941-12-31"))


def parked_documents(settings: Settings) -> list[dict[str, Any]]:
    async def query() -> list[dict[str, Any]]:
        client = mongo_client(settings.mongo, app_name="connectors-test")
        try:
            return await database(client, settings.mongo)["fhir_parked"].find({}).to_list(None)
        finally:
            await client.close()

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(query())
    finally:
        loop.close()


def test_fhir_resources_wait_in_mongodb_for_a_patient_of_a_later_call(scenario: Settings, tmp_path):
    """US Core examples (tests/connectors/fixtures/fhir/us-core): the PHQ-9 response and its
    Observations arrive before Patient/example; they are parked, then applied when it comes;
    a heart rate of a later call finds the patient through the stored index."""
    source = "fhir:us-core-" + tmp_path.name[-12:]  # this test's own index entries
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    for f in (FIXTURES / "fhir/us-core").glob("*.json"):
        (second if f.name == "patient-example.json" else first).joinpath(f.name).write_bytes(f.read_bytes())

    summary = completed(run_fhir_files([first], scenario, as_of=AS_OF, source=source))
    assert (summary["read"], summary["parked"], summary["rejected"], summary["produced"]) == (13, 12, 0, {})
    waiting_for = index_key(KEY.encode(), source, "Patient/example")  # keyed hash, no logical id
    parked = [d for d in parked_documents(scenario) if d["patient"] == waiting_for]
    assert len(parked) == 12 and not any(d["encrypted"] for d in parked)  # no field keys: scrubbed
    assert all(
        "Practitioner/practitioner-1" in d["resource"] for d in parked if "Observation" in d["resource"]
    )

    summary = completed(run_fhir_files([second], scenario, as_of=AS_OF, source=source))
    assert (summary["read"], summary["unparked"], summary["parked"], summary["mapped"]) == (1, 12, 0, 2)
    assert summary["produced"] == {"ehr-clinical-events": 2}
    assert [d for d in parked_documents(scenario) if d["patient"] == waiting_for] == []  # applied
    pid = pseudonymize("http://example.org/patient/identifiers", "1032702", key=KEY.encode())
    [result] = [r for k, name, r in decoded(scenario, "ehr-clinical-events") if name == "AssessmentResult"]
    assert (result["patient_id"], result["total"], result["band"]) == (pid, 12, "MODERATE")

    later = tmp_path / "later.json"
    later.write_text(
        json.dumps(
            {
                "resourceType": "Observation",
                "id": "hr-later",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": "Patient/example"},
                "effectiveDateTime": "2024-05-01T08:00:00Z",
                "valueQuantity": {"value": 72, "unit": "/min", "code": "/min"},
            }
        )
    )
    summary = completed(run_fhir_files([later], scenario, as_of=AS_OF, source=source))
    assert (summary["read"], summary["mapped"], summary["parked"]) == (1, 1, 0)
    keys = [k for k, name, r in decoded(scenario, "ehr-clinical-events") if name == "ClinicalEvent"]
    assert keys == [pid.encode()]
    assert_no_phi(scenario, ("1032702", "Amy", "Shaw"))


# ------------------------------------------------------------------ wearables
def test_fitbit_files_for_an_mrn_and_device_user(scenario: Settings):
    mrn, system, user = "MRN-FIT-0042", "urn:oid:2.999.7", "FITBIT-7QX2"
    pid = pseudonymize(system, mrn, key=KEY.encode())
    ref = device_ref("fitbit", user, key=KEY.encode())
    folder = FIXTURES / "fitbit"
    ids = {"mrn": mrn, "mrn_system": system, "device_user": user, "time_zone": "America/New_York"}
    summary = completed(run_wearable(WearableFormat.FITBIT, [folder], scenario, **ids))
    expected = []
    for file in sorted(folder.glob("*.json")):
        if file.name != "heart_malformed.json":
            payload = json.loads(file.read_text())
            expected += parse_fitbit(payload, patient_id=pid, device_id=ref, tz="America/New_York")
    assert summary["read"] == 5 and summary["records"] == len(expected) == 18
    assert summary["produced"] == {"wearable-biometrics": 18}
    [bad] = summary["rejections"]
    assert bad == {
        "id": None,
        "path": f"{folder}/heart_malformed.json#$['activities-heart-intraday'].dataset[1].value",
        "reason": "expected a number, got 'n/a'",
    }
    got = decoded(scenario, "wearable-biometrics")
    assert {(key, name) for key, name, _ in got} == {(pid.encode(), "BiometricSample")}
    assert {r["device_id"] for _, _, r in got} == {ref}
    assert by_id([r for _, _, r in got]) == by_id(expected)

    assert run_wearable(WearableFormat.FITBIT, [folder], scenario, **ids).complete
    ids = Counter(r["event_id"] for _, _, r in decoded(scenario, "wearable-biometrics"))
    assert set(ids) == {r["event_id"] for r in expected} and set(ids.values()) == {2}
    [first, second] = audit_events(scenario, pid)
    assert first.actor == "connector-wearables" and first.details["scopes"] == "activity heartrate sleep"
    assert first.details["run"] != second.details["run"]
    assert_no_phi(scenario, (mrn, user))


def test_apple_health_exports_stream_with_bad_records_and_broken_xml(scenario: Settings):
    pid = "p_" + "a1" * 16
    folder = FIXTURES / "apple_health"
    summary = completed(run_wearable(WearableFormat.APPLE_HEALTH, [folder], scenario, patient=pid))
    ref = device_ref("apple_health", pid, key=KEY.encode())
    expected = list(parse_export(folder / "export.xml", patient_id=pid, device_id=ref))
    expected += list(
        parse_export(folder / "export_bad_records.xml", patient_id=pid, device_id=ref, errors=[])
    )
    with pytest.raises(Exception, match="malformed XML"):  # the truncated file's readable head
        for sample in parse_export(folder / "export_truncated.xml", patient_id=pid, device_id=ref):
            expected.append(sample)
    assert summary["produced"] == {"wearable-biometrics": len(expected)}
    assert [(r["path"].removeprefix(f"{folder}/"), r["reason"][:13]) for r in summary["rejections"]] == [
        ("export_bad_records.xml#/HealthData/Record[2]/@value", "bad value 'fi"),
        ("export_bad_records.xml#/HealthData/Record[6]/@unit", "unit 'count/m"),
        ("export_truncated.xml:31", "malformed XML"),
    ]
    got = decoded(scenario, "wearable-biometrics")
    assert {key for key, _, _ in got} == {pid.encode()}
    assert by_id([r for _, _, r in got]) == by_id(expected)
    assert [e.details["connector"] for e in audit_events(scenario, pid)] == ["apple-health"]
    assert_no_phi(scenario, ("Jane", "1985-02-11"))  # device owner's name, date of birth in <Me>


def test_openmhealth_points_with_malformed_ones(scenario: Settings):
    pid = "p_" + "b2" * 16
    files = [FIXTURES / "openmhealth/datapoints.json", FIXTURES / "openmhealth/malformed.json"]
    summary = completed(
        run_wearable(WearableFormat.OPENMHEALTH, files, scenario, patient=pid, device_user="omh-user-9")
    )
    ref = device_ref("openmhealth", "omh-user-9", key=KEY.encode())
    expected = []
    for file in files:
        expected += parse_omh(json.loads(file.read_text()), patient_id=pid, device_id=ref, errors=[])
    assert (summary["read"], summary["records"], summary["rejected"]) == (7, 5, 2)
    assert [r["id"] for r in summary["rejections"]] == ["243c773b-8936-407e-9c23-270d0ea49cc4", None]
    got = decoded(scenario, "wearable-biometrics")
    assert by_id([r for _, _, r in got]) == by_id(expected)
    again = run_wearable(WearableFormat.OPENMHEALTH, files, scenario, patient=pid, device_user="omh-user-9")
    assert again.complete and dict(again.summary.acknowledged) == {"wearable-biometrics": 5}
    ids = Counter(r["event_id"] for _, _, r in decoded(scenario, "wearable-biometrics"))
    once = Counter(r["event_id"] for r in expected)  # malformed.json repeats one good point
    assert ids == once + once and len(once) == 4
    assert_no_phi(scenario, ("omh-user-9",))


# ------------------------------------------------------------------ simulator
def test_simulator_publish_delivers_every_record_and_the_garbage(scenario: Settings):
    cohort = simulate(3, 4, 21, dt.date(2026, 3, 2), bad_share=0.02)
    producer = EventProducer(kafka=scenario.kafka, client_id="connectors-test-sim")
    summary = publish(cohort.deliveries, producer=producer, codec=codec, topic_name=scenario.kafka.topic)
    assert summary["unacknowledged"] == 0 and summary["rejected"] == {}
    assert summary["produced"] == summary["sent"]
    raw = [d["record"]["raw"] for d in cohort.deliveries if d["record_type"] == "RAW"]
    records = [d for d in cohort.deliveries if d["record_type"] != "RAW"]
    assert raw, "the cohort should carry some undecodable deliveries"
    for topic in ("wearable-biometrics", "patient-reports", "ehr-clinical-events"):
        got = messages(scenario, topic)
        assert len(got) == summary["sent"].get(topic, 0)
        garbage = [m.value() for m in got if not m.key()]
        assert sorted(garbage) == (sorted(raw) if topic == "wearable-biometrics" else [])
        keyed = [(m.key(), *reader_codec(scenario).decode_dict(m.value())) for m in got if m.key()]
        assert all(key.decode() == rec["patient_id"] for key, _, rec in keyed)
        want = {
            d["record"]["event_id"]: {k: millis(v) for k, v in d["record"].items()}
            for d in records
            if {"BiometricSample": "wearable-biometrics", "Demographics": "ehr-clinical-events"}.get(
                d["record_type"], "patient-reports"
            )
            == topic
        }
        have = {rec["event_id"]: rec for _, _, rec in keyed}
        assert have == want
    mrns = tuple(p.mrn for p in cohort.patients)
    assert_no_phi(scenario, mrns)


# ------------------------------------------------------------------ FHIR REST sync
class FhirServer:
    """A small FHIR R4 server on 127.0.0.1 in its own thread: token endpoint, ``_lastUpdated``
    filter, ``link[next]`` paging (two resources per page)."""

    def __init__(self) -> None:
        self.resources: dict[str, list[dict[str, Any]]] = {"Patient": [], "Observation": []}
        self.queries: list[tuple[str, dict[str, str]]] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.url = ""

    def app(self) -> web.Application:
        async def token(request: web.Request) -> web.Response:
            form = await request.post()
            return web.json_response({"access_token": "tok", "expires_in": 300, "scope": form["scope"]})

        async def search(request: web.Request) -> web.Response:
            rtype = request.match_info["rtype"]
            query = dict(request.query)
            self.queries.append((rtype, query))
            if request.headers.get("Authorization") != "Bearer tok":
                return web.json_response({}, status=401)
            since = query.get("_lastUpdated", "ge").removeprefix("ge")
            found = sorted(
                (r for r in self.resources.get(rtype, []) if r["meta"]["lastUpdated"] >= since),
                key=lambda r: r["meta"]["lastUpdated"],
            )
            page = int(query.get("page", "1"))
            body: dict[str, Any] = {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": r} for r in found[(page - 1) * 2 : page * 2]],
            }
            if len(found) > page * 2:
                body["link"] = [
                    {"relation": "next", "url": str(request.url.update_query(page=str(page + 1)))}
                ]
            return web.json_response(body)

        async def read(request: web.Request) -> web.Response:
            rtype, rid = request.match_info["rtype"], request.match_info["rid"]
            self.queries.append((f"{rtype}/{rid}", {}))
            if request.headers.get("Authorization") != "Bearer tok":
                return web.json_response({}, status=401)
            found = next((r for r in self.resources.get(rtype, []) if r["id"] == rid), None)
            if found is None:
                return web.json_response({"resourceType": "OperationOutcome"}, status=404)
            return web.json_response(found)

        app = web.Application()
        app.router.add_post("/token", token)
        app.router.add_get("/fhir/{rtype}", search)
        app.router.add_get("/fhir/{rtype}/{rid}", read)
        return app

    def __enter__(self) -> FhirServer:
        self.thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)
        return self

    async def _start(self) -> str:
        self.runner = web.AppRunner(self.app())
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()


def observation(i: int, updated: str, subject: str = "Patient/r1") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"o{i}",
        "status": "final",
        "meta": {"lastUpdated": updated},
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": subject},
        "effectiveDateTime": f"2024-05-01T0{i}:00:00Z",
        "valueQuantity": {"value": 60 + i, "unit": "/min", "code": "/min"},
    }


@pytest.fixture
def fhir_server() -> Iterator[FhirServer]:
    with FhirServer() as server:
        yield server


def test_fhir_sync_cursor_moves_only_after_kafka_acknowledged(scenario: Settings, tmp_path, fhir_server):
    patient = {
        "resourceType": "Patient",
        "id": "r1",
        "meta": {"lastUpdated": "2024-05-01T10:00:00Z"},
        "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-SYNC-9"}],
        "gender": "female",
        "birthDate": "1990-01-01",
    }
    fhir_server.resources["Patient"] = [patient]
    fhir_server.resources["Observation"] = [observation(i, f"2024-05-01T1{i}:00:00Z") for i in (1, 2, 3)]
    (tmp_path / "secret").write_text("s3cret\n")
    state = tmp_path / "state"
    base = {
        "base_url": f"{fhir_server.url}/fhir",
        "token_url": f"{fhir_server.url}/token",
        "client_id": "novamind",
        "client_secret_file": tmp_path / "secret",
        "state_dir": state,
        "as_of": AS_OF,
    }
    pid = pseudonymize("urn:oid:1.2.3", "MRN-SYNC-9", key=KEY.encode())

    summary = completed(run_fhir_sync(scenario, types=["Patient", "Observation"], **base))
    assert summary["produced"] == {"ehr-clinical-events": 4} and summary["read"] == 4
    cursor = json.loads((state / "cursor.json").read_text())
    assert cursor == {"Patient": "2024-05-01T10:00:00Z", "Observation": "2024-05-01T13:00:00Z"}
    assert not (state / "patients.json").exists()  # the patient index lives in MongoDB
    [event] = audit_events(scenario, pid)
    assert event.details["scopes"] == "system/Patient.read system/Observation.read"
    assert event.resource == f"{fhir_server.url}/fhir"

    # A new observation arrives; the broker is unreachable: nothing acknowledged, cursor kept.
    fhir_server.resources["Observation"].append(observation(4, "2024-05-01T14:00:00Z"))
    down = scenario.model_copy(
        update={"kafka": scenario.kafka.model_copy(update={"bootstrap_servers": "127.0.0.1:1"})}
    )
    result = run_fhir_sync(down, types=["Observation"], flush_timeout=2, **base)
    assert not result.complete and result.summary.unacknowledged == 2 and result.produced == 0
    assert json.loads((state / "cursor.json").read_text()) == cursor

    # Observations only: the subject resolves from the stored patient index, cursor advances.
    fhir_server.queries.clear()
    summary = completed(run_fhir_sync(scenario, types=["Observation"], **base))
    assert (
        "Observation",
        {"_count": "200", "_sort": "_lastUpdated", "_lastUpdated": "ge2024-05-01T13:00:00Z"},
    ) in (fhir_server.queries)
    assert summary["rejected"] == 0 and summary["produced"] == {"ehr-clinical-events": 2}
    assert json.loads((state / "cursor.json").read_text())["Observation"] == "2024-05-01T14:00:00Z"
    got = decoded(scenario, "ehr-clinical-events")
    assert {key for key, _, _ in got} == {pid.encode()}
    values = Counter(rec["value_number"] for _, name, rec in got if name == "ClinicalEvent")
    assert values == {61.0: 1, 62.0: 1, 63.0: 2, 64.0: 1}  # o3 re-read at the cursor boundary

    # Observations of a Patient the sync has not seen: read from the server by id; one whose
    # Patient the server does not have is parked, not dropped.
    r2 = dict(patient, id="r2", identifier=[{"system": "urn:oid:1.2.3", "value": "MRN-SYNC-10"}])
    fhir_server.resources["Patient"].append(r2)
    fhir_server.resources["Observation"] += [
        observation(5, "2024-05-01T15:00:00Z", "Patient/r2"),
        observation(6, "2024-05-01T16:00:00Z", "Patient/r404"),
    ]
    summary = completed(run_fhir_sync(scenario, types=["Observation"], **base))
    assert ("Patient/r2", {}) in fhir_server.queries and ("Patient/r404", {}) in fhir_server.queries
    assert (summary["parked"], summary["rejected"], summary["identities"]) == (1, 0, {"identifier": 1})
    r2_pid = pseudonymize("urn:oid:1.2.3", "MRN-SYNC-10", key=KEY.encode())
    got = decoded(scenario, "ehr-clinical-events")
    assert Counter(name for key, name, _ in got if key == r2_pid.encode()) == {
        "Demographics": 1,
        "ClinicalEvent": 1,
    }
    assert_no_phi(scenario, ("MRN-SYNC-9", "MRN-SYNC-10", "1990-01-01"))


def test_fhir_sync_imports_the_patient_index_a_state_directory_kept(
    scenario: Settings, tmp_path, fhir_server
):
    """Before the index moved to MongoDB, fhir-sync kept ``patients.json`` in its state
    directory; its Patients are imported, so their Observations still resolve."""
    pid = pseudonymize("urn:oid:1.2.3", "MRN-LEGACY-1", key=KEY.encode())
    state = tmp_path / "state"
    state.mkdir()
    (state / "patients.json").write_text(json.dumps({"Patient/legacy-1": pid, "urn:uuid:legacy-1": pid}))
    fhir_server.resources["Observation"] = [observation(1, "2024-05-01T11:00:00Z", "Patient/legacy-1")]
    (tmp_path / "secret").write_text("s3cret\n")
    result = run_fhir_sync(
        scenario,
        base_url=f"{fhir_server.url}/fhir",
        token_url=f"{fhir_server.url}/token",
        client_id="novamind",
        client_secret_file=tmp_path / "secret",
        state_dir=state,
        types=["Observation"],
        source="fhir:legacy-" + tmp_path.name[-8:],
    )
    summary = completed(result)
    assert (summary["parked"], summary["produced"]) == (0, {"ehr-clinical-events": 1})
    assert ("Patient/legacy-1", {}) not in fhir_server.queries  # known: not fetched
    assert [k for k, _, _ in decoded(scenario, "ehr-clinical-events")] == [pid.encode()]
    assert (state / "patients.json.imported").exists() and not (state / "patients.json").exists()


# ------------------------------------------------------------------ SIGTERM
def _any_record(settings: Settings, topic: str) -> bool:
    try:
        return sum(end_offsets(settings.kafka, [topic]).values()) > 0
    except KafkaException as exc:
        if settling(exc):
            return False
        raise


def test_sigterm_stops_reading_flushes_and_accounts_for_everything(scenario: Settings, tmp_path):
    export = tmp_path / "export.xml"
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with export.open("w") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<HealthData locale="en_US">\n')
        for i in range(150_000):
            t = dt.datetime.fromtimestamp(start.timestamp() + 30 * i, UTC).strftime("%Y-%m-%d %H:%M:%S %z")
            out.write(
                f' <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Watch" unit="count/min" '
                f'startDate="{t}" endDate="{t}" value="{60 + i % 40}"/>\n'
            )
        out.write("</HealthData>\n")
    env = {
        **os.environ,
        "NOVAMIND_KAFKA__BOOTSTRAP_SERVERS": scenario.kafka.bootstrap_servers,
        "NOVAMIND_KAFKA__TOPIC_PREFIX": scenario.kafka.topic_prefix,
        "NOVAMIND_KAFKA__SCHEMA_REGISTRY_URL": scenario.kafka.schema_registry_url or "",
        "NOVAMIND_MONGO__URI": scenario.mongo.uri.get_secret_value(),
        "NOVAMIND_MONGO__DATABASE": scenario.mongo.database,
        "NOVAMIND_SECURITY__PSEUDONYM_KEY": KEY,
        "NOVAMIND_LOG_FORMAT": "json",
    }
    pid = "p_" + "c3" * 16
    proc = subprocess.Popen(
        [sys.executable, "-m", "novamind.app.cli", "connect", "apple-health", str(export), "--patient", pid],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    topic = scenario.kafka.topic("wearable-biometrics")
    try:
        deadline = time.monotonic() + 60
        while not _any_record(scenario, topic):
            assert proc.poll() is None and time.monotonic() < deadline, "no record reached the topic"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["interrupted"] == "SIGTERM" and summary["unacknowledged"] == 0
    produced = summary["produced"]["wearable-biometrics"]
    assert 0 < produced < 150_000
    assert len(messages(scenario, "wearable-biometrics")) == produced
