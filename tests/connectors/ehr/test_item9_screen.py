"""PHQ-9 item 9 (LOINC 44260-8) recorded without its panel -> a PHQ9_ITEM9 AssessmentResult.

The Observation is US Core's published item-9 example
(fixtures/fhir/us-core/Observation-PHQ9-item-example-44260-8.json, "Not at all"); the positive
and malformed variants change only its value[x] (and drop ``derivedFrom`` where a test needs
it), in memory, so the fixture stays byte for byte as published.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from connectors.ehr import FhirMapper
from connectors.ehr.mapping import MappingSummary
from connectors.ehr.reader import RawResource
from schemas.codec import AvroCodec
from schemas.models import AssessmentResult, Band, Instrument
from tests.connectors.conftest import FIXTURES, PSEUDONYM_KEY
from workers.validation.rules import Assessment, validate_assessment

US_CORE = FIXTURES / "fhir/us-core"
PATIENT = json.loads((US_CORE / "patient-example.json").read_text())
ITEM9 = json.loads((US_CORE / "Observation-PHQ9-item-example-44260-8.json").read_text())
PANEL = json.loads((US_CORE / "Observation-PHQ9-panel-example-44249-1.json").read_text())
QR = json.loads((US_CORE / "QuestionnaireResponse-phq-9-example.json").read_text())
ITEMS = [
    json.loads(p.read_text())
    for p in sorted(US_CORE.glob("Observation-PHQ9-item-example-*.json"))
    if "44261-6" not in p.name and "69722-7" not in p.name
]
TOTAL = json.loads((US_CORE / "Observation-PHQ9-item-example-44261-6.json").read_text())
LOINC = "http://loinc.org"
WHEN = datetime(2022, 11, 29, 20, 50, 32, 718000, tzinfo=UTC)


def mapper() -> FhirMapper:
    return FhirMapper(
        key=PSEUDONYM_KEY, as_of=date(2024, 6, 1), received_time=datetime(2024, 6, 1, tzinfo=UTC)
    )


def run(*resources: dict[str, Any]) -> tuple[MappingSummary, list[dict[str, Any]]]:
    m = mapper()
    out = list(m.map_resources(RawResource(f"in#{i}", r) for i, r in enumerate(resources)))
    assert m.summary.balanced, m.summary
    return m.summary, [rec for _, t, rec in out if t == "AssessmentResult"]


def answered(value: dict[str, Any], *, alone: bool = True, rid: str | None = None) -> dict[str, Any]:
    """The US Core item-9 Observation with another value[x]; ``alone`` drops its derivedFrom."""
    obs = copy.deepcopy(ITEM9)
    obs.pop("valueCodeableConcept")
    obs.update(value)
    if alone:
        obs.pop("derivedFrom")
    if rid:
        obs["id"] = rid
    return obs


def answer_code(code: str) -> dict[str, Any]:
    return {"valueCodeableConcept": {"coding": [{"system": LOINC, "code": code}]}}


def test_us_core_item9_alone_is_a_negative_screen():
    summary, [rec] = run(PATIENT, ITEM9)
    assert rec["instrument"] == "PHQ9_ITEM9"
    assert (rec["item_responses"], rec["total"], rec["band"]) == ([0], 0, "UNKNOWN")
    assert rec["item9_positive"] is False
    assert rec["loinc_total"] == "44260-8" and rec["schema_version"] == 2
    assert rec["event_time"] == WHEN
    # its own id: the QuestionnaireResponse it came from is not in the input, and a screen must
    # never share that response's event id (a full PHQ-9 with that id would be deduplicated away)
    assert rec["submission_id"] == "fhir:ehr:Observation/PHQ9-item-example-44260-8"
    assert summary.rejected == [] and summary.mapped == 2


@pytest.mark.parametrize(
    ("value", "answer"),
    [
        (answer_code("LA6568-5"), 0),
        (answer_code("LA6569-3"), 1),
        (answer_code("LA6570-1"), 2),
        (answer_code("LA6571-9"), 3),
        ({"valueInteger": 2}, 2),
        ({"valueQuantity": {"value": 3.0, "unit": "{score}"}}, 3),
    ],
)
def test_every_answer_form_scores_the_screen(value: dict[str, Any], answer: int):
    summary, [rec] = run(PATIENT, answered(value))
    assert (rec["instrument"], rec["item_responses"], rec["total"]) == ("PHQ9_ITEM9", [answer], answer)
    assert rec["item9_positive"] is (answer >= 1) and rec["band"] == "UNKNOWN"
    # the record keeps the contract, passes the workers' validation and survives the wire
    model = AssessmentResult.model_validate(rec)
    assert (model.instrument, model.band) == (Instrument.PHQ9_ITEM9, Band.UNKNOWN)
    codec = AvroCodec()
    name, back = codec.decode_dict(codec.encode_dict("AssessmentResult", rec))
    assert name == "AssessmentResult" and back["instrument"] == "PHQ9_ITEM9"
    checked = validate_assessment(back, now_ms=1_900_000_000_000)
    assert isinstance(checked, Assessment) and checked.total == answer


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"valueInteger": 4}, "item answer 4 is not a score 0..3"),
        (answer_code("LA9999-9"), "is not a score 0..3"),
        ({"valueString": "yes"}, "is not a score 0..3"),
    ],
)
def test_unreadable_answers_are_rejected_with_a_reason(value: dict[str, Any], reason: str):
    summary, results = run(PATIENT, answered(value))
    assert results == []
    [rej] = summary.rejected
    assert rej.resource_id == "PHQ9-item-example-44260-8" and reason in rej.reason


def test_a_screen_without_a_time_is_rejected():
    obs = answered(answer_code("LA6571-9"))
    obs.pop("effectiveDateTime")
    summary, results = run(PATIENT, obs)
    assert results == [] and "no effective[x] or issued time" in summary.rejected[0].reason


def test_the_panel_carrying_item9_gives_the_only_result_in_any_order():
    for resources in ([PANEL, TOTAL, *ITEMS], [*ITEMS, TOTAL, PANEL]):
        summary, [rec] = run(PATIENT, *resources)
        assert rec["instrument"] == "PHQ9" and rec["item_responses"][8] == 0
        assert summary.rejected == [] and summary.mapped == 1 + 1 + 1 + 9


def test_a_positive_item9_of_a_rejected_panel_becomes_a_screen():
    items = [answered(answer_code("LA6570-1"), alone=False) if i["id"] == ITEM9["id"] else i for i in ITEMS]
    broken = [i for i in items if not i["id"].endswith("44250-9")]  # item 1 is missing
    summary, [rec] = run(PATIENT, PANEL, TOTAL, *broken)
    assert (rec["instrument"], rec["item_responses"], rec["item9_positive"]) == ("PHQ9_ITEM9", [2], True)
    assert all("lacks items ['44250-9']" in r.reason for r in summary.rejected)
    assert ITEM9["id"] not in {r.resource_id for r in summary.rejected}


def test_a_scored_response_carries_the_item9_observation_derived_from_it():
    summary, [rec] = run(PATIENT, QR, ITEM9)
    assert rec["instrument"] == "PHQ9"
    assert rec["submission_id"].endswith("QuestionnaireResponse/phq-9-example")
    assert summary.skipped["Observation:derived-from-QuestionnaireResponse"] == 1


def test_a_rejected_response_leaves_its_item9_observation_to_a_screen():
    qr = copy.deepcopy(QR)
    qr["item"][0]["answer"] = [{"valueInteger": 9}]
    summary, [rec] = run(PATIENT, qr, answered(answer_code("LA6569-3"), alone=False))
    assert rec["instrument"] == "PHQ9_ITEM9" and rec["item9_positive"] is True
    assert rec["submission_id"].endswith("Observation/PHQ9-item-example-44260-8")
    assert [r.resource_id for r in summary.rejected] == ["phq-9-example"]


def _inline_panel(item9_code: str) -> dict[str, Any]:
    """A PHQ-9 panel with its answers as components (no hasMember), at the item's time."""
    codes = ("44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3")
    codes += ("44260-8",)
    return {
        "resourceType": "Observation",
        "id": "inline-panel",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "44249-1"}]},
        "subject": {"reference": "Patient/example"},
        "effectiveDateTime": ITEM9["effectiveDateTime"],
        "component": [
            {
                "code": {"coding": [{"system": LOINC, "code": c}]},
                **answer_code(item9_code if c == "44260-8" else "LA6568-5"),
            }
            for c in codes
        ],
    }


def test_an_item9_recorded_twice_with_the_same_answer_is_one_result():
    summary, [rec] = run(PATIENT, _inline_panel("LA6569-3"), answered(answer_code("LA6569-3")))
    assert rec["instrument"] == "PHQ9" and rec["item9_positive"] is True
    assert summary.mapped == 3 and summary.rejected == []


def test_an_item9_recorded_twice_with_different_answers_keeps_both():
    _, results = run(PATIENT, _inline_panel("LA6568-5"), answered(answer_code("LA6571-9")))
    found = [(r["instrument"], r["item9_positive"]) for r in results]
    assert found == [("PHQ9", False), ("PHQ9_ITEM9", True)]


def test_a_gad7_panel_does_not_absorb_an_item9_observation():
    gad7 = {
        "resourceType": "Observation",
        "id": "gad7",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "69737-5"}]},
        "subject": {"reference": "Patient/example"},
        "effectiveDateTime": ITEM9["effectiveDateTime"],
        "hasMember": [{"reference": f"Observation/{ITEM9['id']}"}],
        "component": [
            {"code": {"coding": [{"system": LOINC, "code": c}]}, **answer_code("LA6568-5")}
            for c in ("69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7")
        ],
    }
    _, results = run(PATIENT, gad7, answered(answer_code("LA6570-1")))
    assert [(r["instrument"], r["total"]) for r in results] == [("GAD7", 0), ("PHQ9_ITEM9", 2)]


def test_screens_of_several_patients_and_times_are_kept_apart():
    other = copy.deepcopy(PATIENT)
    other["id"], other["identifier"][0]["value"] = "other", "other-mrn"
    later = answered(answer_code("LA6569-3"), rid="later")
    later["effectiveDateTime"] = "2022-12-13T09:00:00Z"
    theirs = answered(answer_code("LA6571-9"), rid="theirs")
    theirs["subject"] = {"reference": "Patient/other"}
    _, results = run(PATIENT, other, answered(answer_code("LA6568-5")), later, theirs)
    assert sorted((r["total"], r["item9_positive"]) for r in results) == [(0, False), (1, True), (3, True)]
    assert len({r["event_id"] for r in results}) == 3
    assert len({r["patient_id"] for r in results}) == 2
