"""The twin's pure apply functions: determinism, purity, alerts, priors, coupling, size."""

from __future__ import annotations

import copy
import os
import pathlib
import subprocess
import sys
from typing import Any

from twin_factories import PID, features

from bench.bench_twin_fidelity import APPLY  # the bench cohort's event kinds and their apply functions
from workers.twin import policy, serialize
from workers.twin.state import (
    apply_assessment,
    apply_daily_features,
    apply_genetic_profile,
    apply_medication,
    apply_symptom_report,
    medication_response,
    new_twin,
    summary,
)

ROOT = pathlib.Path(__file__).resolve().parents[3]


def replay(events: list[tuple[str, dict[str, Any]]], *, roundtrip: bool = False):
    state = new_twin(PID)
    outputs = []
    for kind, rec in events:
        state, out = APPLY[kind](state, rec)
        outputs.append(out)
        if roundtrip:
            state = serialize.deserialize(serialize.serialize(state))
    return state, outputs


def test_two_replays_are_byte_identical(year_factory):
    events = year_factory(days=120)
    a, outs_a = replay(events)
    b, outs_b = replay(events)
    assert serialize.serialize(a) == serialize.serialize(b)
    assert [o.update for o in outs_a] == [o.update for o in outs_b]


def test_replay_with_reload_between_events_equals_one_pass(year_factory):
    events = year_factory(days=90)
    live, _ = replay(events, roundtrip=True)
    batch, _ = replay(events)
    assert serialize.serialize(live) == serialize.serialize(batch)


def test_replay_is_identical_across_hash_seeds():
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; "
        "from test_twin_state import digest_of_days; print(digest_of_days(60))"
    )
    digests = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code, str(ROOT), str(pathlib.Path(__file__).parent)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1 and "" not in digests


def digest_of_days(days: int) -> str:
    """Digest of a short replay (run in subprocesses with different hash seeds)."""
    state = new_twin(PID)
    for t in range(days):
        rec = features(t, 3 + (t % 5) * 0.5, sleep_total_minutes=400.0 + t)
        state, _ = apply_daily_features(state, rec)
    return serialize.state_digest(state)


def test_inputs_are_never_mutated(year_factory):
    events = year_factory(days=40)
    state = new_twin(PID)
    for kind, rec in events:
        before_state = serialize.serialize(state)
        before_rec = copy.deepcopy(rec)
        new_state, _ = APPLY[kind](state, rec)
        assert rec == before_rec
        assert serialize.serialize(state) == before_state
        assert new_state is not state
        state = new_state


def test_progressive_validation_scores_before_learning(features_factory):
    state = new_twin(PID)
    for t in range(20):
        state, _ = apply_daily_features(state, features_factory(t, 2.0))
    forecast = state.forecast_severity
    assert forecast is not None and abs(forecast - 2.0) < 0.3
    n_before, total_before = state.severity.published.n, state.severity.published.total
    state, _ = apply_daily_features(state, features_factory(20, 8.0))
    # the jump is scored against the forecast made *before* seeing it, then learned
    assert state.severity.published.n == n_before + 1
    assert abs(state.severity.published.total - total_before - (8.0 - forecast)) < 1e-9
    assert state.severity.persistence.n == n_before + 1
    assert state.forecast_severity is not None and state.forecast_severity > forecast


def test_every_item9_positive_alerts_and_redelivery_is_deduplicated(assessment_factory):
    state = new_twin(PID)
    raised = []
    for k in range(5):
        rec = assessment_factory(k * 14, [1] * 8 + [1 + k % 3])
        state, out = apply_assessment(state, rec)
        raised += [a for a in out.alerts if a["alert_type"] == "ITEM9_SAFETY"]
        assert out.update is not None and out.update["risk_level"] == "CRITICAL"
    assert len(raised) == 5
    assert all(a["severity"] == "CRITICAL" for a in raised)
    assert len({a["event_id"] for a in raised}) == 5
    state, out = apply_assessment(state, rec)
    assert out.alerts == () and out.reason == "DUPLICATE"


def test_item9_from_item_responses_even_without_flag(assessment_factory):
    rec = assessment_factory(0, [0] * 8 + [2], item9_positive=False)
    _, out = apply_assessment(new_twin(PID), rec)
    [alert] = out.alerts
    assert alert["alert_type"] == "ITEM9_SAFETY"
    assert alert["trigger_event_id"] == rec["event_id"]
    assert alert["evidence"]["item9_score"] == "2"
    assert all(isinstance(v, str) for v in alert["evidence"].values())


def test_severe_band_alert_is_raised_once_while_active(assessment_factory):
    state = new_twin(PID)
    counts = []
    for k, total_items in enumerate([[3] * 7 + [0, 0], [3] * 7 + [1, 0], [1] * 9]):
        state, out = apply_assessment(state, assessment_factory(k * 14, total_items))
        counts.append(sum(a["alert_type"] == "SEVERE_BAND" for a in out.alerts))
    assert counts == [1, 0, 0]
    assert "SEVERE_BAND" not in out.update["active_alerts"]  # cleared at the last one


def test_population_prior_switches_to_personal(features_factory):
    state = new_twin(PID)
    sources = []
    for t in range(policy.PRIOR_DAYS + 2):
        state, out = apply_daily_features(state, features_factory(t, 6.0))
        sources.append(out.update["model_source"])
    assert sources[: policy.PRIOR_DAYS - 1] == ["POPULATION_PRIOR"] * (policy.PRIOR_DAYS - 1)
    assert sources[-1] == "PERSONAL"
    assert sources.index("PERSONAL") == policy.PRIOR_DAYS - 1


def test_coupling_sign_when_short_sleep_drives_next_day_severity(features_factory):
    import random

    rng = random.Random(5)
    state = new_twin(PID)
    sleep_prev = 420.0
    for t in range(120):
        severity = min(max(4 + (420 - sleep_prev) / 30 + rng.gauss(0, 0.5), 0), 10)
        sleep = rng.gauss(420, 60)  # independent of today's severity
        state, _ = apply_daily_features(
            state, features_factory(t, severity, sleep_total_minutes=sleep, steps_total=rng.gauss(8000, 1000))
        )
        sleep_prev = sleep
    corr = state.coupling.correlations()
    assert corr["sleep_total_minutes"] is not None and corr["sleep_total_minutes"] < -0.7
    assert corr["steps_total"] is not None and abs(corr["steps_total"]) < 0.3


def test_late_revision_and_duplicates_are_ignored(features_factory):
    state = new_twin(PID)
    state, _ = apply_daily_features(state, features_factory(0))
    state, _ = apply_daily_features(state, features_factory(1))
    version = state.twin_version
    for rec, reason in [
        (features_factory(1), "DUPLICATE"),
        (features_factory(0, revision=1), "LATE_REVISION"),
    ]:
        state, out = apply_daily_features(state, rec)
        assert (out.decision, out.reason, out.update) == ("IGNORE", reason, None)
    assert state.twin_version == version
    assert state.ignored == {"DUPLICATE": 1, "LATE_REVISION": 1}


def test_gene_drug_alert_raised_once_and_cleared_when_stopped(genetic_factory, med_factory):
    state = new_twin(PID)
    state, out = apply_genetic_profile(state, genetic_factory(0, CYP2C19="POOR_METABOLIZER"))
    assert out.alerts == ()
    state, out = apply_medication(state, med_factory(3, "escitalopram"))
    [alert] = out.alerts
    assert alert["alert_type"] == "GENE_DRUG_INTERACTION"
    assert alert["evidence"]["action"] == "ALTERNATIVE_OR_REDUCED_DOSE"
    assert alert["evidence"]["guideline"] == "CPIC_SSRI_2023"
    state, out = apply_genetic_profile(state, genetic_factory(5, CYP2C19="POOR_METABOLIZER"))
    assert out.alerts == ()  # same active interaction is not re-raised
    state, out = apply_medication(state, med_factory(9, "escitalopram", "STOPPED"))
    assert "GENE_DRUG_INTERACTION" not in out.update["active_alerts"]


def test_medication_response_tracks_phq9_change(assessment_factory, med_factory):
    state = new_twin(PID)
    state, _ = apply_assessment(state, assessment_factory(0, [2] * 8 + [0]))
    state, _ = apply_medication(state, med_factory(1, "sertraline"))
    state, _ = apply_assessment(state, assessment_factory(43, [1] * 8 + [0]))
    resp = medication_response(state)["sertraline"]
    assert resp["phq9_change"] == 8 - 16
    assert resp["active"] == 1


def test_symptom_reports_fill_a_day_without_severity(features_factory):
    state = new_twin(PID)
    for k, sev in enumerate([6, 8]):
        report = {
            "event_id": f"s{k}",
            "event_time": features_factory(0)["event_time"] - 1000,
            "severity": sev,
        }
        state, out = apply_symptom_report(state, report)
        assert out.update is None
    state, _ = apply_daily_features(state, features_factory(0, None))
    assert state.severity.last == 7.0
    assert state.pending_symptoms == {}


def test_state_after_a_year_fits_the_budget(year_factory):
    state, outputs = replay(year_factory(days=365))
    size = serialize.state_size(state)
    assert size["serialized"] < serialize.BUDGET_BYTES
    assert size["pickle"] < serialize.BUDGET_BYTES
    assert sum(o.snapshot for o in outputs) >= 365 // policy.SNAPSHOT_EVERY
    info = summary(state)
    assert info["days_learned"] > 300 and info["forecast_mae"] is not None


def test_update_dict_has_contract_fields(features_factory):
    _, out = apply_daily_features(new_twin(PID), features_factory(0))
    assert set(out.update) == {
        "event_id",
        "patient_id",
        "event_time",
        "received_time",
        "source",
        "schema_version",
        "twin_version",
        "as_of_date",
        "risk_level",
        "model_source",
        "forecast_severity",
        "forecast_severity_lo",
        "forecast_severity_hi",
        "forecast_phq9",
        "forecast_mae",
        "anomaly_score",
        "deterioration",
        "phq9_band",
        "gad7_band",
        "active_alerts",
    }
    assert out.update["event_time"].tzinfo is not None
    assert out.update["schema_version"] == 2


def test_update_validates_into_the_contract_with_its_interval(year_factory):
    from schemas.models import TwinAlert, TwinUpdate

    state, last = new_twin(PID), None
    for kind, rec in year_factory(120):
        state, out = APPLY[kind](state, rec)
        for alert in out.alerts:
            TwinAlert.model_validate(alert)
        last = out.update or last
    model = TwinUpdate.model_validate(last)
    assert model.forecast_severity_lo is not None and model.forecast_severity_hi is not None
    assert model.forecast_severity_lo <= model.forecast_severity <= model.forecast_severity_hi
