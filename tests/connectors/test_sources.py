"""Vendor files -> mapped records with read/skipped/rejected counts, over the real fixtures."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from itertools import chain
from pathlib import Path
from typing import Any

import pytest

from connectors.delivery import ImportSummary, Rejected
from connectors.ehr import FhirMapper
from connectors.ehr.reader import iter_resources
from connectors.exceptions import AdapterError
from connectors.sources import (
    FHIR_SUFFIXES,
    InputMeter,
    apple_health_records,
    fhir_records,
    fitbit_records,
    input_files,
    openmhealth_records,
)
from connectors.wearables.fitbit import parse_fitbit
from tests.connectors.conftest import PSEUDONYM_KEY

PID, DEV = "p_" + "4" * 32, "d_" + "5" * 32
RECEIVED = datetime(2024, 6, 1, tzinfo=UTC)


def test_input_files_expand_directories_and_refuse_missing_paths(fixtures: Path, tmp_path: Path):
    files = input_files([fixtures / "fitbit", fixtures / "openmhealth/malformed.json"], (".json",))
    assert [f.name for f in files] == [
        "heart_2024-03-10.json",
        "heart_malformed.json",
        "hrv.json",
        "sleep_2024-03-10.json",
        "steps_2024-11-03.json",
        "malformed.json",
    ]
    with pytest.raises(AdapterError, match="no such file or directory") as err:
        input_files([tmp_path / "nope.json"], (".json",))
    assert err.value.path == str(tmp_path / "nope.json")
    with pytest.raises(AdapterError, match=r"no \.json/\.ndjson files in directory"):
        input_files([tmp_path], FHIR_SUFFIXES)


def test_fhir_rejections_are_reported_as_they_happen_and_counted(fixtures: Path):
    seen: list[Rejected] = []
    summary = ImportSummary(on_reject=seen.append)
    mapper = FhirMapper(key=PSEUDONYM_KEY, as_of=date(2024, 6, 1), received_time=RECEIVED)
    out, reported_by_then = [], []
    for record in fhir_records(iter_resources(fixtures / "fhir/bulk"), mapper, summary):
        out.append(record)
        reported_by_then.append(len(seen))
    assert reported_by_then[0] == 0 and 0 < reported_by_then[-1] < 4  # live, not only at the end
    assert summary.read == mapper.summary.read == 14
    assert summary.skipped == {"Procedure": 1}
    assert [(r.id, r.path.rsplit("/", 1)[1]) for r in seen] == [
        ("c2", "Condition.ndjson:2"),
        ("o3", "Observation.ndjson:3.valueQuantity.value"),
        (None, "Observation.ndjson:4"),
        ("o6", "Observation.ndjson:7"),
    ]
    assert (summary.parked, summary.identities) == (1, {"mrn": 2, "logical-id": 1})  # o4; b3
    assert seen == summary.rejected and len(out) == mapper.summary.records == 8


def test_fhir_resources_from_several_paths_resolve_across_files(fixtures: Path, tmp_path: Path):
    bulk = fixtures / "fhir/bulk"
    (tmp_path / "obs").mkdir()
    (tmp_path / "obs/Observation.ndjson").write_bytes((bulk / "Observation.ndjson").read_bytes())
    summary = ImportSummary()
    mapper = FhirMapper(key=PSEUDONYM_KEY, as_of=date(2024, 6, 1), received_time=RECEIVED)
    resources = chain.from_iterable(iter_resources(p) for p in (tmp_path / "obs", bulk / "Patient.ndjson"))
    out = list(fhir_records(resources, mapper, summary))
    # observations read before their patients wait for them instead of being rejected
    assert {t for _, t, _ in out} >= {"ClinicalEvent", "Demographics"}
    assert not any("b1" in r.reason or "b2" in r.reason for r in summary.rejected)


def test_fitbit_malformed_payload_is_rejected_whole_with_its_json_path(fixtures: Path):
    files = input_files([fixtures / "fitbit"], (".json",))
    summary = ImportSummary()
    kw: dict[str, Any] = {
        "patient_id": PID,
        "device_id": DEV,
        "tz": "America/New_York",
        "received_time": RECEIVED,
    }
    out = list(fitbit_records(files, summary=summary, **kw))
    expected = []
    for f in files:
        if f.name != "heart_malformed.json":
            expected += parse_fitbit(json.loads(f.read_text()), **kw)
    assert [r for _, _, r in out] == expected
    assert {(p, t) for p, t, _ in out} == {(PID, "BiometricSample")}
    assert summary.read == 5
    [bad] = summary.rejected
    assert (
        bad.path == f"{fixtures}/fitbit/heart_malformed.json#$['activities-heart-intraday'].dataset[1].value"
    )
    assert bad.reason == "expected a number, got 'n/a'" and bad.id is None


def test_unreadable_json_file_is_one_rejection(tmp_path: Path):
    broken = tmp_path / "day.json"
    broken.write_text('{"sleep": [')
    summary = ImportSummary()
    assert list(fitbit_records([broken], patient_id=PID, device_id=DEV, tz="UTC", summary=summary)) == []
    [bad] = summary.rejected
    assert bad.path == str(broken) and bad.reason.startswith("unreadable JSON")


def test_openmhealth_rejections_carry_the_data_point_id(fixtures: Path):
    summary = ImportSummary()
    files = [fixtures / "openmhealth/datapoints.json", fixtures / "openmhealth/malformed.json"]
    out = list(openmhealth_records(files, patient_id=PID, device_id=DEV, summary=summary))
    assert len(out) == 5 and summary.read == 7
    assert [(r.id, r.path.rsplit("#", 1)[1]) for r in summary.rejected] == [
        ("243c773b-8936-407e-9c23-270d0ea49cc4", "$[1].body.heart_rate.unit"),
        (None, "$[2].header.schema_id"),
    ]


def test_apple_health_bad_records_and_truncated_xml(fixtures: Path):
    summary = ImportSummary()
    folder = fixtures / "apple_health"
    files = [folder / "export_bad_records.xml", folder / "export_truncated.xml"]
    meter = InputMeter(files)
    fractions: list[float] = []
    for _ in apple_health_records(files, patient_id=PID, device_id=DEV, summary=summary, meter=meter):
        fractions.append(meter.fraction() or 0.0)
    assert [r.path.removeprefix(f"{folder}/") for r in summary.rejected] == [
        "export_bad_records.xml#/HealthData/Record[2]/@value",
        "export_bad_records.xml#/HealthData/Record[6]/@unit",
        "export_truncated.xml:31",
    ]
    assert summary.rejected[2].reason.startswith("malformed XML")
    samples = len(fractions)
    assert summary.read == samples + 2
    assert fractions == sorted(fractions) and fractions[0] > 0 and meter.fraction() == 1.0
