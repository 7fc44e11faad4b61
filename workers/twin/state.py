"""Per-patient twin state and the pure functions that apply one event to it.

Every ``apply_*`` function takes a :class:`TwinState` and one record (mapping, dataclass or
pydantic model shaped like the contract), deep-copies the state, applies the event to the
copy and returns ``(new_state, TwinOutputs)``. Inputs are never mutated. Nothing reads the
clock or unseeded randomness and every container is filled in event order, so replaying
the same events gives byte-identical serialized state (see :mod:`workers.twin.serialize`).
"""

from __future__ import annotations

import copy
from typing import Any

from schemas.models import Instrument
from workers.twin import policy
from workers.twin.clinical import (
    apply_demographics,
    apply_genetic_profile,
    apply_medication,
    medication_response,
)
from workers.twin.events import (
    Context,
    context,
    exposure,
    finish,
    ignore,
    raise_alert,
    remember,
    seen,
    toggle,
)
from workers.twin.forecast import DEFAULT_PARAMS, ForecastParams
from workers.twin.inputs import as_mapping, day_ordinal, millis, millis_to_ordinal, number, symbol
from workers.twin.monitors import ANOMALY_FEATURES, COUPLING_FEATURES
from workers.twin.outputs import TwinOutputs, fmt, risk
from workers.twin.shifts import MIN_DAYS as SHIFT_MIN_DAYS
from workers.twin.shifts import SHIFT_FEATURES
from workers.twin.twin import ActiveAlert, Assessment, TwinState, new_twin

__all__ = [
    "TwinState",
    "apply_assessment",
    "apply_daily_features",
    "apply_demographics",
    "apply_genetic_profile",
    "apply_medication",
    "apply_symptom_report",
    "medication_response",
    "new_twin",
    "summary",
]

ANOMALY_THRESHOLD = 2.5
ANOMALY_CLEAR_DAYS = 3
SHIFT_KEY = "BIOMETRIC_ANOMALY:SUSTAINED_SHIFT"
"""A sustained biometric shift (:mod:`workers.twin.shifts`) alerts under its own key."""
ITEM9_SCREEN = str(Instrument.PHQ9_ITEM9)
"""PHQ-9 item 9 answered on its own: a safety signal, never a PHQ-9 total."""
CROSSED_15_KEY = "SUSTAINED_DETERIORATION:PHQ9_CROSSED_15"
"""A PHQ-9 crossing into >= 15 alerts under its own key during an active deterioration (an
escalation); one that raises the deterioration itself is a single alert."""


def apply_daily_features(
    state: TwinState, features: Any, *, params: ForecastParams = DEFAULT_PARAMS
) -> tuple[TwinState, TwinOutputs]:
    """Apply one ``PatientDailyFeatures`` record; ``params`` are the severity forecaster's
    parameters of the model version the twin runs under (:mod:`workers.twin.versions`).

    Keys read: ``event_id``, ``event_time``, ``received_time``, ``date``, ``revision``,
    ``missing``, ``meets_quality_standards``, ``symptom_severity_mean`` and the biometric
    aggregates in :data:`workers.twin.monitors.ANOMALY_FEATURES`.
    """
    f = as_mapping(features)
    day = day_ordinal(f["date"])
    decision, reason = policy.should_update(
        last_day=state.last_day,
        day=day,
        revision=int(f.get("revision") or 0),
        missing=bool(f.get("missing")),
        quality_ok=bool(f.get("meets_quality_standards", True)),
    )
    if decision == policy.IGNORE:
        return ignore(state, reason)
    s = copy.deepcopy(state)
    ctx = context(f, day)
    learn = decision == policy.LEARN
    bio = {k: v for k in ANOMALY_FEATURES if (v := number(f.get(k))) is not None}
    y = number(f.get("symptom_severity_mean"))
    pending = s.pending_symptoms.get(day)
    if y is None and pending:
        y = pending[0] / pending[1]
    s.pending_symptoms = {d: v for d, v in s.pending_symptoms.items() if d > day}
    s.days_seen += 1

    s.severity.score_and_learn(day, y, learn=learn, params=params)
    _daily_anomaly(s, ctx, bio, learn)
    s.coupling.update(day, bio if learn else {}, y if learn else None)
    fired, active = s.deterioration.update(y, 1 if s.last_day is None else day - s.last_day)
    toggle(s, ctx, "SUSTAINED_DETERIORATION", active, _deterioration_evidence(s))

    before = s.model_source
    if learn:
        s.days_learned += 1
        s.learned_since_snapshot += 1
    s.model_source = policy.model_source(s.days_learned)
    model_in = {k: bio[k] for k in COUPLING_FEATURES if k in bio}
    model_in["exposure"] = exposure(s, day)
    s.forecast_severity = s.severity.forecast(
        day,
        model_in,
        prior_mean=policy.POPULATION_SEVERITY_MEAN,
        personal=s.model_source == "PERSONAL",
        params=params,
    )
    s.last_day = day
    snapshot = learn and policy.should_snapshot(
        learned_since=s.learned_since_snapshot, drift=fired, source_changed=before != s.model_source
    )
    if snapshot:
        s.learned_since_snapshot = 0
        s.snapshots += 1
    return finish(s, ctx, snapshot=snapshot, decision=decision, reason=reason)


def _daily_anomaly(s: TwinState, ctx: Context, bio: dict[str, float], learn: bool) -> None:
    score, top, _ = s.anomaly.score(bio, policy.population_prior(s.age_band))
    s.anomaly_score = score
    anomalous = score is not None and score >= ANOMALY_THRESHOLD
    if learn:
        z = s.anomaly.zscores({k: v for k, v in bio.items() if k in SHIFT_FEATURES}, SHIFT_MIN_DAYS)
        s.shift.update(ctx.day, z)
    if learn and not anomalous and not s.shift.suspected():
        s.anomaly.learn(bio)
    if anomalous:
        s.anomaly_active, s.normal_streak = True, 0
    elif score is not None:
        s.normal_streak += 1
        if s.normal_streak >= ANOMALY_CLEAR_DAYS:
            s.anomaly_active = False
    evidence = {
        "anomaly_score": fmt(score),
        "top_feature": top or "null",
        "features_scored": fmt(len(bio)),
    }
    toggle(s, ctx, "BIOMETRIC_ANOMALY", s.anomaly_active, evidence)
    shift_evidence = {k: v if isinstance(v, str) else fmt(v) for k, v in s.shift.evidence().items()}
    toggle(s, ctx, "BIOMETRIC_ANOMALY", s.shift.active, shift_evidence, key=SHIFT_KEY)


def _deterioration_evidence(s: TwinState) -> dict[str, str]:
    """Which rule fired and why: every rule's numbers (see :mod:`workers.twin.deterioration`)."""
    return {k: v if isinstance(v, str) else fmt(v) for k, v in s.deterioration.evidence().items()}


def apply_assessment(state: TwinState, result: Any) -> tuple[TwinState, TwinOutputs]:
    """Apply one ``AssessmentResult`` (PHQ-9, GAD-7 or PHQ-9 item-9 screen); item 9 >= 1 alerts
    at once.

    Keys read: ``event_id``, ``event_time``, ``received_time``, ``submission_id``,
    ``instrument``, ``item_responses``, ``total``, ``band``, ``item9_positive``.
    Every PHQ-9 whose item 9 is >= 1 (by flag or by ``item_responses[8]``), and every
    ``PHQ9_ITEM9`` screen answered >= 1, raises its own ``ITEM9_SAFETY`` alert; only a
    redelivery of the same submission is deduplicated. A screen is no PHQ-9 total: it leaves
    the PHQ-9 score, its forecast and the deterioration rules alone (:func:`_item9_answer`).
    """
    r = as_mapping(result)
    instrument = symbol(r.get("instrument"))
    key = f"submission:{r.get('submission_id') or r.get('event_id')}"
    if instrument not in ("PHQ9", "GAD7", ITEM9_SCREEN):
        return ignore(state, "UNKNOWN_INSTRUMENT")
    if seen(state, key):
        return ignore(state, "DUPLICATE")
    s = copy.deepcopy(state)
    ctx = context(r)
    remember(s, key)
    items = [int(v) for v in (r.get("item_responses") or [])]
    total = int(r["total"]) if r.get("total") is not None else sum(items)
    if instrument == ITEM9_SCREEN:
        answer = items[0] if items else total
        positive = bool(r.get("item9_positive")) or answer >= 1
        _item9_answer(s, ctx, positive, {"instrument": instrument}, answer)
        return finish(s, ctx)
    band = symbol(r.get("band"))
    if band in (None, "UNKNOWN"):
        band = policy.band(instrument, total)
    item9_score = items[8] if instrument == "PHQ9" and len(items) >= 9 else 0
    item9 = instrument == "PHQ9" and (bool(r.get("item9_positive")) or item9_score >= 1)
    latest = Assessment(total, band, ctx.day, item9, str(r.get("submission_id") or ""))
    evidence = {"instrument": instrument, "total": fmt(total), "band": band}
    if instrument == "PHQ9":
        s.phq9_model.observe(total, s.severity.recent_level)
        s.phq9 = latest
        s.deterioration.observe_phq9(total)
        _item9_answer(s, ctx, item9, evidence, item9_score)
        _phq9_deterioration(s, ctx)
    else:
        s.gad7_model.observe(total, s.severity.recent_level)
        s.gad7 = latest
    toggle(s, ctx, "SEVERE_BAND", band == "SEVERE", evidence, key=f"SEVERE_BAND:{instrument}")
    return finish(s, ctx)


def _phq9_deterioration(s: TwinState, ctx: Context) -> None:
    """Deterioration alerts after a PHQ-9: the flag's rising edge, and a crossing into >= 15
    under its own key as an escalation of a deterioration already under alert. A crossing that
    itself raises the flag is one alert, not two: its escalation key is only recorded."""
    evidence = _deterioration_evidence(s)
    raised_by_15 = "SUSTAINED_DETERIORATION" not in s.alerts and s.deterioration.rule == "PHQ9_CROSSED_15"
    toggle(s, ctx, "SUSTAINED_DETERIORATION", s.deterioration.active, evidence)
    crossed = s.deterioration.crossed_15
    if crossed and raised_by_15 and s.deterioration.active:
        s.alerts[CROSSED_15_KEY] = ActiveAlert("SUSTAINED_DETERIORATION", ctx.day, ctx.event_id)
    else:
        escalation = {**evidence, "rule": "PHQ9_CROSSED_15"}
        toggle(s, ctx, "SUSTAINED_DETERIORATION", crossed, escalation, key=CROSSED_15_KEY)


def _item9_answer(s: TwinState, ctx: Context, positive: bool, evidence: dict[str, str], score: int) -> None:
    """The latest answer to PHQ-9 item 9, in a full PHQ-9 or a ``PHQ9_ITEM9`` screen, decides:
    >= 1 raises its own ``ITEM9_SAFETY`` alert (CRITICAL risk while it is active), 0 clears the
    active one. The evidence says which instrument and the item-9 answer (``item9_score``)."""
    if positive:
        raise_alert(s, ctx, "ITEM9_SAFETY", {**evidence, "item9_score": fmt(score)}, "ITEM9_SAFETY")
    else:
        s.alerts.pop("ITEM9_SAFETY", None)


def apply_symptom_report(state: TwinState, report: Any) -> tuple[TwinState, TwinOutputs]:
    """Buffer one ``SymptomReport`` for a day not yet covered by daily features.

    Keys read: ``event_id``, ``event_time``, ``severity``. The daily features normally carry
    the day's ``symptom_severity_mean``; the buffer is the fallback when they do not. At
    most three days are buffered. No ``TwinUpdate`` is produced.
    """
    r = as_mapping(report)
    key = f"symptom:{r.get('event_id')}"
    day = millis_to_ordinal(millis(r.get("event_time")))
    severity = number(r.get("severity"))
    if seen(state, key):
        return ignore(state, "DUPLICATE")
    if severity is None or (state.last_day is not None and day <= state.last_day):
        return ignore(state, "OUT_OF_ORDER" if severity is not None else "NO_VALUE")
    s = copy.deepcopy(state)
    remember(s, key)
    total, count = s.pending_symptoms.get(day, [0.0, 0.0])
    s.pending_symptoms[day] = [total + severity, count + 1]
    s.pending_symptoms = {d: s.pending_symptoms[d] for d in sorted(s.pending_symptoms)[-3:]}
    return s, TwinOutputs(decision="BUFFER")


def summary(state: TwinState) -> dict[str, Any]:
    """Twin features for the ``twins`` document: errors, coupling, medication response."""
    sev = state.severity
    return {
        "patient_id": state.patient_id,
        "twin_version": state.twin_version,
        "model_source": state.model_source,
        "days_learned": state.days_learned,
        "risk_level": risk(state),
        "forecast_mae": sev.published.mae,
        "forecast_severity_interval_80": sev.pending_interval,
        "forecast_interval_coverage": sev.conformal.coverage,
        "persistence_mae": sev.persistence.mae,
        "phq9_forecast_mae": state.phq9_model.model.mae,
        "phq9_persistence_mae": state.phq9_model.persistence.mae,
        "coupling_lag1": state.coupling.correlations(),
        "medication_response": medication_response(state),
        "phenotypes": dict(sorted(state.phenotypes.items())),
        "ignored": dict(sorted(state.ignored.items())),
        "snapshots": state.snapshots,
    }
