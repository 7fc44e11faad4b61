import json
from datetime import UTC, datetime

import pytest

from connectors.exceptions import AdapterError
from connectors.wearables.openmhealth import parse_omh

KW = {"patient_id": "p_" + "0" * 32, "device_id": "d_" + "3" * 32}


def test_data_points(fixtures):
    points = json.loads((fixtures / "openmhealth/datapoints.json").read_text())
    hr, steps2, steps1, sleep = parse_omh(points, **KW)
    assert (hr["metric"], hr["value"], hr["unit"]) == ("HEART_RATE", 58.0, "beats/min")
    assert hr["event_time"] == datetime(2024, 5, 1, 5, 59, tzinfo=UTC)
    assert (steps2["value"], steps2["duration_seconds"]) == (7939.0, 43200)
    assert (steps1["value"], steps1["duration_seconds"]) == (120.0, 900)
    assert (sleep["sleep_stage"], sleep["duration_seconds"]) == ("ASLEEP", 432 * 60)
    assert sleep["event_time"] == datetime(2024, 5, 1, 22, 10, tzinfo=UTC)


def test_wrong_unit_and_unknown_schema(fixtures):
    points = json.loads((fixtures / "openmhealth/malformed.json").read_text())
    errors = []
    assert len(parse_omh(points, **KW, errors=errors)) == 1
    assert [e.path for e in errors] == ["$[1].body.heart_rate.unit", "$[2].header.schema_id"]
    with pytest.raises(AdapterError):
        parse_omh(points, **KW)


def test_naive_time_is_refused():
    point = {
        "header": {"schema_id": {"namespace": "omh", "name": "heart-rate"}},
        "body": {
            "heart_rate": {"value": 60, "unit": "beats/min"},
            "effective_time_frame": {"date_time": "2024-05-01T08:00:00"},
        },
    }
    with pytest.raises(AdapterError, match="offset"):
        parse_omh(point, **KW)
