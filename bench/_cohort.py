"""Small self-contained synthetic cohort for the twin fidelity bench.

Each patient has a hidden daily mood state ``m`` on the 0-10 symptom-severity scale: an AR(1)
process around a personal baseline, pushed up by short sleep the night before, by
deterioration episodes (10-day ramp, 45-90 days) and pulled back by a medication started
during an episode whose effect starts after 14 days and ramps over 28 days. Observations:
daily symptom reports (noisy, sometimes absent), biweekly PHQ-9/GAD-7 (with item 9 answers
more likely when mood is bad), daily wearable aggregates coupled to mood, a few injected
biometric anomalies (fever-like single days), missing and low-quality days, and illness
spells: 0-2 a year of 4-10 days with resting heart rate up 2-10 bpm (the range wearable
studies of viral infections report: Radin et al., Lancet Digit Health 2020; Mishra et al.,
Nat Biomed Eng 2020), heart rate up with it, HRV down 1.5% per bpm, steps down 4% per bpm,
sleep up 3 minutes per bpm and respiratory rate up 0.1/min per bpm. Spells draw from their
own random stream, so the rest of the cohort is what it was without them. The reference
forecasts and detector of :mod:`bench._informed` run on each patient (``references``,
``reference_alarms``). Deterministic per seed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from bench._informed import (
    PHQ_PER_POINT,
    ReportModel,
    course_known_forecasts,
    informed_alarms,
    informed_forecasts,
)

START = dt.date(2025, 1, 1)
_NS = uuid.uuid5(uuid.NAMESPACE_URL, "https://novamind.health/bench-cohort")
PHQ9_PER_MOOD_POINT = 2.5
"""This cohort's PHQ-9 total per point of its 0-10 mood (the totals are drawn around it)."""
DRUGS = ("sertraline", "escitalopram", "citalopram", "fluoxetine", "paroxetine", "amitriptyline")


@dataclass
class Episode:
    """A deterioration episode: onset, end and the optional medication start (day indices)."""

    onset: int
    end: int
    rise: float
    med_day: int | None
    phq9_10_day: int | None = None
    """First day of the episode whose noise-free PHQ-9 (the course without the daily
    fluctuation) is 10 or more: the clinical onset the detection delay goal counts from;
    ``None`` when the episode stays below 10."""


@dataclass
class Spell:
    """An illness spell: first and last day and the resting heart-rate rise (bpm)."""

    start: int
    end: int
    rhr_rise: float


@dataclass
class SyntheticPatient:
    """A patient's event log (in event-time order) and the hidden truth behind it."""

    patient_id: str
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    mood: list[float] = field(default_factory=list)
    expected: list[float] = field(default_factory=list)
    oracle: list[float] = field(default_factory=list)
    """Each day's ``mood`` as forecast the day before by an observer who knows every hidden
    parameter and state: only the day's own shock and the report noise are left to it, so no
    forecaster of the reports can do materially better (the bench's ceiling)."""
    references: dict[str, list[float | None]] = field(default_factory=dict)
    """Other reference forecasts of each day's report, made the day before (``None``: none
    yet), by name: see :mod:`bench._informed`."""
    reference_alarms: dict[str, list[int]] = field(default_factory=dict)
    """Days of deterioration alarms of reference detectors with hidden knowledge, by name."""
    severity: list[float | None] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    item9_submissions: list[str] = field(default_factory=list)
    anomaly_days: list[int] = field(default_factory=list)
    spells: list[Spell] = field(default_factory=list)


def _ms(day: int, seconds: int) -> int:
    d = START + dt.timedelta(days=day)
    epoch = (d - dt.date(1970, 1, 1)).days
    return epoch * 86_400_000 + seconds * 1000


def _env(pid: str, kind: str, day: int, seconds: int, k: int = 0) -> dict[str, Any]:
    ms = _ms(day, seconds)
    return {
        "event_id": str(uuid.uuid5(_NS, f"{pid}:{kind}:{day}:{k}")),
        "patient_id": pid,
        "event_time": ms,
        "received_time": ms + 60_000,
        "source": "simulator",
        "schema_version": 1,
    }


def _items(rng: random.Random, total: int, n: int, item9: bool) -> list[int]:
    items = [0] * n
    if item9:
        items[8] = 1 + rng.randrange(2)
    budget = max(total - sum(items), 0)
    order = [i for i in range(n) if i != 8]
    while budget > 0 and any(items[i] < 3 for i in order):
        i = rng.choice(order)
        if items[i] < 3:
            items[i] += 1
            budget -= 1
    return items


def _band(instrument: str, total: int) -> str:
    cuts = [(20, "SEVERE"), (15, "MODERATELY_SEVERE"), (10, "MODERATE"), (5, "MILD")]
    if instrument == "GAD7":
        cuts = [(15, "SEVERE"), (10, "MODERATE"), (5, "MILD")]
    return next((name for lower, name in cuts if total >= lower), "MINIMAL")


def _episodes(rng: random.Random, days: int) -> list[Episode]:
    count = rng.choices((0, 1, 2), weights=(0.3, 0.5, 0.2))[0]
    out: list[Episode] = []
    for _ in range(count):
        for _attempt in range(20):
            onset = rng.randrange(40, max(days - 60, 41))
            end = onset + rng.randrange(45, 90)
            if all(end + 30 < e.onset or onset > e.end + 30 for e in out):
                med = onset + rng.randrange(7, 21) if rng.random() < 0.7 else None
                out.append(Episode(onset, end, rng.uniform(2.5, 4.0), med))
                break
    return sorted(out, key=lambda e: e.onset)


def _spells(rng: random.Random, days: int) -> list[Spell]:
    out: list[Spell] = []
    for _ in range(rng.choices((0, 1, 2), weights=(0.3, 0.45, 0.25))[0]):
        for _attempt in range(20):
            start = rng.randrange(30, max(days - 12, 31))
            end = start + rng.randrange(3, 10)
            if all(end + 20 < s.start or start > s.end + 20 for s in out):
                out.append(Spell(start, end, rng.uniform(2.0, 10.0)))
                break
    return sorted(out, key=lambda s: s.start)


def _illness(bio: dict[str, float], rise: float) -> None:
    bio["resting_heart_rate"] += rise
    bio["heart_rate_mean"] += rise
    bio["hrv_rmssd"] *= 1.0 - 0.015 * rise
    bio["steps_total"] *= 1.0 - 0.04 * rise
    bio["sleep_total_minutes"] += 3.0 * rise
    bio["respiratory_rate_mean"] += 0.1 * rise


def _elevation(ep: Episode, t: int) -> float:
    if t < ep.onset or t > ep.end + 14:
        return 0.0
    up = min((t - ep.onset) / 10.0, 1.0)
    down = 1.0 - min(max((t - ep.end) / 14.0, 0.0), 1.0)
    med = 0.0
    if ep.med_day is not None:
        med = min(max((t - ep.med_day - 14) / 28.0, 0.0), 1.0) * 0.8
    return ep.rise * up * down * (1.0 - med)


def generate_patient(index: int, seed: int = 7, days: int = 365) -> SyntheticPatient:
    """Generate one patient's year of events (deterministic in ``index`` and ``seed``)."""
    rng = random.Random(f"{seed}:{index}")
    pid = "p_" + hashlib.sha256(f"bench:{seed}:{index}".encode()).hexdigest()[:32]
    p = SyntheticPatient(pid)
    base, sleep0 = rng.uniform(1.5, 4.5), rng.uniform(380, 470)
    rhr0, hrv0, steps0 = rng.uniform(55, 75), rng.uniform(25, 60), rng.uniform(4000, 11000)
    p.episodes = _episodes(rng, days)
    p.anomaly_days = sorted(rng.sample(range(30, days), 2))
    p.spells = _spells(random.Random(f"{seed}:{index}:illness"), days)
    phq_offset = rng.randrange(14)
    latent, sleep_prev = 0.0, sleep0
    calm: list[float] = []  # the noise-free mood without episodes, for the informed detector
    n_reports: list[int] = []
    p.events.append(
        (
            "demographics",
            {**_env(pid, "demo", 0, 0), "age_band": "AGE_35_44", "sex": rng.choice(("FEMALE", "MALE"))},
        )
    )
    if rng.random() < 0.4:
        pheno = [
            {
                "gene": "CYP2C19",
                "phenotype": rng.choices(
                    (
                        "POOR_METABOLIZER",
                        "INTERMEDIATE_METABOLIZER",
                        "NORMAL_METABOLIZER",
                        "RAPID_METABOLIZER",
                        "ULTRARAPID_METABOLIZER",
                    ),
                    (15, 25, 40, 15, 5),
                )[0],
                "diplotype": None,
            },
            {
                "gene": "CYP2D6",
                "phenotype": rng.choices(
                    (
                        "POOR_METABOLIZER",
                        "INTERMEDIATE_METABOLIZER",
                        "NORMAL_METABOLIZER",
                        "ULTRARAPID_METABOLIZER",
                    ),
                    (10, 30, 50, 10),
                )[0],
                "diplotype": None,
            },
        ]
        p.events.append(("genetic", {**_env(pid, "gen", 0, 1), "phenotypes": pheno}))
    for t in range(days):
        elevation = sum(_elevation(ep, t) for ep in p.episodes)
        sleep_push = 0.5 * (sleep0 - sleep_prev) / 60.0
        p.oracle.append(min(max(base + 0.8 * latent + sleep_push + elevation, 0.0), 10.0))
        latent = 0.8 * latent + rng.gauss(0, 0.45)
        truth = min(max(base + latent + sleep_push + elevation, 0.0), 10.0)
        p.mood.append(truth)
        p.expected.append(base + elevation)
        calm.append(base + sleep_push)
        dev = truth - base
        for ep in p.episodes:
            if ep.med_day == t:
                drug = rng.choice(DRUGS)
                p.events.append(
                    (
                        "medication",
                        {
                            **_env(pid, "med", t, 9 * 3600),
                            "action": "STARTED",
                            "drug": drug,
                            "rxnorm": None,
                            "dose_mg": 50.0,
                        },
                    )
                )
        if t % 14 == phq_offset:
            phq = min(max(round(PHQ9_PER_MOOD_POINT * truth + rng.gauss(0, 2.0)), 0), 27)
            item9 = rng.random() < 0.03 + 0.3 * max(truth - 5.0, 0.0) / 5.0
            items = _items(rng, phq, 9, item9)
            sub = str(uuid.uuid5(_NS, f"{pid}:phq9:{t}"))
            if items[8] >= 1:
                p.item9_submissions.append(sub)
            p.events.append(
                (
                    "assessment",
                    {
                        **_env(pid, "phq9", t, 10 * 3600),
                        "submission_id": sub,
                        "instrument": "PHQ9",
                        "item_responses": items,
                        "total": sum(items),
                        "band": _band("PHQ9", sum(items)),
                        "item9_positive": items[8] >= 1,
                        "loinc_total": "44261-6",
                    },
                )
            )
            gad = min(max(round(1.9 * truth + rng.gauss(0, 2.0)), 0), 21)
            gitems = _items(rng, gad, 7, False)
            p.events.append(
                (
                    "assessment",
                    {
                        **_env(pid, "gad7", t, 10 * 3600 + 60),
                        "submission_id": str(uuid.uuid5(_NS, f"{pid}:gad7:{t}")),
                        "instrument": "GAD7",
                        "item_responses": gitems,
                        "total": sum(gitems),
                        "band": _band("GAD7", sum(gitems)),
                        "item9_positive": False,
                        "loinc_total": "70274-6",
                    },
                )
            )
        sleep = rng.gauss(sleep0 - 20.0 * dev, 40.0)
        sleep_prev = sleep
        missing = rng.random() < 0.03
        reports = (
            [min(max(round(truth + rng.gauss(0, 1.0)), 0), 10) for _ in range(rng.randrange(1, 4))]
            if rng.random() < 0.9
            else []
        )
        severity = sum(reports) / len(reports) if reports and not missing else None
        p.severity.append(severity)
        n_reports.append(0 if severity is None else len(reports))
        feat: dict[str, Any] = {
            **_env(pid, "features", t, 86_399),
            "date": START + dt.timedelta(t),
            "revision": 0,
            "missing": missing,
            "meets_quality_standards": rng.random() > 0.02,
            "symptom_severity_mean": severity,
        }
        if not missing:
            rhr = rhr0 + 0.8 * dev + rng.gauss(0, 1.5)
            bio = {
                "resting_heart_rate": rhr,
                "hrv_rmssd": max(hrv0 - 1.5 * dev + rng.gauss(0, 4), 5),
                "steps_total": max(steps0 - 500 * dev + rng.gauss(0, 1500), 0.0),
                "sleep_total_minutes": max(sleep, 60.0),
                "heart_rate_mean": rhr + 12 + rng.gauss(0, 2),
                "spo2_mean": min(97 + rng.gauss(0, 0.7), 100.0),
                "respiratory_rate_mean": 14.5 + rng.gauss(0, 0.8),
            }
            for spell in p.spells:
                if spell.start <= t <= spell.end:
                    _illness(bio, spell.rhr_rise)
            if t in p.anomaly_days:
                bio["resting_heart_rate"] += 15
                bio["heart_rate_mean"] += 15
                bio["hrv_rmssd"] *= 0.6
                bio["respiratory_rate_mean"] += 4
                bio["spo2_mean"] -= 2
                bio["steps_total"] *= 0.5
            feat.update(bio)
        p.events.append(("features", feat))
    p.references = _references(p, n_reports, calm, base)
    p.reference_alarms = {"informed": _informed_alarms(p.severity, n_reports, calm)}
    for ep in p.episodes:
        ep.phq9_10_day = first_day_at_least(p.expected, ep, 10.0 / PHQ9_PER_MOOD_POINT)
    return p


def first_day_at_least(course: list[float], ep: Episode, level: float) -> int | None:
    """First day from ``ep``'s onset to its end on which ``course`` is at least ``level``."""
    return next((t for t in range(ep.onset, min(ep.end, len(course) - 1) + 1) if course[t] >= level), None)


COHORT_MODEL = ReportModel(
    gain=1.0,
    anchor=0.0,
    offset=0.0,
    report_sd=1.0,
    phi=0.8,
    shock_sd=0.45 * PHQ_PER_POINT,
    dow_amplitude=1.0,
)
"""This cohort's noise, read on the PHQ-9 scale at 2.7 points per 0-10 point (the references'
unit): AR(1) coefficient 0.8, daily shock 0.45 mood points, one report's SD 1 point. The
references' known daily pattern (their ``dow``) is the sleep push, at amplitude 1."""


def _references(
    p: SyntheticPatient, n_reports: list[int], calm: list[float], base: float
) -> dict[str, list[float | None]]:
    """Forecasts of each day's report by :mod:`bench._informed`'s references, as on the
    trajectory generator. ``informed`` knows the noise, the patient's usual sleep and how the
    night's sleep pushes the next day's mood (the twin sees the sleep), and estimates the level,
    baseline and episodes alike, from the reports. ``course_known`` knows each day's noise-free
    mood without the AR(1) fluctuation: baseline, sleep push and episode elevation. ``calm[t]``
    is day ``t``'s baseline plus sleep push."""
    push = [(c - base) * PHQ_PER_POINT for c in calm]
    course = [(e + c - base) * PHQ_PER_POINT for e, c in zip(p.expected, calm, strict=True)]
    return {
        "informed": informed_forecasts(COHORT_MODEL, p.severity, n_reports, push),
        "course_known": course_known_forecasts(COHORT_MODEL, p.severity, n_reports, course),
    }


def _informed_alarms(severity: list[float | None], n_reports: list[int], calm: list[float]) -> list[int]:
    """Deterioration alarms of a detector that knows the patient's baseline mood, how sleep
    pushes it, and the noise (:func:`bench._informed.informed_alarms`, with the setting chosen
    on the trajectory generator, which is also the best on this cohort's seed 7: 184/184, median
    delay 9 days, 0.19 false alarms per patient-year; this cohort's 0-10 mood is read on the
    PHQ-9 scale as 2.7 points per point)."""
    course = [c * PHQ_PER_POINT for c in calm]
    return informed_alarms(COHORT_MODEL, severity, n_reports, course)


def generate_cohort(n: int, seed: int = 7, days: int = 365) -> list[SyntheticPatient]:
    """Generate ``n`` patients."""
    return [generate_patient(i, seed, days) for i in range(n)]
