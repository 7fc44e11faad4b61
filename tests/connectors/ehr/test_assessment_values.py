"""PHQ-9 / GAD-7 total Observations: which value[x] are read, which are rejected and why."""

from datetime import UTC, date, datetime

import pytest

from connectors.ehr import FhirMapper
from connectors.ehr.reader import RawResource
from tests.connectors.conftest import PSEUDONYM_KEY

PATIENT = {"resourceType": "Patient", "id": "p", "identifier": [{"system": "urn:x", "value": "1"}]}


def total(value: dict, code: str = "44261-6", rid: str = "t") -> dict:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": "Patient/p"},
        "effectiveDateTime": "2024-01-01T09:00:00Z",
        **value,
    }


def run(*resources: dict) -> tuple[FhirMapper, list]:
    m = FhirMapper(key=PSEUDONYM_KEY, as_of=date(2024, 6, 1), received_time=datetime(2024, 6, 1, tzinfo=UTC))
    out = list(m.map_resources(RawResource(f"in#{i}", r) for i, r in enumerate(resources)))
    assert m.summary.balanced, m.summary
    return m, out


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"valueString": "12"}, 12),
        ({"valueString": " 12 "}, 12),
        ({"valueString": "12.0"}, 12),
        ({"valueInteger": 12}, 12),
        ({"valueQuantity": {"value": 12, "unit": "{score}"}}, 12),
        ({"valueQuantity": {"value": 12.0}}, 12),
    ],
)
def test_phq9_total_is_read_from_string_integer_and_quantity(value, expected):
    m, out = run(PATIENT, total(value))
    [(_, rtype, rec)] = [o for o in out if o[1] == "AssessmentResult"]
    assert (rec["instrument"], rec["total"], rec["band"], rec["item_responses"]) == (
        "PHQ9",
        expected,
        "MODERATE",
        [],
    )
    assert m.summary.rejected == [] and m.summary.mapped == 2


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"valueString": "twelve"}, "valueString is not a whole-number score"),
        ({"valueString": "12.5"}, "valueString is not a whole-number score"),
        ({"valueQuantity": {"value": 12.5}}, "valueQuantity.value 12.5 is not a whole-number score"),
        ({"valueQuantity": {"unit": "{score}"}}, "valueQuantity has no value"),
        ({"valueBoolean": True}, "valueBoolean is not read"),
        ({"valueCodeableConcept": {"text": "moderate"}}, "valueCodeableConcept is not read"),
        ({}, "total score Observation has no value"),
        ({"valueString": "30"}, "PHQ9 total 30 out of range"),
    ],
)
def test_unreadable_totals_are_rejected_with_a_reason(value, reason):
    m, out = run(PATIENT, total(value))
    assert [t for _, t, _ in out] == ["Demographics"]
    [rej] = m.summary.rejected
    assert rej.resource_id == "t" and rej.path == "in#1" and reason in rej.reason
    assert "twelve" not in rej.reason  # free text never reaches the summary or stderr


def test_gad7_total_in_value_string():
    _, out = run(PATIENT, total({"valueString": "16"}, code="70274-6"))
    [rec] = [r for _, t, r in out if t == "AssessmentResult"]
    assert (rec["instrument"], rec["total"], rec["band"], rec["loinc_total"]) == (
        "GAD7",
        16,
        "SEVERE",
        "70274-6",
    )


def test_item_without_a_panel_is_rejected_not_lost():
    """A PHQ-9 or GAD-7 item other than PHQ-9 item 9 means nothing alone (item 9 alone is a
    PHQ9_ITEM9 screen: tests/connectors/ehr/test_item9_screen.py)."""
    item = total({"valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "LA6569-3"}]}})
    item["code"]["coding"][0]["code"] = "69725-0"  # GAD-7 item 1
    m, out = run(PATIENT, item)
    [rej] = m.summary.rejected
    assert "not a member of any panel" in rej.reason
    assert [t for _, t, _ in out] == ["Demographics"]
