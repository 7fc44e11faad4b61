from datetime import UTC, datetime

import pytest

from connectors.exceptions import AdapterError
from connectors.wearables.apple_health import parse_export

KW = {"patient_id": "p_" + "0" * 32, "device_id": "d_" + "2" * 32}


def test_export_records_are_mapped(fixtures):
    samples = list(parse_export(fixtures / "apple_health/export.xml", **KW))
    by_metric = {}
    for s in samples:
        by_metric.setdefault(s["metric"], []).append(s)
    assert by_metric["HEART_RATE"][0]["value"] == 74.0
    assert by_metric["HEART_RATE"][0]["event_time"] == datetime(2024, 5, 1, 15, 1, tzinfo=UTC)
    assert by_metric["HRV_SDNN"][0]["value"] == pytest.approx(48.2615)
    assert by_metric["HRV_SDNN"][0]["loinc"] == "80404-7"
    assert "HRV_RMSSD" not in by_metric
    assert by_metric["SPO2"][0]["value"] == pytest.approx(96.0)
    assert by_metric["SPO2"][0]["unit"] == "%"
    assert by_metric["RESPIRATORY_RATE"][0]["unit"] == "breaths/min"
    steps = by_metric["STEPS"]
    assert [s["duration_seconds"] for s in steps] == [600, 600]
    assert steps[0]["event_id"] != steps[1]["event_id"]  # iPhone and Watch kept apart
    stages = [(s["sleep_stage"], s["duration_seconds"]) for s in by_metric["SLEEP_STAGE"]]
    assert stages == [("LIGHT", 1830), ("DEEP", 2670), ("AWAKE", 120), ("REM", 2580)]
    assert len(samples) == 11  # InBed, BodyMass and ActivitySummary are not samples


def test_bad_records_collected_with_positions(fixtures):
    errors = []
    samples = list(parse_export(fixtures / "apple_health/export_bad_records.xml", **KW, errors=errors))
    assert [e.path for e in errors] == ["/HealthData/Record[2]/@value", "/HealthData/Record[6]/@unit"]
    assert len(samples) == 9


def test_bad_record_raises_without_error_list(fixtures):
    with pytest.raises(AdapterError, match="fifty-seven"):
        list(parse_export(fixtures / "apple_health/export_bad_records.xml", **KW))


def test_truncated_xml_reports_line(fixtures):
    with pytest.raises(AdapterError) as err:
        list(parse_export(fixtures / "apple_health/export_truncated.xml", **KW))
    assert err.value.line is not None and err.value.line > 20
    assert err.value.path.endswith("export_truncated.xml")
