import json
from collections import Counter
from datetime import UTC, date, datetime

import pytest

from connectors.ehr import FhirMapper
from connectors.ehr.reader import iter_resources
from connectors.pseudonyms import pseudonymize
from connectors.simulator.synthea import synthea_like_bundle
from novamind.platform.privacy.exceptions import DecryptionFailed
from novamind.platform.privacy.fieldcrypt import FieldCipher, field_context
from schemas.models import EncryptedText
from tests.connectors.conftest import PSEUDONYM_KEY

AS_OF = date(2024, 6, 1)
RECEIVED = datetime(2024, 6, 1, tzinfo=UTC)


def mapper(**kw):
    return FhirMapper(key=PSEUDONYM_KEY, as_of=AS_OF, received_time=RECEIVED, source="fhir:test", **kw)


def by_type(out):
    types = {}
    for _pid, rtype, rec in out:
        types.setdefault(rtype, []).append(rec)
    return types


def test_synthea_bundle_maps_every_record_type(fixtures):
    m = mapper(emit_biometrics=True)
    out = list(m.map_path(fixtures / "fhir/synthea_patient_bundle.json"))
    pid = pseudonymize(
        "http://hospital.smarthealthit.org", "8c95253e-8ee8-9ae8-6d40-021d702dc78e", key=PSEUDONYM_KEY
    )
    assert {p for p, _, _ in out} == {pid}
    types = by_type(out)
    assert len(types["Demographics"]) == 1
    demo = types["Demographics"][0]
    assert (demo["age_band"], demo["sex"]) == ("AGE_35_44", "FEMALE")
    phq = next(r for r in types["AssessmentResult"] if r["instrument"] == "PHQ9")
    assert phq["item_responses"] == [2, 2, 2, 2, 1, 2, 1, 1, 1]
    assert (phq["total"], phq["band"], phq["item9_positive"]) == (14, "MODERATE", True)
    gad = next(r for r in types["AssessmentResult"] if r["instrument"] == "GAD7")
    assert (gad["total"], gad["band"], gad["item9_positive"]) == (8, "MILD", False)
    med = types["MedicationEvent"][0]
    assert (med["action"], med["rxnorm"], med["drug"], med["dose_mg"]) == (
        "PRESCRIBED",
        "312940",
        "sertraline",
        50.0,
    )
    cond = next(r for r in types["ClinicalEvent"] if r["kind"] == "CONDITION")
    assert (cond["code_system"], cond["code"], cond["status"]) == ("SNOMED_CT", "370143000", "active")
    hr = next(r for r in types["BiometricSample"] if r["metric"] == "HEART_RATE")
    assert hr["value"] == 88.0 and hr["unit"] == "beats/min" and hr["loinc"] == "8867-4"
    assert hr["event_time"] == datetime(2024, 3, 4, 14, 12, 55, tzinfo=UTC)
    assert m.summary.skipped == Counter({"Claim": 1, "Observation:unmapped-code": 1})
    assert m.summary.rejected == []
    s = m.summary
    assert s.read == s.mapped + sum(s.skipped.values()) + len(s.rejected)


def test_no_names_dates_or_free_text_leave_without_the_hook(fixtures):
    out = list(mapper().map_path(fixtures / "fhir/synthea_patient_bundle.json"))
    blob = json.dumps([rec for _, _, rec in out], default=str)
    for secret in ("Kuhn96", "Marcia", "1987-06-23", "divorce", "Anna", "anxious", "999-44"):
        assert secret not in blob
    assert all(rec.get("narrative") is None for _, t, rec in out if t == "ClinicalEvent")


def test_free_text_is_encrypted_bound_to_the_patient_and_field(fixtures):
    cipher = FieldCipher({"k1": bytes(range(32))}, "k1")
    seen = []

    def encrypt(text, context):
        seen.append(text)
        return cipher.encrypt(text, context=context).model_dump()

    out = list(mapper(encrypt_text=encrypt).map_path(fixtures / "fhir/synthea_patient_bundle.json"))
    cond = next(r for _, t, r in out if t == "ClinicalEvent" and r["kind"] == "CONDITION")
    sealed = EncryptedText(**cond["narrative"])
    text = cipher.decrypt(sealed, context=field_context(cond["patient_id"], "ClinicalEvent", "narrative"))
    assert "sister Anna is main support" in text
    assert any("sister Anna" in t for t in seen) and any("anxious" in t for t in seen)
    with pytest.raises(DecryptionFailed):  # moved to another patient, it does not open
        cipher.decrypt(sealed, context=field_context("p_" + "0" * 32, "ClinicalEvent", "narrative"))
    blob = json.dumps([rec for _, _, rec in out], default=str)
    assert "Anna" not in blob and "anxious" not in blob


def test_r4_encounter_with_class_coding_parses(fixtures):
    out = list(mapper().map_path(fixtures / "fhir/synthea_patient_bundle.json"))
    enc = next(r for _, t, r in out if t == "ClinicalEvent" and r["kind"] == "ENCOUNTER")
    assert enc["value_code"] == "AMB" and enc["code"] == "185345009"


def test_ids_are_stable_across_runs(fixtures):
    path = fixtures / "fhir/synthea_patient_bundle.json"
    first = [r["event_id"] for _, _, r in mapper().map_path(path)]
    second = [r["event_id"] for _, _, r in mapper().map_path(path)]
    assert first == second and len(set(first)) == len(first)


def test_pharmacogenomics_collection_gives_one_profile(fixtures):
    out = list(mapper().map_path(fixtures / "fhir/pgx_collection_bundle.json"))
    profile = by_type(out)["GeneticProfile"]
    assert len(profile) == 1
    assert profile[0]["phenotypes"] == [
        {"gene": "CYP2C19", "phenotype": "ULTRARAPID_METABOLIZER", "diplotype": "*17/*17"},
        {"gene": "CYP2D6", "phenotype": "POOR_METABOLIZER", "diplotype": "*4/*4"},
    ]
    demo = by_type(out)["Demographics"][0]
    assert demo["age_band"] == "AGE_65_74" and demo["sex"] == "MALE"


def test_searchset_medication_statements_and_late_patient(fixtures):
    m = mapper()
    out = by_type(m.map_path(fixtures / "fhir/searchset_medications.json"))
    actions = sorted((r["action"], r["drug"], r["dose_mg"]) for r in out["MedicationEvent"])
    assert actions == [("STARTED", "fluoxetine", 20.0), ("STOPPED", "venlafaxine", 75.0)]
    stopped = next(r for r in out["MedicationEvent"] if r["action"] == "STOPPED")
    assert stopped["event_time"] == datetime(2024, 1, 9, 17, tzinfo=UTC)
    assert m.summary.skipped["MedicationStatement:entered-in-error"] == 1


def test_bulk_ndjson_reports_each_bad_resource_and_continues(fixtures):
    m = mapper(emit_biometrics=True)
    out = by_type(m.map_path(fixtures / "fhir/bulk"))
    rejected = {r.resource_id: r for r in m.summary.rejected}
    assert rejected["o3"].path.endswith("Observation.ndjson:3.valueQuantity.value")
    assert "o4" not in rejected and m.summary.parked == 1  # Patient/b9 is not in the input
    assert "out of range" in rejected["o6"].reason
    assert "b3" not in rejected  # no identifier: pseudonym from source + logical id
    assert m.summary.identities == Counter({"mrn": 2, "logical-id": 1})
    assert any(r.resource_id is None and r.path.endswith(":4") for r in m.summary.rejected)
    assert m.summary.skipped["Procedure"] == 1
    sleep = next(r for r in out["BiometricSample"] if r["metric"] == "SLEEP_STAGE")
    assert (sleep["value"], sleep["duration_seconds"], sleep["sleep_stage"]) == (27000, 27000, "ASLEEP")
    assert out["AssessmentResult"][0]["item_responses"] == []
    bands = {r["age_band"] for r in out["Demographics"]}
    assert bands == {"AGE_18_24", "AGE_75_PLUS", "UNKNOWN"}


def test_malformed_bundle_entry_is_reported_with_json_path(tmp_path):
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "p",
                    "identifier": [{"system": "urn:x", "value": "1"}],
                }
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "bad",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                    "subject": {"reference": "Patient/p"},
                    "effectiveDateTime": "2024-01-01T00:00:00Z",
                    "component": [{"code": {"text": "x"}, "valueQuantity": {"value": "?"}}],
                }
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "good",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                    "subject": {"reference": "Patient/p"},
                    "effectiveDateTime": "2024-01-01T00:00:00Z",
                    "valueQuantity": {"value": 70, "unit": "/min"},
                }
            },
        ],
    }
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle))
    m = mapper()
    out = list(m.map_path(path))
    assert [t for _, t, _ in out] == ["Demographics", "ClinicalEvent"]
    [rej] = m.summary.rejected
    assert rej.resource_id == "bad"
    assert rej.path == f"{path}#Bundle.entry[1].resource.component[0].valueQuantity.value"


def test_unreadable_file_does_not_stop_the_directory(tmp_path, fixtures):
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "ok.json").write_text((fixtures / "fhir/pgx_collection_bundle.json").read_text())
    m = mapper()
    out = list(m.map_path(tmp_path))
    assert {t for _, t, _ in out} == {"Demographics", "GeneticProfile"}
    assert m.summary.rejected[0].path.endswith("broken.json")


def test_phq9_total_disagreeing_with_items_is_rejected(fixtures, tmp_path):
    data = json.loads((fixtures / "fhir/synthea_patient_bundle.json").read_text())
    for entry in data["entry"]:
        if entry["resource"].get("id", "").endswith("a110"):
            entry["resource"]["valueQuantity"]["value"] = 9
    path = tmp_path / "b.json"
    path.write_text(json.dumps(data))
    m = mapper()
    out = list(m.map_path(path))
    results = [r for _, t, r in out if t == "AssessmentResult"]
    assert [r["instrument"] for r in results] == ["GAD7", "PHQ9_ITEM9"]
    assert "differs from item sum" in m.summary.rejected[0].reason
    # the rejected panel's positive item 9 (a109, "Several days") still reaches the safety alert
    screen = results[1]
    assert (screen["item_responses"], screen["item9_positive"]) == ([1], True)
    assert screen["submission_id"].endswith("Observation/a0000000-0000-4000-8000-00000000a109")
    rejected = {r.resource_id for r in m.summary.rejected}
    assert len(rejected) == 10  # the panel, its total and its other eight items
    assert "a0000000-0000-4000-8000-00000000a109" not in rejected and m.summary.balanced


def test_synthea_like_bundle_skips_unmapped_types_before_models(tmp_path):
    path = tmp_path / "synthea.json"
    path.write_text(json.dumps(synthea_like_bundle(seed=3, target_bytes=300_000)))
    m = mapper()
    out = list(m.map_path(path))
    s = m.summary
    assert s.rejected == [] and s.read == s.mapped + sum(s.skipped.values())
    assert {"Claim", "ExplanationOfBenefit", "Procedure", "DiagnosticReport"} <= set(s.skipped)
    assert len({p for p, _, _ in out}) == 1


def test_reader_handles_nested_and_unsupported_bundles(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "weird", "entry": []}))
    [raw] = list(iter_resources(path))
    assert raw.error and "weird" in raw.error
