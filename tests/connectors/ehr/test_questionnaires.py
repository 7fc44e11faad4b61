"""PHQ-9 / GAD-7 QuestionnaireResponses -> AssessmentResult (US Core, PHR IG and MII examples)."""

from __future__ import annotations

import copy
import json
import shutil
from datetime import UTC, date, datetime

import pytest

from connectors.ehr import FhirMapper
from connectors.ehr.reader import RawResource
from tests.connectors.conftest import FIXTURES, PSEUDONYM_KEY

US_CORE = FIXTURES / "fhir/us-core"
QR_FILE = US_CORE / "QuestionnaireResponse-phq-9-example.json"


def mapper() -> FhirMapper:
    return FhirMapper(
        key=PSEUDONYM_KEY, as_of=date(2024, 6, 1), received_time=datetime(2024, 6, 1, tzinfo=UTC)
    )


def results(out):
    return [rec for _, t, rec in out if t == "AssessmentResult"]


def test_us_core_phq9_response_and_its_derived_observations_give_one_result():
    m = mapper()
    [rec] = results(m.map_path(US_CORE))
    assert rec["instrument"] == "PHQ9" and rec["item_responses"] == [2, 2, 2, 2, 1, 1, 2, 0, 0]
    assert (rec["total"], rec["band"], rec["item9_positive"]) == (12, "MODERATE", False)
    assert rec["event_time"] == datetime(2022, 11, 29, 20, 50, 32, 718000, tzinfo=UTC)
    assert rec["submission_id"] == "fhir:ehr:QuestionnaireResponse/phq-9-example"
    # the panel, its nine items and the valueString total are the same assessment
    assert m.summary.skipped["Observation:derived-from-QuestionnaireResponse"] == 11
    assert m.summary.rejected == [] and m.summary.balanced


def test_derived_observations_alone_carry_the_response_event_id(tmp_path):
    for f in US_CORE.glob("*.json"):
        if f != QR_FILE:
            shutil.copy(f, tmp_path / f.name)
    [from_obs] = results(mapper().map_path(tmp_path))
    [from_qr] = results(mapper().map_path(US_CORE))
    assert from_obs["event_id"] == from_qr["event_id"]
    assert (from_obs["total"], from_obs["item_responses"]) == (12, from_qr["item_responses"])


def test_gad7_response_with_loinc_linkids():
    [rec] = results(mapper().map_path(FIXTURES / "fhir/questionnaires/gad7-phr-ig.json"))
    assert rec["instrument"] == "GAD7" and rec["item_responses"] == [0, 0, 1, 1, 0, 1, 0]
    assert (rec["total"], rec["band"], rec["loinc_total"]) == (3, "MINIMAL", "70274-6")
    assert rec["event_time"] == datetime(2024, 12, 1, 3, tzinfo=UTC)


def test_phq9_response_numbered_by_linkid_raises_the_item9_flag():
    [rec] = results(mapper().map_path(FIXTURES / "fhir/questionnaires/phq9-mii.json"))
    assert rec["item_responses"] == [3] * 9
    assert (rec["total"], rec["band"], rec["item9_positive"]) == (27, "SEVERE", True)


PATIENT = json.loads((US_CORE / "patient-example.json").read_text())
QR = json.loads(QR_FILE.read_text())


def run(qr: dict) -> FhirMapper:
    m = mapper()
    list(m.map_resources([RawResource("p", PATIENT), RawResource("qr", qr)]))
    assert m.summary.balanced
    return m


def edited(**changes) -> dict:
    qr = copy.deepcopy(QR)
    qr.update(changes)
    return qr


def test_ordinal_and_integer_answers_are_scores():
    qr = edited(questionnaire="http://loinc.org/q/44249-1")
    qr["item"][0]["answer"] = [{"valueInteger": 3}]
    qr["item"][1]["answer"] = [
        {
            "valueCoding": {
                "system": "urn:local",
                "code": "x",
                "extension": [
                    {"url": "http://hl7.org/fhir/StructureDefinition/ordinalValue", "valueDecimal": 1}
                ],
            }
        }
    ]
    qr["item"] = [i for i in qr["item"] if i["linkId"] != "/44261-6"]
    m = mapper()
    [rec] = results(m.map_resources([RawResource("p", PATIENT), RawResource("qr", qr)]))
    assert rec["item_responses"][:2] == [3, 1] and rec["total"] == 12 + 1 - 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda q: q["item"][9]["answer"][0].update(valueDecimal=13),
            "stated total 13 differs from item sum 12",
        ),
        (lambda q: q["item"].pop(8), "lacks answers to ['44260-8']"),
        (
            lambda q: q["item"][8]["answer"][0]["valueCoding"].update(code="LA9999-9"),
            "item /44260-8: answer code",
        ),
        (lambda q: q["item"][0].update(answer=[{"valueInteger": 4}]), "item /44250-9: item answer 4"),
        (lambda q: q.pop("authored"), "no authored time"),
    ],
)
def test_bad_responses_are_rejected_with_a_reason(change, reason):
    qr = copy.deepcopy(QR)
    change(qr)
    [rej] = run(qr).summary.rejected
    assert rej.resource_id == "phq-9-example" and reason in rej.reason


def test_unfinished_and_other_questionnaires_are_skipped():
    assert run(edited(status="in-progress")).summary.skipped == {"QuestionnaireResponse:in-progress": 1}
    other = edited(questionnaire="http://example.org/Questionnaire/prapare")
    other["item"] = [{"linkId": "/93043-8", "answer": [{"valueString": "x"}]}]
    assert run(other).summary.skipped == {"QuestionnaireResponse:other-questionnaire": 1}


def test_observations_stand_in_for_a_rejected_response():
    qr = copy.deepcopy(QR)
    qr["item"][0]["answer"] = [{"valueInteger": 9}]
    resources = [RawResource("p", PATIENT), RawResource("qr", qr)]
    resources += [
        RawResource(f.name, json.loads(f.read_text())) for f in sorted(US_CORE.glob("Observation-*.json"))
    ]
    m = mapper()
    [rec] = results(m.map_resources(resources))
    assert rec["submission_id"] == "fhir:ehr:QuestionnaireResponse/phq-9-example" and rec["total"] == 12
    assert [r.resource_id for r in m.summary.rejected] == ["phq-9-example"] and m.summary.balanced


def test_answers_in_the_answer_lists_wording():
    qr = copy.deepcopy(QR)
    qr["item"][0]["answer"] = [{"valueString": "Nearly everyday"}]
    qr["item"][1]["answer"] = [{"valueCoding": {"system": "urn:local", "code": "x", "display": "Not at all"}}]
    qr["item"] = [i for i in qr["item"] if i["linkId"] != "/44261-6"]
    m = mapper()
    [rec] = results(m.map_resources([RawResource("p", PATIENT), RawResource("qr", qr)]))
    assert rec["item_responses"][:2] == [3, 0] and rec["total"] == 12 + 1 - 2
    qr["item"][0]["answer"] = [{"valueString": "sometimes"}]
    [rej] = run(qr).summary.rejected
    assert "answer text is not a PHQ/GAD answer" in rej.reason and "sometimes" not in rej.reason
