"""Every FHIR input's summary adds up: each resource read is mapped, skipped, rejected or parked.

Checked over every FHIR fixture and over generated bundles that mix Patients (with and
without identifiers), vital signs, PHQ-9 / GAD-7 panels, items and totals in any value[x],
pharmacogenomic Observations, other resource types, broken entries and unknown subjects.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.delivery import ImportSummary
from connectors.ehr import FhirMapper
from connectors.ehr.reader import RawResource, iter_bundle, iter_resources
from connectors.sources import fhir_records
from tests.connectors.conftest import FIXTURES, PSEUDONYM_KEY

FHIR_INPUTS = sorted(p for p in (FIXTURES / "fhir").iterdir() if p.suffix == ".json" or p.is_dir())


def mapper() -> FhirMapper:
    return FhirMapper(
        key=PSEUDONYM_KEY, as_of=date(2024, 6, 1), received_time=datetime(2024, 6, 1, tzinfo=UTC)
    )


def assert_adds_up(resources: list[RawResource]) -> None:
    m = mapper()
    summary = ImportSummary()
    out = list(fhir_records(iter(resources), m, summary))
    s = m.summary
    assert s.read == len(resources)
    assert s.read + s.unparked == s.mapped + sum(s.skipped.values()) + len(s.rejected) + s.parked, s
    assert s.balanced
    assert s.records == len(out)
    assert summary.read + summary.unparked == (
        summary.mapped + sum(summary.skipped.values()) + len(summary.rejected) + summary.parked
    )


@pytest.mark.parametrize("path", FHIR_INPUTS, ids=lambda p: p.name)
def test_every_fixture_adds_up(path: Path):
    assert_adds_up(list(iter_resources(path)))


LOINC = "http://loinc.org"
PIDS = ("a", "b", "c")
CODES = (
    "8867-4",
    "59408-5",
    "93832-4",
    "44249-1",
    "44261-6",
    "69737-5",
    "70274-6",
    "44250-9",
    "44260-8",
    "69725-0",
    "53040-2",
    "84413-4",
    "84414-2",
    "therapeutic-implication",
    "48018-6",
    "2093-3",
    "not-a-code",
)
numbers = st.one_of(st.integers(-3, 40), st.decimals(-1, 40, places=1).map(float))
values = st.one_of(
    st.just({}),
    st.builds(lambda v: {"valueInteger": v}, st.integers(-2, 40)),
    st.builds(lambda v: {"valueQuantity": {"value": v, "unit": "/min", "code": "/min"}}, numbers),
    st.builds(lambda v: {"valueQuantity": {"value": v}}, st.sampled_from(["x", None])),
    st.builds(
        lambda v: {"valueString": v}, st.one_of(st.from_regex(r"\A ?\d{1,2}(\.\d)? ?\Z"), st.text(max_size=5))
    ),
    st.builds(
        lambda c: {
            "valueCodeableConcept": {
                "coding": [{"system": LOINC, "code": c, "display": "Poor metabolizer *4/*4"}]
            }
        },
        st.sampled_from(["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9", "LA9657-3", "zzz"]),
    ),
    st.just({"valueBoolean": True}),
)
subjects = st.one_of(
    st.sampled_from([f"Patient/{p}" for p in (*PIDS, "zz")]),
    st.just("urn:uuid:a"),
    st.none(),
)
times = st.sampled_from(
    [
        {"effectiveDateTime": "2024-01-01T09:00:00Z"},
        {"issued": "2024-01-02T00:00:00Z"},
        {},
        {"effectiveDateTime": "bad"},
    ]
)


@st.composite
def observation(draw: st.DrawFn, index: int) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"o{index}",
        "status": draw(st.sampled_from(["final", "amended", "preliminary"])),
        "code": {"coding": [{"system": LOINC, "code": draw(st.sampled_from(CODES))}]},
        **draw(times),
        **draw(values),
    }
    subject = draw(subjects)
    if subject is not None:
        obs["subject"] = {"reference": subject}
    if draw(st.booleans()):
        refs = draw(st.lists(st.integers(0, 12), max_size=9))
        obs["hasMember"] = [{"reference": f"Observation/o{r}"} for r in refs]
    if draw(st.booleans()):
        gene = draw(st.sampled_from(["HGNC:2625", "HGNC:2621", "HGNC:9999"]))
        comp_code = draw(st.sampled_from(["48018-6", "44250-9", "53040-2", "84413-4"]))
        obs["component"] = [
            {
                "code": {"coding": [{"system": LOINC, "code": comp_code}]},
                "valueCodeableConcept": {"coding": [{"code": gene, "display": "CYP2D6 *1/*4"}]},
            }
        ]
    return obs


@st.composite
def patient(draw: st.DrawFn) -> dict[str, Any]:
    pid = draw(st.sampled_from(PIDS))
    identifiers = draw(
        st.sampled_from(
            [
                [],
                [{"system": "urn:mrn", "value": f"M-{pid}", "type": {"coding": [{"code": "MR"}]}}],
                [{"system": "urn:other", "value": f"X-{pid}"}],
                [{"value": "no-system"}],
            ]
        )
    )
    return {"resourceType": "Patient", "id": pid, "identifier": identifiers, "gender": "female"}


ITEM_LINKS = ("/44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5", "44253-3")
LINKS = (*ITEM_LINKS, "/44260-8", "/44261-6", "69725-0", "PHQ.9", "other")
answers = st.one_of(
    st.builds(
        lambda c: {"valueCoding": {"system": LOINC, "code": c}},
        st.sampled_from(["LA6568-5", "LA6571-9", "x"]),
    ),
    st.builds(lambda v: {"valueInteger": v}, st.integers(-1, 30)),
    st.builds(lambda v: {"valueDecimal": v}, numbers),
    st.just({"valueString": "12"}),
)


@st.composite
def response(draw: st.DrawFn, index: int) -> dict[str, Any]:
    links = list(ITEM_LINKS) if draw(st.booleans()) else []
    links += draw(st.lists(st.sampled_from(LINKS), max_size=4))
    qr: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": f"q{index}",
        "status": draw(st.sampled_from(["completed", "amended", "in-progress"])),
        "questionnaire": draw(st.sampled_from(["urn:q/44249-1", "Questionnaire/phq-9", "urn:q/other"])),
        "subject": {"reference": draw(st.sampled_from(["Patient/a", "Patient/zz"]))},
        "item": [{"linkId": link, "answer": [draw(answers)]} for link in links],
    }
    if draw(st.booleans()):
        qr["authored"] = "2024-01-01T09:00:00Z"
    return qr


@st.composite
def entry(draw: st.DrawFn, index: int) -> Any:
    kind = draw(
        st.sampled_from(["Observation"] * 5 + ["Patient", "Patient", "Condition", "Claim", "broken", "junk"])
    )
    if kind == "Observation":
        return {"fullUrl": f"urn:uuid:o{index}", "resource": draw(observation(index))}
    if kind == "Patient":
        return {"resource": draw(patient())}
    if kind == "Condition":
        return {
            "resource": {
                "resourceType": "Condition",
                "id": f"c{index}",
                "subject": {"reference": draw(st.sampled_from(["Patient/a", "Patient/zz"]))},
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "370143000"}]},
                **draw(st.sampled_from([{"recordedDate": "2024-01-01"}, {}])),
            }
        }
    if kind == "Claim":
        return {"resource": {"resourceType": "Claim", "id": f"x{index}"}}
    if kind == "broken":
        return {"resource": {"resourceType": "Observation", "id": f"o{index}", "code": 5}}
    return draw(st.sampled_from([{}, "not an object", {"resource": []}]))


@st.composite
def bundles(draw: st.DrawFn) -> dict[str, Any]:
    size = draw(st.integers(0, 14))
    return {"resourceType": "Bundle", "type": "collection", "entry": [draw(entry(i)) for i in range(size)]}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bundles())
def test_generated_bundles_add_up(bundle: dict[str, Any]):
    assert_adds_up(list(iter_bundle(json.loads(json.dumps(bundle)), "gen.json")))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(bundles(), min_size=2, max_size=3))
def test_across_calls_nothing_is_dropped(calls: list[dict[str, Any]]):
    """Calls share one patient index: whatever was read is, in the end, mapped, skipped,
    rejected or still parked (waiting for a Patient no call carried)."""
    from connectors.ehr.patients import MemoryPatientIndex

    index = MemoryPatientIndex()
    read = settled = 0
    for i, bundle in enumerate(calls):
        m = FhirMapper(
            key=PSEUDONYM_KEY,
            as_of=date(2024, 6, 1),
            received_time=datetime(2024, 6, 1, tzinfo=UTC),
            patients=index,
        )
        list(m.map_resources(iter_bundle(json.loads(json.dumps(bundle)), f"call{i}.json")))
        s = m.summary
        assert s.balanced, s
        read += s.read
        settled += s.mapped + sum(s.skipped.values()) + len(s.rejected)
    still_parked = sum(len(v) for v in index.parked.values())
    assert read == settled + still_parked
