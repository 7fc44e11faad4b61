"""Patients across calls: identity fallbacks, the patient index and parked resources."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

from connectors.ehr import FhirMapper
from connectors.ehr.patients import MemoryPatientIndex, canonical_subject, index_key, scrub
from connectors.ehr.reader import RawResource
from connectors.pseudonyms import pseudonymize
from tests.connectors.conftest import FIXTURES, PSEUDONYM_KEY

US_CORE = FIXTURES / "fhir/us-core"
US_CORE_PID = pseudonymize("http://example.org/patient/identifiers", "1032702", key=PSEUDONYM_KEY)


def mapper(index: MemoryPatientIndex, **kw) -> FhirMapper:
    return FhirMapper(
        key=PSEUDONYM_KEY,
        as_of=date(2024, 6, 1),
        received_time=datetime(2024, 6, 1, tzinfo=UTC),
        patients=index,
        **kw,
    )


def split_us_core(tmp_path: Path) -> tuple[Path, Path]:
    patient, rest = tmp_path / "patient", tmp_path / "rest"
    patient.mkdir()
    rest.mkdir()
    for f in US_CORE.glob("*.json"):
        shutil.copy(f, (patient if f.name == "patient-example.json" else rest) / f.name)
    return patient, rest


def test_observations_ingested_in_a_later_call_than_their_patient(tmp_path):
    patient, rest = split_us_core(tmp_path)
    index = MemoryPatientIndex()
    first = mapper(index)
    assert [t for _, t, _ in first.map_path(patient)] == ["Demographics"]
    second = mapper(index)
    out = list(second.map_path(rest))
    [(pid, _, rec)] = [o for o in out if o[1] == "AssessmentResult"]
    assert pid == US_CORE_PID and (rec["total"], rec["band"]) == (12, "MODERATE")
    assert second.summary.parked == 0 and second.summary.rejected == [] and second.summary.balanced


def test_resources_before_their_patient_are_parked_then_applied(tmp_path):
    patient, rest = split_us_core(tmp_path)
    index = MemoryPatientIndex()
    first = mapper(index)
    assert list(first.map_path(rest)) == []
    s = first.summary
    assert (s.read, s.parked, s.mapped, s.rejected) == (13, 12, 0, [])  # 69722-7 skipped: unmapped
    assert s.balanced
    second = mapper(index)
    out = list(second.map_path(patient))
    assert Counter(t for _, t, _ in out) == Counter({"Demographics": 1, "AssessmentResult": 1})
    s = second.summary
    assert (s.read, s.unparked, s.mapped, s.parked) == (1, 12, 2, 0)  # Patient + response
    assert s.skipped["Observation:derived-from-QuestionnaireResponse"] == 11 and s.balanced
    assert index.parked == {}  # applied, nothing left waiting


PATIENT = {"resourceType": "Patient", "id": "x1", "gender": "male"}
HR = {
    "resourceType": "Observation",
    "id": "hr",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
    "subject": {"reference": "Patient/x1", "display": "Alex Example"},
    "effectiveDateTime": "2024-05-01T08:00:00Z",
    "valueQuantity": {"value": 70, "unit": "/min", "code": "/min"},
}


def test_patient_identity_falls_back_to_another_identifier_then_the_logical_id():
    other = dict(
        PATIENT,
        identifier=[{"system": "urn:ssn", "value": "1", "use": "old"}, {"system": "urn:x", "value": "7"}],
    )
    m = mapper(MemoryPatientIndex())
    out = list(m.map_resources([RawResource("a", other), RawResource("b", dict(PATIENT, id="x2"))]))
    assert [p for p, _, _ in out] == [
        pseudonymize("urn:x", "7", key=PSEUDONYM_KEY),
        pseudonymize("fhir:ehr", "Patient/x2", key=PSEUDONYM_KEY),
    ]
    assert m.summary.identities == Counter({"identifier": 1, "logical-id": 1})
    assert set(m.identities.values()) == {"identifier", "logical-id"}


def test_subject_that_is_not_a_patient_is_rejected_not_parked():
    m = mapper(MemoryPatientIndex())
    list(m.map_resources([RawResource("a", dict(HR, subject={"reference": "Group/g1"}))]))
    assert m.summary.parked == 0 and "not a Patient reference" in m.summary.rejected[0].reason


def test_synthea_urn_uuid_subjects_resolve_through_the_index():
    index = MemoryPatientIndex()
    list(mapper(index).map_resources([RawResource("a", PATIENT)]))
    m = mapper(index)
    out = list(m.map_resources([RawResource("b", dict(HR, subject={"reference": "urn:uuid:x1"}))]))
    assert [t for _, t, _ in out] == ["ClinicalEvent"]
    assert canonical_subject("urn:uuid:x1") == "Patient/x1"


def test_index_keys_are_keyed_hashes_and_parked_copies_drop_free_text():
    key = index_key(PSEUDONYM_KEY, "fhir:ehr", "Patient/x1")
    assert key == index_key(PSEUDONYM_KEY, "fhir:ehr", "urn:uuid:x1") and "x1" not in key
    assert key != index_key(PSEUDONYM_KEY, "fhir:other", "Patient/x1")
    clean = scrub(dict(HR, text={"div": "<div>Alex</div>"}, note=[{"text": "anxious"}]))
    assert "Alex" not in json.dumps(clean) and "anxious" not in json.dumps(clean)
    assert clean["subject"] == {"reference": "Patient/x1"} and clean["valueQuantity"] == HR["valueQuantity"]


def test_a_failing_patient_fetch_parks_the_resources():
    from connectors.exceptions import SyncError

    def fetch(reference):
        raise SyncError("HTTP 403 from server")

    m = mapper(MemoryPatientIndex(), fetch_patient=fetch)
    assert list(m.map_resources([RawResource("a", HR)])) == []
    assert m.summary.parked == 1 and m.summary.rejected == [] and m.summary.balanced


SYNTHEA = FIXTURES / "fhir/synthea/sample_complete_patient_head.json"


def synthea_parts() -> tuple[list[RawResource], list[RawResource]]:
    entries = json.loads(SYNTHEA.read_text())["entry"]
    raws = [RawResource(f"synthea#{i}", e["resource"], e["fullUrl"]) for i, e in enumerate(entries)]
    return raws[:1], raws[1:]


def test_synthea_urn_uuid_subjects_in_a_later_call_and_parked_before_their_patient():
    patient, rest = synthea_parts()
    pid = pseudonymize(
        "http://hospital.smarthealthit.org", "d5582579-7193-4866-5560-a01e723b6552", key=PSEUDONYM_KEY
    )
    index = MemoryPatientIndex()
    list(mapper(index).map_resources(patient))
    later = mapper(index)
    out = list(later.map_resources(rest))
    assert Counter(t for _, t, _ in out) == {"ClinicalEvent": 4} and {p for p, _, _ in out} == {pid}
    assert later.summary.skipped == Counter({"CareTeam": 1, "Claim": 1}) and later.summary.balanced

    index = MemoryPatientIndex()  # the other way round: encounters and conditions wait
    early = mapper(index)
    assert list(early.map_resources(rest)) == [] and early.summary.parked == 4
    arrival = mapper(index)
    out = list(arrival.map_resources(patient))
    assert Counter(t for _, t, _ in out) == {"Demographics": 1, "ClinicalEvent": 4}
    assert (arrival.summary.unparked, arrival.summary.mapped) == (4, 5)
    blob = json.dumps([r for _, _, r in out], default=str)
    assert not any(s in blob for s in ("Lindsay928", "Gerlach374", "999-34-2070", "1950-10-24", "555-450"))


def test_an_unreachable_index_is_a_typed_connector_error():
    import asyncio

    import pytest
    from pymongo import AsyncMongoClient

    from connectors.ehr.patients import MongoPatientIndex
    from connectors.exceptions import PatientIndexError

    loop = asyncio.new_event_loop()
    client: AsyncMongoClient = AsyncMongoClient("mongodb://127.0.0.1:1/", serverSelectionTimeoutMS=200)
    try:
        index = MongoPatientIndex(db=client["x"], loop=loop, key=PSEUDONYM_KEY, source="fhir:test")
        with pytest.raises(PatientIndexError, match="ServerSelectionTimeoutError"):
            index.lookup("Patient/p1")
    finally:
        loop.run_until_complete(client.close())
        loop.close()
