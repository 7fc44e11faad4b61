"""The demo's feed plan: routes, rounds and intake bodies, from plain simulated data."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from connectors.intake.models import AssessmentRequest, SymptomReportRequest
from connectors.simulator import SimPatient, SimulationResult, simulate
from novamind.app.demo.plan import (
    DIRECT,
    FHIR,
    FITBIT,
    INTAKE,
    OPENMHEALTH,
    ROUTES,
    Round,
    intake_submission,
    plan_rounds,
    route,
    route_totals,
)

START = dt.date(2026, 3, 2)
NEW_YORK = "America/New_York"  # UTC-5 in March before the 8th


def patient_factory(n: int, vendor: str, zone: str = NEW_YORK) -> SimPatient:
    return SimPatient(
        patient_id=f"p_{n:032x}",
        mrn=f"SIM{n:06d}",
        mrn_system="urn:oid:2.999.1.1",
        time_zone=zone,
        sex="FEMALE",
        birth_date=dt.date(1980, 1, 1),
        vendor=vendor,
        device_id=f"dev-{n}",
    )


def delivery_factory(
    kind: str,
    patient: SimPatient | None,
    when: dt.datetime,
    *,
    delay_s: float = 60.0,
    defect: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    record = {"patient_id": patient.patient_id, "event_time": when, **fields} if patient else {"raw": b"\x00"}
    return {
        "record_type": kind,
        "record": record,
        "defect": defect,
        "delay_seconds": delay_s,
        "arrival_time": when + dt.timedelta(seconds=delay_s),
    }


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """UTC time on simulated day ``day``."""
    return dt.datetime.combine(START + dt.timedelta(days=day), dt.time(hour, minute), tzinfo=dt.UTC)


def result_factory(
    patients: list[SimPatient], deliveries: list[dict[str, Any]], days: int = 5
) -> SimulationResult:
    return SimulationResult(patients, deliveries, [], START, days)


FITBIT_PATIENT = patient_factory(1, "fitbit")
APPLE_PATIENT = patient_factory(2, "apple_health")


@pytest.mark.parametrize(
    ("kind", "patient", "fields", "defect", "expected"),
    [
        ("Demographics", FITBIT_PATIENT, {}, None, FHIR),
        ("MedicationEvent", APPLE_PATIENT, {}, None, FHIR),
        ("SymptomReport", APPLE_PATIENT, {}, None, INTAKE),
        ("AssessmentResult", FITBIT_PATIENT, {}, None, INTAKE),
        ("BiometricSample", FITBIT_PATIENT, {"metric": "SLEEP_STAGE"}, None, FITBIT),
        ("BiometricSample", APPLE_PATIENT, {"metric": "HEART_RATE"}, None, OPENMHEALTH),
        ("BiometricSample", APPLE_PATIENT, {"metric": "STEPS"}, None, OPENMHEALTH),
        ("BiometricSample", APPLE_PATIENT, {"metric": "RESTING_HEART_RATE"}, None, DIRECT),
        ("BiometricSample", APPLE_PATIENT, {"metric": "HRV_SDNN"}, None, DIRECT),
        ("BiometricSample", APPLE_PATIENT, {"metric": "SLEEP_STAGE"}, None, DIRECT),
        ("BiometricSample", FITBIT_PATIENT, {"metric": "HEART_RATE"}, "out_of_range", DIRECT),
        ("SymptomReport", FITBIT_PATIENT, {}, "future_timestamp", DIRECT),
        ("RAW", None, {}, "garbage_bytes", DIRECT),
        ("GeneticProfile", FITBIT_PATIENT, {}, None, DIRECT),
    ],
)
def test_route(
    kind: str, patient: SimPatient | None, fields: dict[str, Any], defect: str | None, expected: str
) -> None:
    delivery = delivery_factory(kind, patient, at(0, 12), defect=defect, **fields)
    assert route(delivery, patient.vendor if patient else None) == expected


def test_each_record_is_fed_on_its_utc_day() -> None:
    # 03:00 UTC on day 1 is 22:00 on day 0 in New York: rounds follow UTC days all the same,
    # so no round holds an event past the end of another event's day.
    report = delivery_factory("SymptomReport", FITBIT_PATIENT, at(1, 3))
    evening = delivery_factory("SymptomReport", FITBIT_PATIENT, at(1, 23, 59))
    medication = delivery_factory("MedicationEvent", FITBIT_PATIENT, at(3, 0))
    sample = delivery_factory("BiometricSample", FITBIT_PATIENT, at(2, 4), metric="HEART_RATE")
    rounds = plan_rounds(result_factory([FITBIT_PATIENT], [report, evening, medication, sample]))
    assert [r.date for r in rounds] == [START + dt.timedelta(days=d) for d in (1, 2, 3)]
    assert rounds[0].routes[INTAKE] == [report, evening]
    assert rounds[1].routes[FITBIT] == [sample]
    assert rounds[2].routes[FHIR] == [medication]


def test_rounds_span_the_first_to_the_last_event_day() -> None:
    # Tokyo's first local morning is the day before in UTC; Los Angeles' last evening the day after.
    tokyo, los_angeles = (
        patient_factory(3, "fitbit", "Asia/Tokyo"),
        patient_factory(4, "fitbit", "America/Los_Angeles"),
    )
    early = delivery_factory("BiometricSample", tokyo, at(-1, 16), metric="HEART_RATE")
    late = delivery_factory("SymptomReport", los_angeles, at(5, 3))
    rounds = plan_rounds(result_factory([tokyo, los_angeles], [early, late], days=5))
    assert [r.day for r in rounds] == list(range(-1, 6))
    assert rounds[0].routes[FITBIT] == [early]
    assert rounds[-1].routes[INTAKE] == [late]


def test_a_wearable_day_arrives_whole_in_the_round_of_its_earliest_delay() -> None:
    straddling = [  # delays on both sides of one day: the day still travels together
        delivery_factory("BiometricSample", APPLE_PATIENT, at(1, 0), delay_s=86_000, metric="HEART_RATE"),
        delivery_factory("BiometricSample", APPLE_PATIENT, at(1, 12), delay_s=86_800, metric="STEPS"),
        delivery_factory("BiometricSample", APPLE_PATIENT, at(1, 23), delay_s=86_500, metric="SLEEP_STAGE"),
    ]
    two_days_late = delivery_factory(
        "BiometricSample", APPLE_PATIENT, at(2, 15), delay_s=2.5 * 86_400, metric="HEART_RATE"
    )
    beyond_the_end = delivery_factory(
        "BiometricSample", APPLE_PATIENT, at(3, 15), delay_s=35 * 86_400, metric="STEPS"
    )
    on_time = delivery_factory("BiometricSample", APPLE_PATIENT, at(5, 12), metric="STEPS")
    rounds = plan_rounds(
        result_factory([APPLE_PATIENT], [*straddling, two_days_late, beyond_the_end, on_time], days=6)
    )
    assert [r.day for r in rounds] == [1, 2, 3, 4, 5]
    assert rounds[0].routes[OPENMHEALTH] == straddling[:2]
    assert rounds[0].routes[DIRECT] == straddling[2:]
    assert rounds[3].routes[OPENMHEALTH] == [two_days_late]
    assert rounds[4].routes[OPENMHEALTH] == [beyond_the_end, on_time]
    assert route_totals(rounds) == {FHIR: 0, FITBIT: 0, OPENMHEALTH: 5, INTAKE: 0, DIRECT: 1}


def test_defects_are_fed_on_their_utc_arrival_day_within_the_run() -> None:
    report = delivery_factory("SymptomReport", FITBIT_PATIENT, at(0, 12))
    garbage = delivery_factory("RAW", None, at(0, 23), delay_s=7200, defect="garbage_bytes")
    future = delivery_factory(
        "SymptomReport", FITBIT_PATIENT, at(9, 12), delay_s=0, defect="future_timestamp"
    )
    future["arrival_time"] = at(2, 12)
    backfill = delivery_factory("BiometricSample", FITBIT_PATIENT, at(3, 1), delay_s=9e6, defect="wrong_unit")
    rounds = plan_rounds(result_factory([FITBIT_PATIENT], [report, garbage, future, backfill]))
    assert [r.day for r in rounds] == [0]  # defects stretch no run: they are clamped into it
    assert rounds[0].routes[DIRECT] == [garbage, future, backfill]


def test_a_simulated_cohort_is_fed_completely_once() -> None:
    cohort = simulate(4, 10, 3, START)
    rounds = plan_rounds(cohort)
    fed = [id(d) for r in rounds for name in ROUTES for d in r.routes.get(name, ())]
    assert [r.day for r in rounds] == list(range(-1, 11))  # Sydney's first and LA's last day
    for r in rounds:  # no round holds an event of a later day, so no day closes on its own round
        days = {(d["record"]["event_time"].date() - START).days for d in _clean(r)}
        assert max(days, default=r.day) <= r.day
    assert sorted(fed) == sorted(id(d) for d in cohort.deliveries)
    totals = route_totals(rounds)
    assert sum(totals.values()) == len(cohort.deliveries)
    assert all(totals[name] > 0 for name in ROUTES), totals
    first_day = next(r for r in rounds if r.day == 0)
    assert set(first_day.patients(FHIR)) == {p.patient_id for p in cohort.patients}  # demographics


def _clean(r: Round) -> list[dict[str, Any]]:
    return [d for name in ROUTES for d in r.routes.get(name, ()) if d["defect"] is None]


def test_intake_bodies_are_what_the_intake_accepts() -> None:
    symptom = delivery_factory(
        "SymptomReport", FITBIT_PATIENT, at(1, 1), event_id="e" * 32, symptom_type="ANXIETY",
        severity=6, context=None, triggers=[], notes=None,
    )["record"]  # fmt: skip
    endpoint, body = intake_submission("SymptomReport", symptom)
    assert endpoint == "symptom-reports"
    assert body == {
        "submission_id": "e" * 32,
        "symptom_type": "ANXIETY",
        "severity": 6,
        "event_time": "2026-03-03T01:00:00+00:00",
    }
    SymptomReportRequest.model_validate_json(json.dumps(body))
    _, with_context = intake_submission(
        "SymptomReport", {**symptom, "context": "work", "triggers": ["noise"]}
    )
    assert (with_context["context"], with_context["triggers"]) == ("work", ["noise"])
    SymptomReportRequest.model_validate_json(json.dumps(with_context))

    phq9 = {"submission_id": "s1", "instrument": "PHQ9", "item_responses": [1, 2, 0, 0, 1, 3, 0, 1, 1],
            "event_time": at(2, 1), "total": 9}  # fmt: skip
    endpoint, body = intake_submission("AssessmentResult", phq9)
    assert endpoint == "assessments"
    assert body == {
        "submission_id": "s1",
        "instrument": "PHQ9",
        "item_responses": [1, 2, 0, 0, 1, 3, 0, 1, 1],
        "event_time": "2026-03-04T01:00:00+00:00",
    }
    AssessmentRequest.model_validate_json(json.dumps(body))
    with pytest.raises(ValueError, match="MedicationEvent"):
        intake_submission("MedicationEvent", symptom)
