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
    assert re.fullmatch(r"novamind-twin/2:[0-9a-f]{12}", versions.MODEL_VERSION_ID)
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
