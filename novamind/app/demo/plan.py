"""Which door each simulated record enters by, and on which simulated day. Pure functions.

The demo replays the cohort one UTC day (a *round*) at a time, the way the data would
arrive live: each patient's wearable data of that day, their symptom reports and
questionnaires, medication starts from the EHR. The workers close a patient's day an hour
after their newest event passes its end, so a round must never hold an event of the next
day: rounds follow UTC days, whatever the patient's time zone, and the demo waits for the
workers between rounds. A round holds the deliveries of every route:

* ``fitbit`` / ``openmhealth``: wearable samples, imported from vendor files;
* ``fhir``: demographics (first round) and medication starts, imported from FHIR Bundles;
* ``intake``: symptom reports and PHQ-9 / GAD-7, submitted over HTTP;
* ``direct``: what no vendor file carries (see :func:`route`), published as it is.

A patient's wearable day that the simulator delivers late (a device syncing days later) is
imported in the round of its arrival, so the workers see real backfills; defective records
come on their arrival day. Arrivals after the last day come in the last round.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from connectors.simulator import SimulationResult
from connectors.wearables import WearableFormat

FITBIT = WearableFormat.FITBIT
OPENMHEALTH = WearableFormat.OPENMHEALTH
FHIR = "fhir"
INTAKE = "intake"
DIRECT = "direct"
ROUTES = (FHIR, FITBIT, OPENMHEALTH, INTAKE, DIRECT)

OMH_METRICS = frozenset({"HEART_RATE", "STEPS"})  # what emit.omh_points writes
EHR_RECORDS = frozenset({"Demographics", "MedicationEvent"})
INTAKE_RECORDS = frozenset({"SymptomReport", "AssessmentResult"})
DAY_S = 86_400


def route(delivery: dict[str, Any], vendor: str | None) -> str:
    """The route of one simulated delivery for a patient whose wearable is ``vendor``.

    Direct: the deliberately defective records (vendor emitters write well-formed data
    only, and the intake would refuse them) and the Apple Health patients' resting heart
    rate, HRV (SDNN) and sleep stages (the Open mHealth emitter writes heart-rate and
    step-count points only).
    """
    if delivery["defect"] is not None:
        return DIRECT
    kind = delivery["record_type"]
    if kind in EHR_RECORDS:
        return FHIR
    if kind in INTAKE_RECORDS:
        return INTAKE
    if kind == "BiometricSample":
        if vendor == "fitbit":
            return FITBIT
        if delivery["record"]["metric"] in OMH_METRICS:
            return OPENMHEALTH
    return DIRECT


@dataclass
class Round:
    """The deliveries of one UTC day, by route; ``day`` counts from the simulation's start."""

    day: int
    date: dt.date
    routes: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    def count(self, name: str) -> int:
        return len(self.routes.get(name, ()))

    def patients(self, name: str) -> list[str]:
        """Patients with deliveries on route ``name``, in first-seen order."""
        return list(dict.fromkeys(d["record"]["patient_id"] for d in self.routes.get(name, ())))


def plan_rounds(result: SimulationResult) -> list[Round]:
    """Every delivery of the simulation in the round it is fed in (see the module doc)."""
    vendors = {p.patient_id: p.vendor for p in result.patients}
    start = result.start_date

    def utc_day(when: dt.datetime) -> int:
        return (when.astimezone(dt.UTC).date() - start).days

    # A patient's wearable day arrives as a whole, with its earliest sample's delay.
    delays: dict[tuple[str, int], float] = {}
    placed = []
    for delivery in result.deliveries:
        record = delivery["record"]
        name = route(delivery, vendors.get(record.get("patient_id", "")))
        if delivery["defect"] is not None:  # garbage has no event time: its arrival
            placed.append((name, utc_day(delivery["arrival_time"]), delivery))
            continue
        day = utc_day(record["event_time"])
        placed.append((name, day, delivery))
        if delivery["record_type"] == "BiometricSample":
            key = (record["patient_id"], day)
            delays[key] = min(delays.get(key, float("inf")), float(delivery["delay_seconds"]))
    event_days = [day for _, day, d in placed if d["defect"] is None] or [0]
    first, last = min(event_days), max(event_days)

    rounds = [Round(day, start + dt.timedelta(days=day)) for day in range(first, last + 1)]
    for name, day, delivery in placed:
        if delivery["defect"] is None and delivery["record_type"] == "BiometricSample":
            day += int(delays[(delivery["record"]["patient_id"], day)] // DAY_S)
        rounds[min(max(day, first), last) - first].routes[name].append(delivery)
    return rounds


def intake_submission(record_type: str, record: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(endpoint, JSON body)`` of a report as the patient's app submits it.

    The endpoint is the last path segment under ``/v1/patients/{patient_id}/``; the
    simulator's event id is the app's submission id, so a retry is recognised.
    """
    when = record["event_time"].isoformat()
    if record_type == "SymptomReport":
        body: dict[str, Any] = {
            "submission_id": record["event_id"],
            "symptom_type": record["symptom_type"],
            "severity": record["severity"],
            "event_time": when,
        }
        if record.get("context"):
            body["context"] = record["context"]
        if record.get("triggers"):
            body["triggers"] = list(record["triggers"])
        return "symptom-reports", body
    if record_type == "AssessmentResult":
        return "assessments", {
            "submission_id": record["submission_id"],
            "instrument": record["instrument"],
            "item_responses": list(record["item_responses"]),
            "event_time": when,
        }
    raise ValueError(f"{record_type} records are not submitted to the intake")


def route_totals(rounds: Iterable[Round]) -> dict[str, int]:
    """Deliveries per route over all rounds, in :data:`ROUTES` order."""
    totals = dict.fromkeys(ROUTES, 0)
    for r in rounds:
        for name in ROUTES:
            totals[name] += r.count(name)
    return totals
