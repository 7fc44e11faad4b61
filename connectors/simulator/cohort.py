"""``simulate``: a deterministic synthetic cohort with ground truth, late deliveries and a
small share of deliberately bad records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from connectors.ehr.clinical import age_band
from connectors.pseudonyms import device_ref, pseudonymize
from connectors.records import current_version, envelope, event_id, score_assessment
from connectors.simulator.signals import SOURCE, day_samples
from connectors.simulator.truth import expected_scores, simulate_mood
from schemas.models import REPORTED_SYMPTOM_TYPES

SIM_KEY = b"novamind-simulator-not-a-secret!"  # synthetic people only; never a production key
MRN_SYSTEM = "urn:oid:2.999.1.1"  # 2.999: example OID arc
ZONES = ("America/New_York", "Europe/Berlin", "America/Los_Angeles", "Europe/London",
         "Asia/Tokyo", "Australia/Sydney")
DRUGS = (("sertraline", "312940", 50.0), ("escitalopram", "349332", 10.0),
         ("fluoxetine", "310385", 20.0))
SYMPTOMS = tuple(s for s in REPORTED_SYMPTOM_TYPES if s != "OTHER")  # order fixes the seed's draws
CONTEXTS = (None, "work", "home", "social", "sleep")
DEFECTS = ("out_of_range", "wrong_unit", "future_timestamp", "garbage_bytes")


@dataclass(frozen=True, slots=True)
class SimPatient:
    patient_id: str
    mrn: str
    mrn_system: str
    time_zone: str
    sex: str
    birth_date: date
    vendor: str           # 'fitbit' or 'apple_health'
    device_id: str


@dataclass
class SimulationResult:
    """Deliveries in arrival order plus the hidden truth per patient-day."""

    patients: list[SimPatient]
    deliveries: list[dict[str, Any]]
    truth: list[dict[str, Any]]
    start_date: date
    days: int
    medication_starts: dict[str, int] = field(default_factory=dict)

    @property
    def records(self) -> list[dict[str, Any]]:
        return [d["record"] for d in self.deliveries]


def _patient(i: int, rng: np.random.Generator, key: bytes, start: date) -> SimPatient:
    mrn = f"SIM{i:06d}"
    vendor = "fitbit" if i % 2 == 0 else "apple_health"
    return SimPatient(
        patient_id=pseudonymize(MRN_SYSTEM, mrn, key=key), mrn=mrn, mrn_system=MRN_SYSTEM,
        time_zone=ZONES[i % len(ZONES)], sex=("FEMALE", "MALE")[int(rng.integers(0, 2))],
        birth_date=start - timedelta(days=int(rng.integers(18 * 365, 70 * 365))),
        vendor=vendor, device_id=device_ref(vendor, f"user-{i}", key=key))


def _record(rec_type: str, pid: str, when: datetime, eid: str, **fields: Any) -> dict[str, Any]:
    rec = envelope(eid=eid, patient_id=pid, event_time=when, received_time=when, source=SOURCE,
                   schema_version=current_version(rec_type))
    rec.update(fields)
    return {"record_type": rec_type, "record": rec}


def _assessments(rng: np.random.Generator, pid: str, when: datetime, mood: float
                 ) -> list[dict[str, Any]]:
    phq, gad, _ = expected_scores(mood)
    out = []
    for instrument, expected, n in (("PHQ9", phq, 9), ("GAD7", gad, 7)):
        items = [int(x) for x in rng.binomial(3, min(1.0, expected / (3 * n)), n)]
        if instrument == "PHQ9":
            items[8] = int(rng.random() < 0.5) + int(rng.random() < 0.1) if mood < -1.8 else 0
        total, band, item9 = score_assessment(instrument, items)
        sid = event_id(SOURCE, pid, instrument, when)
        out.append(_record("AssessmentResult", pid, when, sid, submission_id=sid,
                           instrument=instrument, item_responses=items, total=total, band=band,
                           item9_positive=item9,
                           loinc_total="44261-6" if instrument == "PHQ9" else "70274-6"))
    return out


def _symptoms(rng: np.random.Generator, pid: str, when: datetime, mood: float
              ) -> list[dict[str, Any]]:
    _, _, sev = expected_scores(mood)
    weights = np.array([3, 2, 1, 2, 1.5, 1.5, 1, 0.2 + max(0.0, -mood)])
    kinds = rng.choice(len(SYMPTOMS), size=int(rng.integers(1, 3)), replace=False,
                       p=weights / weights.sum())
    out = []
    for k in kinds.tolist():
        severity = int(np.clip(round(sev + rng.normal(0, 1.2)), 0, 10))
        out.append(_record("SymptomReport", pid, when, event_id(SOURCE, pid, SYMPTOMS[k], when),
                           symptom_type=SYMPTOMS[k], severity=severity,
                           context=CONTEXTS[int(rng.integers(0, len(CONTEXTS)))], triggers=[],
                           notes=None))
    return out


def _delays(rng: np.random.Generator, n_days: int) -> np.ndarray:
    """Per patient-day wearable delivery delay (s): usual sync, 1-10 d or >30 d backfills."""
    delay = rng.exponential(1800.0, n_days)
    late = rng.random(n_days)
    delay = np.where(late < 0.05, rng.uniform(1, 10, n_days) * 86400, delay)
    return np.where(late < 0.004, rng.uniform(31, 40, n_days) * 86400, delay)


def simulate(patients: int, days: int, seed: int, start_date: date, *, key: bytes = SIM_KEY,
             bad_share: float = 0.005) -> SimulationResult:
    """Simulate ``patients`` for ``days`` from ``start_date``; identical output per ``seed``."""
    cohort, items, truth, med_starts = [], [], [], {}
    for i in range(patients):
        rng = np.random.default_rng([seed, i])
        p = _patient(i, rng, key, start_date)
        cohort.append(p)
        tz = ZoneInfo(p.time_zone)
        mt = simulate_mood(rng, days)
        delays = _delays(rng, days)
        gap = np.zeros(days, dtype=bool)
        for t in np.flatnonzero(rng.random(days) < 0.03).tolist():
            gap[t: t + int(rng.integers(1, 4))] = True
        t0 = datetime.combine(start_date, time(9), tzinfo=UTC)
        items.append((_record("Demographics", p.patient_id, t0, event_id(SOURCE, p.patient_id,
                      "Demographics"), age_band=age_band(p.birth_date, start_date),
                      sex=p.sex), 3600.0))
        for t in range(days):
            day = start_date + timedelta(days=t)
            mood = float(mt.mood[t])
            evening = datetime.combine(day, time(20), tzinfo=tz).astimezone(UTC)
            evening += timedelta(minutes=float(rng.normal(0, 45)))
            if mt.med_start_day == t:
                drug, rxnorm, dose = DRUGS[i % len(DRUGS)]
                med_starts[p.patient_id] = t
                items.append((_record("MedicationEvent", p.patient_id, evening,
                                      event_id(SOURCE, p.patient_id, "MedicationEvent", day),
                                      action="STARTED", rxnorm=rxnorm, drug=drug, dose_mg=dose),
                              float(rng.uniform(3600, 86400))))
            if rng.random() < 0.8:
                items.extend((r, float(rng.uniform(0, 120)))
                             for r in _symptoms(rng, p.patient_id, evening, mood))
            if t % 14 == i % 14:
                items.extend((r, float(rng.uniform(0, 60)))
                             for r in _assessments(rng, p.patient_id, evening, mood))
            if not gap[t]:
                samples = day_samples(rng, patient_id=p.patient_id, device_id=p.device_id,
                                      vendor=p.vendor, tz=tz, day=day, mood=mood)
                jitter = rng.uniform(0, 900, len(samples))
                base = float(delays[t])
                items.extend(({"record_type": "BiometricSample", "record": s}, base + j)
                             for s, j in zip(samples, jitter.tolist(), strict=True))
            phq, gad, sev = expected_scores(mood)
            truth.append({"patient_id": p.patient_id, "date": day, "mood": mood,
                          "episode_depth": float(mt.episode[t]),
                          "medication_effect": float(mt.med_effect[t]),
                          "on_medication": mt.med_start_day is not None and t >= mt.med_start_day,
                          "expected_phq9": phq, "expected_gad7": gad, "expected_severity": sev,
                          "device_gap": bool(gap[t])})
    deliveries = _deliver(items, np.random.default_rng([seed, 10**6]), bad_share)
    return SimulationResult(cohort, deliveries, truth, start_date, days, med_starts)


def _deliver(items: list[tuple[dict[str, Any], float]], rng: np.random.Generator,
             bad_share: float) -> list[dict[str, Any]]:
    """Stamp arrival times, corrupt a small share, and sort into delivery order."""
    out = []
    for item, delay in items:
        rec = item["record"]
        arrival = rec["event_time"] + timedelta(seconds=round(delay, 3))
        rec["received_time"] = arrival
        item.update(arrival_time=arrival, delay_seconds=delay, defect=None)
        out.append(item)
    for idx in rng.choice(len(out), size=round(len(out) * bad_share), replace=False):
        _corrupt(out[int(idx)], DEFECTS[int(rng.integers(0, len(DEFECTS)))], rng)
    out.sort(key=_arrival_key)
    for n, d in enumerate(out):
        d["arrival_order"] = n
    return out


def _arrival_key(delivery: dict[str, Any]) -> tuple[datetime, str]:
    return delivery["arrival_time"], delivery["record"].get("event_id", "")


def _corrupt(delivery: dict[str, Any], defect: str, rng: np.random.Generator) -> None:
    rec = delivery["record"]
    if defect == "garbage_bytes":
        delivery["record_type"] = "RAW"
        delivery["record"] = {"raw": b"\x00\xff\xfeNOVAMIND" + rng.bytes(24)}
    elif defect == "future_timestamp":
        rec["event_time"] = delivery["arrival_time"] + timedelta(days=float(rng.uniform(2, 30)))
    elif delivery["record_type"] == "BiometricSample":
        if defect == "out_of_range":
            rec["value"] = -50.0  # below every metric's physiological range
        else:
            rec["unit"] = "ms" if rec["unit"] != "ms" else "beats/min"
    elif delivery["record_type"] == "SymptomReport" and defect == "out_of_range":
        rec["severity"] = 14
    else:
        rec["event_time"] = delivery["arrival_time"] + timedelta(days=3)
        defect = "future_timestamp"
    delivery["defect"] = defect
