"""Model version id and progressive-validation metrics recorded with every stored twin."""

from __future__ import annotations

import datetime as dt
import os
import pathlib
import re
import subprocess
import sys

from twin_factories import PID

from workers.pipeline.twin import TwinEntry
from workers.twin import deterioration, serialize, store, versions
from workers.twin.state import (
    apply_assessment,
    apply_daily_features,
    apply_genetic_profile,
    apply_medication,
    new_twin,
)

APPLY = {
    "features": apply_daily_features,
    "assessment": apply_assessment,
    "medication": apply_medication,
    "genetic": apply_genetic_profile,
}
ROOT = pathlib.Path(__file__).resolve().parents[3]
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _year(year_factory):
    state = new_twin(PID)
    for kind, rec in year_factory(120):
        state, _ = APPLY[kind](state, rec)
    return state


def test_id_names_family_layout_and_a_parameter_hash():
    assert re.fullmatch(r"novamind-twin/3:[0-9a-f]{12}", versions.MODEL_VERSION_ID)
    params = versions.parameters()
    assert params["deterioration.CUSUM_H"] == deterioration.CUSUM_H
    assert params["forecast.ScoreForecaster.prior_weight"] == 10.0


def test_id_is_the_same_in_another_process_with_another_hash_seed():
    env = {**os.environ, "PYTHONHASHSEED": "123", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", "from workers.twin.versions import MODEL_VERSION_ID as v; print(v)"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=ROOT,
    )
    assert out.stdout.strip() == versions.MODEL_VERSION_ID


def test_changing_a_parameter_changes_the_id(monkeypatch):
    monkeypatch.setattr(deterioration, "CUSUM_H", deterioration.CUSUM_H + 0.5)
    assert versions._compute() != versions.MODEL_VERSION_ID


def test_metrics_are_the_twins_progressive_validation_errors(year_factory):
    state = _year(year_factory)
    m = versions.metrics(state)
    assert m["forecast_mae"] == state.severity.published.mae
    assert m["persistence_mae"] == state.severity.persistence.mae
    assert m["forecasts_scored"] > 50
    assert 0.0 < m["interval_coverage"] <= 1.0
    assert m["phq9_forecasts_scored"] >= 1 and m["phq9_forecast_mae"] is not None


def test_stored_twin_and_snapshot_record_the_model_version_id_and_metrics(year_factory):
    state = _year(year_factory)
    blob = serialize.serialize(state)
    entry = TwinEntry(state, offset=41)
    twin_doc = store.twin_document(entry, blob, now=NOW)
    model_doc = store.model_document(entry, blob, version=state.snapshots, now=NOW)
    assert twin_doc["model_version_id"] == model_doc["model_version_id"] == versions.MODEL_VERSION_ID
    assert model_doc["metrics"] == versions.metrics(state)
    assert model_doc["version"] == state.snapshots


def test_the_standard_version_is_this_build_and_a_version_is_its_parameters():
    assert versions.STANDARD.id == versions.MODEL_VERSION_ID
    a = versions.ModelVersion("a", overrides=(("forecast.POWER", 8.0), ("forecast.ALPHA_ERR", 0.04)))
    b = versions.ModelVersion("b", overrides=(("forecast.ALPHA_ERR", 0.04), ("forecast.POWER", 8)))
    assert a.id == b.id != versions.MODEL_VERSION_ID  # order and 8 vs 8.0 do not matter
    assert a.forecast.power == 8 and a.forecast.alpha_err == 0.04
    assert a.forecast.alpha_fast == versions.STANDARD.forecast.alpha_fast
    assert a.id == versions.version_id(
        {**versions.parameters(), "forecast.POWER": 8, "forecast.ALPHA_ERR": 0.04}
    )


def test_a_version_may_change_only_the_tunable_parameters():
    import pytest

    from workers.twin.exceptions import UnknownModelVersion

    with pytest.raises(UnknownModelVersion, match="deterioration.CUSUM_H"):
        versions.ModelVersion("x", overrides=(("deterioration.CUSUM_H", 4.0),))
    with pytest.raises(UnknownModelVersion, match="must be a number"):
        versions.ModelVersion("x", overrides=(("forecast.POWER", -1),))
    assert set(versions.TUNABLE) <= set(versions.parameters())


def test_the_registry_finds_versions_by_name_or_id_and_takes_deployment_ones():
    import pytest

    from workers.twin.exceptions import UnknownModelVersion

    reg = versions.registry({"slow-errors": {"forecast.ALPHA_ERR": 0.01}})
    slow = reg.get("slow-errors")
    assert reg.get(slow.id) is slow and reg.get(versions.MODEL_VERSION_ID).name == "standard"
    assert [v.name for v in reg.versions] == ["standard", "fast-weights", "slow-errors"]
    assert reg.find("nope") is None
    with pytest.raises(UnknownModelVersion, match="known: standard"):
        reg.get("nope")
    with pytest.raises(UnknownModelVersion, match="defined twice"):
        versions.registry({"standard": {"forecast.POWER": 1}})


def test_the_plan_takes_a_promoted_version_this_build_knows():
    reg = versions.registry({"slow-errors": {"forecast.ALPHA_ERR": 0.01}})
    slow = reg.get("slow-errors")
    plan = versions.plan_of(reg, live="standard", shadow="slow-errors")
    assert (plan.live, plan.shadow) == (versions.STANDARD, slow)
    promoted = versions.plan_of(reg, live="standard", shadow="slow-errors", promoted=slow.id)
    assert (promoted.live, promoted.shadow) == (slow, None)  # the shadow is live now
    unknown = versions.plan_of(reg, live="standard", promoted="novamind-twin/9:000000000000")
    assert unknown.live == versions.STANDARD
