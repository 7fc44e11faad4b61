"""Second synthetic cohort for the twin fidelity bench, written from published trajectory studies.

Written independently of ``bench/_cohort.py`` and ``connectors/simulator`` (it shares only the
bench's result type, :class:`bench._cohort.SyntheticPatient`, so the same scoring runs on
both). The dynamics differ on purpose: the hidden state is a PHQ-9-scale severity (0-27), not
a 0-10 mood, and each patient's daily 0-10 report passes through that patient's own use of
the scale.

Trajectory classes (one per patient; shares are round numbers in the range the studies report)
    Long-term courses of depressive symptoms fall into a few latent classes: a large stable-low
    (resilient) class, remitting/improving classes, a persistent-high (chronic) class, and
    courses that rise again (Musliner et al., "Heterogeneity in long-term trajectories of
    depressive symptoms: patterns, predictors and outcomes", J Affect Disord 2016, a review of
    25 trajectory studies; Coryell et al., Psychol Med 2019: low, remitting and persistent
    classes in weekly ratings of adolescents starting an SSRI; Bonanno, Am Psychol 2004:
    resilience, recovery, chronic and delayed reactions to adversity, resilience the most
    common). Here: ``resilient`` 35% (stable low; 25% of them meet one adversity-triggered
    episode, Bonanno's delayed/recovery course), ``improving`` 20% (start in an episode on
    treatment and respond), ``chronic`` 15% (persistently moderate-severe, little response),
    ``relapsing`` 15% (respond partially, then relapse), ``fluctuating`` 15% (a mild baseline
    with repeated short episodes and a noisier, less persistent day-to-day course).
Relapse
    Partial remission (residual symptoms) predicts relapse, and relapses cluster in the first
    months after remission (Paykel/Ramana et al., "Remission and relapse in major depression:
    a two-year prospective follow-up study", Psychol Med 1995: 40% relapsed within 15 months,
    all within 10 months; Pintor et al., J Affect Disord 2003: 68% relapse after partial vs
    15% after complete remission). Relapsing patients keep a residual PHQ-9 of 6-10 and
    relapse 60-200 days after their response.
Lagged antidepressant response
    Improvement starts after a lag: early improvers in the first three weeks, delayed improvers
    mostly in weeks 4-6 (Uher et al., "Early and delayed onset of response to antidepressants
    in individual trajectories of change during treatment of major depression", J Clin
    Psychiatry 2011, GENDEP, 811 patients, 9 latent classes). Here the effect starts after a
    lag of 7-42 days and approaches its full size exponentially (time constant 14-42 days);
    60% respond (50-85% of the excess over the residual level removed), the rest 0-25%.
Day-of-week effects
    Mood is better on Fridays and weekends, with little "Blue Monday" (Stone, Schneider &
    Harter, "Day-of-week mood patterns in the United States", J Posit Psychol 2012, N=340,000;
    the effect is smaller in older people). Each patient gets a personal amplitude of 0-1.5
    PHQ-9 points; sleep is longer and steps differ on weekends.
Bursty app non-use
    Self-report adherence decays over months and stops in runs, with returns after pauses
    (Probst/Pryss et al., TrackYourTinnitus, Sci Rep 2020; Prochnow et al., 12-month EMA burst
    study (TIME), 2025: completion falls over time and with stress and short sleep). Here a
    two-state engaged/lapsed Markov chain per patient: lapses start with probability 3-8% a
    day (rising over the year and with severity), end with 12-40% a day; a lapsed patient
    reports nothing and completes a PHQ-9 reminder half the time. Wearable days go missing in
    their own, rarer runs.
Compressive use of the 0-10 scale
    Respondents differ in how much of a rating scale they use (extreme vs mid-scale response
    styles; e.g. Plieninger & Meiser; Van Vaerenbergh & Thomas 2013 review). Here 30% of
    patients are compressive raters: their daily report moves 35-60% as far as their severity
    around a personal anchor, while their PHQ-9 moves fully; the rest use 85-110% of it with a
    personal offset.
Illness spells
    As in wearable studies of viral infection (Radin et al., Lancet Digit Health 2020; Mishra
    et al., Nat Biomed Eng 2020): 0-2 a year, 3-9 days, resting heart rate up 1.5-9 bpm with a
    rise and a decline rather than a flat step, HRV and steps down, sleep and respiratory rate
    up, and a little more reported severity (sickness behaviour).

Truth kept for scoring: ``mood`` is the noise-free report on the patient's own scale (what a
perfect forecaster of the reports would say), ``expected`` the same without day-to-day
fluctuation, ``oracle`` the forecast of ``mood`` by an observer who knows every hidden
parameter and the hidden state of the day before (the bench's ceiling), ``episodes`` the
deteriorations (onset = first day of the rise, end = last day the rise is at least half its
peak), ``spells`` the illness spells, ``item9_submissions``; ``references`` and
``reference_alarms`` hold the forecasts and deterioration alarms of :mod:`bench._informed`,
which know the patient's parameters (and, for ``course_known``, the noise-free course).
Deterministic per seed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
import uuid
from dataclasses import dataclass
from typing import Any

from bench._cohort import Episode, Spell, SyntheticPatient, first_day_at_least
from bench._informed import (
    KNOWLEDGE,
    ReportModel,
    course_known_forecasts,
    informed_alarms,
    informed_forecasts,
    knowledge_alarms,
)

START = dt.date(2025, 3, 3)  # a Monday
_NS = uuid.uuid5(uuid.NAMESPACE_URL, "https://novamind.health/bench-trajectories")
CLASSES = ("resilient", "improving", "chronic", "relapsing", "fluctuating")
SHARES = (0.35, 0.20, 0.15, 0.15, 0.15)
DRUGS = ("sertraline", "escitalopram", "fluoxetine", "venlafaxine", "duloxetine", "vortioxetine")
AGE_BANDS = ("AGE_18_24", "AGE_25_34", "AGE_35_44", "AGE_45_54", "AGE_55_64")
PHQ_PER_POINT = 2.7
"""PHQ-9 points per point of the 0-10 daily scale for a rater who uses the whole scale."""


@dataclass
class TrajectoryPatient(SyntheticPatient):
    """A :class:`SyntheticPatient` that also names its trajectory class and rating style."""

    trajectory: str = ""
    compressive: bool = False


@dataclass
class _Bump:
    """A rise of ``size`` PHQ-9 points: ramp over ``ramp`` days, plateau, then recovery."""

    onset: int
    ramp: int
    plateau: int
    recovery: int
    size: float

    def at(self, t: int) -> float:
        if t < self.onset:
            return 0.0
        u = t - self.onset
        if u < self.ramp:
            return self.size * (u + 1) / self.ramp
        u -= self.ramp
        if u < self.plateau:
            return self.size
        u -= self.plateau
        return self.size * max(0.0, 1.0 - u / self.recovery)

    def episode(self, med_day: int | None) -> Episode:
        half = self.onset + self.ramp + self.plateau + self.recovery // 2
        return Episode(self.onset, half, self.size / PHQ_PER_POINT, med_day)


@dataclass
class _Treatment:
    """Antidepressant started on ``start``: lagged, exponential, partial or full response."""

    start: int
    lag: int
    tau: float
    share: float

    def relief(self, t: int) -> float:
        u = t - self.start - self.lag
        return 0.0 if u < 0 else self.share * (1.0 - math.exp(-u / self.tau))


def _treatment(rng: random.Random, start: int) -> _Treatment:
    responder = rng.random() < 0.6
    return _Treatment(
        start,
        rng.randint(7, 20) if rng.random() < 0.45 else rng.randint(21, 42),
        rng.uniform(14, 42),
        rng.uniform(0.5, 0.85) if responder else rng.uniform(0.0, 0.25),
    )


def _bump(rng: random.Random, onset: int, size: tuple[float, float], ramp: tuple[int, int]) -> _Bump:
    return _Bump(onset, rng.randint(*ramp), rng.randint(14, 45), rng.randint(14, 40), rng.uniform(*size))


def _plan(
    rng: random.Random, cls: str, days: int
) -> tuple[Any, list[tuple[_Bump, _Treatment | None]], list[_Treatment]]:
    """The noise-free PHQ-9 course: ``level(t)``, its episodes (with their treatment, if any)
    and every treatment course in start order."""
    bumps: list[tuple[_Bump, _Treatment | None]] = []
    if cls == "resilient":
        base = rng.uniform(1.5, 5.5)
        if rng.random() < 0.25:
            b = _bump(rng, rng.randrange(60, max(days - 90, 61)), (7.0, 12.0), (5, 20))
            bumps.append((b, _treatment(rng, b.onset + rng.randint(10, 30)) if rng.random() < 0.5 else None))
        course = None
    elif cls in ("improving", "relapsing"):
        start = rng.uniform(14.0, 22.0)
        base = rng.uniform(3.0, 6.0) if cls == "improving" else rng.uniform(6.0, 10.0)
        first = _treatment(rng, rng.randint(0, 14))
        if cls == "relapsing":
            first.share = max(first.share, 0.6)
        course = (start, first)
        if cls == "relapsing":
            respond = first.start + first.lag + int(2 * first.tau)
            onset = min(respond + rng.randint(60, 200), days - 50)
            b = _bump(rng, onset, (7.0, 13.0), (7, 28))
            bumps.append((b, _treatment(rng, onset + rng.randint(10, 35))))
    elif cls == "chronic":
        base = rng.uniform(13.0, 20.0)
        course = (base, _Treatment(rng.randint(0, 60), rng.randint(14, 42), 30.0, rng.uniform(0.0, 0.15)))
    else:  # fluctuating
        base = rng.uniform(4.0, 8.0)
        course = None
        onset = rng.randint(30, 80)
        while onset < days - 40:
            b = _Bump(
                onset, rng.randint(3, 10), rng.randint(7, 21), rng.randint(7, 20), rng.uniform(6.0, 11.0)
            )
            bumps.append((b, None))
            onset += b.ramp + b.plateau + b.recovery + rng.randint(30, 90)

    def level(t: int) -> float:
        value = base
        if course is not None:
            high, tx = course
            value = base + (high - base) * (1.0 - tx.relief(t))
        for b, tx in bumps:
            value += b.at(t) * (1.0 if tx is None else 1.0 - tx.relief(t))
        return value

    courses = [] if course is None else [course[1]]
    courses += [tx for _, tx in bumps if tx is not None]
    return level, bumps, sorted(courses, key=lambda tx: tx.start)


def _items(rng: random.Random, total: int, n: int, item9: int) -> list[int]:
    """Spread ``total`` over ``n`` items of 0-3, item 9 fixed to ``item9`` (PHQ-9 only)."""
    items = [0] * n
    if n == 9:
        items[8] = item9
    rest = max(total - sum(items), 0)
    slots = [i for i in range(n) if not (n == 9 and i == 8)]
    weights = [rng.uniform(0.5, 1.5) for _ in slots]
    while rest > 0 and any(items[i] < 3 for i in slots):
        i = rng.choices(slots, weights)[0]
        if items[i] < 3:
            items[i] += 1
            rest -= 1
    return items


def _band(instrument: str, total: int) -> str:
    cuts = (
        ((15, "SEVERE"), (10, "MODERATE"), (5, "MILD"))
        if instrument == "GAD7"
        else ((20, "SEVERE"), (15, "MODERATELY_SEVERE"), (10, "MODERATE"), (5, "MILD"))
    )
    return next((name for lower, name in cuts if total >= lower), "MINIMAL")


def _ms(day: int, seconds: int) -> int:
    return ((START - dt.date(1970, 1, 1)).days + day) * 86_400_000 + seconds * 1000


def _envelope(pid: str, kind: str, day: int, seconds: int) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid5(_NS, f"{pid}:{kind}:{day}")),
        "patient_id": pid,
        "event_time": _ms(day, seconds),
        "received_time": _ms(day, seconds) + 90_000,
        "source": "bench-trajectories",
        "schema_version": 1,
    }


def _assessment(pid: str, instrument: str, day: int, items: list[int]) -> dict[str, Any]:
    total = sum(items)
    return {
        **_envelope(pid, instrument, day, 11 * 3600 + (60 if instrument == "GAD7" else 0)),
        "submission_id": str(uuid.uuid5(_NS, f"{pid}:{instrument}:{day}:submission")),
        "instrument": instrument,
        "item_responses": items,
        "total": total,
        "band": _band(instrument, total),
        "item9_positive": instrument == "PHQ9" and items[8] >= 1,
        "loinc_total": "44261-6" if instrument == "PHQ9" else "70274-6",
    }


def _day_of_week(t: int) -> float:
    """Relative mood effect of the weekday (START is a Monday): better Friday and weekend."""
    return {0: 0.2, 4: -0.5, 5: -1.0, 6: -0.9}.get(t % 7, 0.0)


def generate_patient(index: int, seed: int = 11, days: int = 365) -> TrajectoryPatient:
    """One patient's events and hidden truth (deterministic in ``index`` and ``seed``)."""
    rng = random.Random(f"trajectories:{seed}:{index}")
    pid = "p_" + hashlib.sha256(f"trajectories:{seed}:{index}".encode()).hexdigest()[:32]
    cls = rng.choices(CLASSES, SHARES)[0]
    p = TrajectoryPatient(pid, trajectory=cls, compressive=rng.random() < 0.3)
    level, bumps, courses = _plan(rng, cls, days)
    # scale use: report = anchor + gain * (severity_10 - anchor) + offset
    gain = rng.uniform(0.35, 0.6) if p.compressive else rng.uniform(0.85, 1.1)
    anchor, offset = rng.uniform(3.0, 5.0), rng.uniform(-0.8, 0.8)
    report_sd = rng.uniform(0.4, 0.9) if p.compressive else rng.uniform(0.7, 1.3)
    phi, noise = (
        (rng.uniform(0.3, 0.6), rng.uniform(2.0, 3.0))
        if cls == "fluctuating"
        else (
            rng.uniform(0.55, 0.85),
            rng.uniform(1.0, 2.0),
        )
    )
    dow = rng.uniform(0.0, 1.5)
    lapse_in, lapse_out = rng.uniform(0.03, 0.08), rng.uniform(0.12, 0.4)
    wear_in, wear_out = rng.uniform(0.005, 0.02), rng.uniform(0.2, 0.5)
    rhr0, hrv0, steps0, sleep0 = (
        rng.uniform(54, 78),
        rng.uniform(22, 65),
        rng.uniform(3500, 11500),
        rng.uniform(370, 480),
    )
    sleep_sign = -1.0 if rng.random() < 0.7 else 1.0  # insomnia (most) or hypersomnia
    phq_day = rng.randrange(14)
    spells_rng = random.Random(f"trajectories:{seed}:{index}:illness")
    for _ in range(spells_rng.choices((0, 1, 2), (0.35, 0.45, 0.2))[0]):
        for _attempt in range(20):
            start = spells_rng.randrange(35, days - 12)
            end = start + spells_rng.randint(2, 8)
            if all(end + 20 < s.start or start > s.end + 20 for s in p.spells):
                p.spells.append(Spell(start, end, spells_rng.uniform(1.5, 9.0)))
                break
    p.spells.sort(key=lambda s: s.start)

    p.events.append(
        (
            "demographics",
            {
                **_envelope(pid, "demographics", 0, 0),
                "age_band": rng.choice(AGE_BANDS),
                "sex": rng.choice(("FEMALE", "FEMALE", "MALE")),
            },
        )
    )
    if rng.random() < 0.5:
        pheno = [
            {"gene": gene, "phenotype": rng.choices(kinds, weights)[0], "diplotype": None}
            for gene, kinds, weights in (
                (
                    "CYP2D6",
                    ("POOR_METABOLIZER", "INTERMEDIATE_METABOLIZER", "NORMAL_METABOLIZER"),
                    (7, 30, 63),
                ),
                ("CYP2C19", ("POOR_METABOLIZER", "NORMAL_METABOLIZER", "RAPID_METABOLIZER"), (3, 60, 37)),
                (
                    "CYP2B6",
                    ("POOR_METABOLIZER", "INTERMEDIATE_METABOLIZER", "NORMAL_METABOLIZER"),
                    (6, 35, 59),
                ),
            )
        ]
        p.events.append(("genetic", {**_envelope(pid, "genetic", 0, 1), "phenotypes": pheno}))

    smooth_phq9 = [level(t) for t in range(days)]
    for b, tx in bumps:
        ep = b.episode(None if tx is None else tx.start)
        ep.phq9_10_day = first_day_at_least(smooth_phq9, ep, 10.0)
        p.episodes.append(ep)
    starts = [tx.start for tx in courses]
    drugs = rng.sample(DRUGS, k=3)

    ar, engaged, worn = 0.0, True, True
    course: list[float] = []
    calm: list[float] = []  # the course without episodes
    n_reports_by_day: list[int] = []
    for t in range(days):
        illness = any(s.start <= t <= s.end for s in p.spells)
        expected_phq = min(max(smooth_phq9[t] + dow * _day_of_week(t), 0.0), 27.0)
        foreseen = min(max(expected_phq + phi * ar + 1.0 * illness, 0.0), 27.0)  # before today's shock
        ar = phi * ar + rng.gauss(0.0, noise)
        phq = min(max(expected_phq + ar + 1.0 * illness, 0.0), 27.0)
        sev10 = phq / PHQ_PER_POINT

        def on_scale(x: float) -> float:
            return min(max(anchor + gain * (x - anchor) + offset, 0.0), 10.0)

        p.oracle.append(on_scale(foreseen / PHQ_PER_POINT))
        course.append(min(max(expected_phq + 1.0 * illness, 0.0), 27.0))
        episodes_now = sum(b.at(t) * (1.0 if tx is None else 1.0 - tx.relief(t)) for b, tx in bumps)
        calm.append(min(max(expected_phq - episodes_now, 0.0), 27.0))
        p.mood.append(on_scale(sev10))
        p.expected.append(on_scale(smooth_phq9[t] / PHQ_PER_POINT))

        if t in starts:
            k = starts.index(t)
            if k > 0:
                p.events.append(
                    (
                        "medication",
                        {
                            **_envelope(pid, f"stop{k}", t, 9 * 3600 - 60),
                            "action": "STOPPED",
                            "drug": drugs[k - 1],
                            "rxnorm": None,
                            "dose_mg": 50.0,
                        },
                    )
                )
            p.events.append(
                (
                    "medication",
                    {
                        **_envelope(pid, f"start{k}", t, 9 * 3600),
                        "action": "STARTED",
                        "drug": drugs[k % len(drugs)],
                        "rxnorm": None,
                        "dose_mg": 50.0,
                    },
                )
            )

        lapse = lapse_in * (1.0 + t / days) * (1.0 + max(phq - 10.0, 0.0) / 10.0)
        engaged = rng.random() >= lapse if engaged else rng.random() < lapse_out
        worn = rng.random() >= wear_in if worn else rng.random() < wear_out

        if t % 14 == phq_day and (engaged or rng.random() < 0.5):
            total = min(max(round(phq + rng.gauss(0.0, 1.5)), 0), 27)
            p9 = 0
            if rng.random() < 0.02 + 0.5 * max(phq - 14.0, 0.0) / 13.0:
                p9 = rng.choices((1, 2, 3), (6, 3, 1))[0]
            items = _items(rng, total, 9, p9)
            rec = _assessment(pid, "PHQ9", t, items)
            if p9:
                p.item9_submissions.append(rec["submission_id"])
            p.events.append(("assessment", rec))
            gad = min(max(round(0.65 * phq + rng.gauss(0.0, 2.0)), 0), 21)
            p.events.append(("assessment", _assessment(pid, "GAD7", t, _items(rng, gad, 7, 0))))

        severity = None
        if engaged and rng.random() < 0.93:
            n_reports = rng.choices((1, 2, 3), (6, 3, 1))[0]
            reports = [
                min(max(round(on_scale(sev10) + rng.gauss(0.0, report_sd)), 0), 10) for _ in range(n_reports)
            ]
            severity = sum(reports) / n_reports
        n_reports_by_day.append(0 if severity is None else n_reports)
        p.severity.append(severity)
        feat: dict[str, Any] = {
            **_envelope(pid, "features", t, 86_399),
            "date": START + dt.timedelta(days=t),
            "revision": 0,
            "missing": severity is None and not worn,
            "meets_quality_standards": rng.random() > 0.015,
            "symptom_severity_mean": severity,
        }
        if worn:
            dev = phq - smooth_phq9[0]
            weekend = t % 7 in (5, 6)
            rhr = rhr0 + 0.12 * dev + rng.gauss(0.0, 1.8)
            rise = sum(
                s.rhr_rise * min(1.0, (t - s.start + 1) / 2) * (1.0 if t < s.end else 0.6)
                for s in p.spells
                if s.start <= t <= s.end
            )
            bio = {
                "resting_heart_rate": rhr + rise,
                "heart_rate_mean": rhr + rise + 11.0 + rng.gauss(0.0, 2.5),
                "hrv_rmssd": max(hrv0 * (1.0 - 0.012 * rise) - 0.3 * dev + rng.gauss(0.0, 5.0), 4.0),
                "steps_total": max(
                    steps0 * (1.15 if weekend else 1.0) * (1.0 - 0.05 * rise)
                    - 120 * dev
                    + rng.gauss(0.0, 1800),
                    0.0,
                ),
                "sleep_total_minutes": max(
                    sleep0
                    + (35.0 if weekend else 0.0)
                    + sleep_sign * 4.0 * dev
                    + 4.0 * rise
                    + rng.gauss(0.0, 45.0),
                    90.0,
                ),
                "spo2_mean": min(96.8 + rng.gauss(0.0, 0.8) - 0.08 * rise, 100.0),
                "respiratory_rate_mean": 14.8 + 0.12 * rise + rng.gauss(0.0, 0.9),
            }
            feat.update(bio)
        p.events.append(("features", feat))
    model = ReportModel(gain, anchor, offset, report_sd, phi, noise, dow)
    p.references = {
        "informed": informed_forecasts(
            model, p.severity, n_reports_by_day, [_day_of_week(t) for t in range(days)]
        ),
        "course_known": course_known_forecasts(model, p.severity, n_reports_by_day, course),
    }
    p.reference_alarms = {
        "informed": informed_alarms(model, p.severity, n_reports_by_day, calm),
        **{name: knowledge_alarms(name, model, p.severity, n_reports_by_day) for name in KNOWLEDGE},
    }
    return p


def generate_cohort(n: int, seed: int = 11, days: int = 365) -> list[TrajectoryPatient]:
    """Generate ``n`` patients."""
    return [generate_patient(i, seed, days) for i in range(n)]
