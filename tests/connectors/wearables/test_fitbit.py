import json
from datetime import UTC, datetime

import pytest

from connectors.exceptions import AdapterError
from connectors.wearables.fitbit import parse_fitbit, parse_heart, parse_sleep, parse_steps

NY = "America/New_York"
KW = {"patient_id": "p_" + "0" * 32, "device_id": "d_" + "1" * 32, "tz": NY}


def load(fixtures, name):
    return json.loads((fixtures / "fitbit" / name).read_text())


def utc(*a):
    return datetime(*a, tzinfo=UTC)


def test_heart_intraday_across_spring_forward(fixtures):
    samples = parse_heart(load(fixtures, "heart_2024-03-10.json"), **KW)
    resting = [s for s in samples if s["metric"] == "RESTING_HEART_RATE"]
    hr = [s for s in samples if s["metric"] == "HEART_RATE"]
    assert resting[0]["value"] == 58 and resting[0]["event_time"] == utc(2024, 3, 10, 5)
    assert [s["event_time"] for s in hr] == [
        utc(2024, 3, 10, 5),
        utc(2024, 3, 10, 6, 59),
        utc(2024, 3, 10, 7),
        utc(2024, 3, 10, 16, 30),
    ]
    assert all(s["unit"] == "beats/min" and s["loinc"] == "8867-4" for s in hr)


def test_steps_on_fall_back_day(fixtures):
    samples = parse_steps(load(fixtures, "steps_2024-11-03.json"), **KW)
    assert [(s["event_time"], s["value"]) for s in samples] == [
        (utc(2024, 11, 3, 4, 45), 0.0),
        (utc(2024, 11, 3, 5, 15), 12.0),
        (utc(2024, 11, 3, 13), 1433.0),
        (utc(2024, 11, 3, 22, 15), 3678.0),
    ]
    assert all(s["duration_seconds"] == 900 and s["unit"] == "steps" for s in samples)


def test_hrv_is_rmssd_not_sdnn(fixtures):
    samples = parse_fitbit(load(fixtures, "hrv.json"), **KW)
    assert [s["metric"] for s in samples] == ["HRV_RMSSD", "HRV_RMSSD"]
    assert samples[0]["value"] == 34.938 and samples[0]["loinc"] is None
    assert samples[1]["event_time"] == utc(2024, 3, 11, 4)  # EDT midnight


def test_sleep_stages_local_to_utc(fixtures):
    samples = parse_sleep(load(fixtures, "sleep_2024-03-10.json"), **KW)
    assert [s["sleep_stage"] for s in samples] == ["AWAKE", "LIGHT", "DEEP", "LIGHT", "REM", "LIGHT", "REM"]
    assert samples[0]["event_time"] == utc(2024, 3, 10, 4, 21)
    assert samples[5]["event_time"] == utc(2024, 3, 10, 7)  # 03:00 EDT
    assert all(s["duration_seconds"] % 30 == 0 and s["value"] == s["duration_seconds"] for s in samples)


def test_ids_are_deterministic_and_unique(fixtures):
    a = parse_heart(load(fixtures, "heart_2024-03-10.json"), **KW)
    b = parse_heart(load(fixtures, "heart_2024-03-10.json"), **KW)
    assert [s["event_id"] for s in a] == [s["event_id"] for s in b]
    assert len({s["event_id"] for s in a}) == len(a)
    other = parse_heart(load(fixtures, "heart_2024-03-10.json"), **{**KW, "device_id": "d_x"})
    assert not {s["event_id"] for s in a} & {s["event_id"] for s in other}


def test_malformed_value_reports_json_path(fixtures):
    with pytest.raises(AdapterError) as err:
        parse_heart(load(fixtures, "heart_malformed.json"), **KW)
    assert err.value.path == "$['activities-heart-intraday'].dataset[1].value"


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        (
            {
                "sleep": [
                    {"levels": {"data": [{"dateTime": "2024-01-01T00:00:00", "level": "nap", "seconds": 30}]}}
                ]
            },
            "$.sleep[0].levels.data[0].level",
        ),
        (
            {"sleep": [{"levels": {"data": [{"dateTime": "yesterday", "level": "rem", "seconds": 30}]}}]},
            "$.sleep[0].levels.data[0].dateTime",
        ),
        ({"hrv": [{"dateTime": "2024-13-01", "value": {"dailyRmssd": 3}}]}, "$.hrv[0].dateTime"),
        ({"foo": []}, "$"),
    ],
)
def test_typed_errors(payload, path):
    with pytest.raises(AdapterError) as err:
        parse_fitbit(payload, **KW)
    assert err.value.path == path


def test_unknown_time_zone_is_typed():
    with pytest.raises(AdapterError):
        parse_fitbit({"hrv": []}, **{**KW, "tz": "Mars/Olympus"})
