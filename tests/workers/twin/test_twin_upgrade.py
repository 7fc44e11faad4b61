"""Twin states stored before issue #16 (serialized by the twin of fd81b2c) load and go on.

The fixture ``fixtures/v1_states.json`` was written by ``fixtures/make_v1_states.py`` run
against ``git archive fd81b2c workers schemas``; each state folded the first ``folded``
events of a ``twin_factories`` patient and the tests apply the rest with the current code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import pathlib
from typing import Any

import pytest
import twin_factories as tf

from schemas.models import TwinAlert, TwinUpdate
from workers.twin import serialize, upgrade
from workers.twin.deterioration import DeteriorationMonitor
from workers.twin.state import (
    apply_assessment,
    apply_daily_features,
    apply_genetic_profile,
    apply_medication,
)

FIXTURE = pathlib.Path(__file__).with_name("fixtures") / "v1_states.json"
STATES = {s["name"]: s for s in json.loads(FIXTURE.read_text())["states"]}
EVENTS = {"year_seed1": lambda: tf.year(days=200, seed=1), "worsening": tf.worsening}
APPLY = {
    "features": apply_daily_features,
    "assessment": apply_assessment,
    "medication": apply_medication,
    "genetic": apply_genetic_profile,
}


def _blob(name: str) -> bytes:
    blob = base64.b64decode(STATES[name]["state_b64"])
    assert hashlib.sha256(blob).hexdigest() == STATES[name]["sha256"]
    return blob


def _continue(name: str) -> tuple[bytes, list[Any]]:
    """Load the stored v1 state, apply the patient's remaining events; final bytes + outputs."""
    state = serialize.deserialize(_blob(name))
    outputs = []
    for kind, rec in EVENTS[name]()[STATES[name]["folded"] :]:
        state, out = APPLY[kind](state, rec)
        outputs.append(out)
    return serialize.serialize(state), outputs


@pytest.mark.parametrize("name", sorted(STATES))
def test_v1_state_loads_keeps_its_history_and_starts_new_parts_fresh(name):
    kept = STATES[name]["kept"]
    state = serialize.deserialize(_blob(name))
    assert state.patient_id == tf.PID
    assert (state.twin_version, state.days_seen, state.days_learned) == (
        kept["twin_version"],
        kept["days_seen"],
        kept["days_learned"],
    )
    assert state.model_source == kept["model_source"]
    assert state.severity.published.mae == kept["forecast_mae"]
    assert dict(sorted(state.severity.expert_err.items())) == kept["expert_err"]
    assert {k: v.n for k, v in sorted(state.anomaly.stats.items())} == kept["anomaly_days"]
    assert sorted(state.medications) == kept["medications"]
    assert dict(sorted(state.phenotypes.items())) == kept["phenotypes"]
    assert state.recent_ids == kept["recent_ids"]
    assert sorted(state.alerts) == STATES[name]["alerts"]
    assert state.phq9 is not None and state.phq9.total == kept["phq9_total"]
    # new parts: fresh
    assert state.severity.conformal.scores == [] and state.severity.pending_interval is None
    assert not state.shift.active and set(state.shift.cusum.values()) == {0.0}
    assert state.phq9_model.n == 0 and state.phq9_model.last_total == kept["phq9_last_total"]
    assert state.phq9_model.prior_weight == 10.0
    assert not hasattr(state.phq9_model, "sxx")
    assert isinstance(state.deterioration, DeteriorationMonitor)
    assert state.deterioration.active is STATES[name]["deterioration_active"]
    assert state.deterioration.phq9_last == kept["phq9_total"]


@pytest.mark.parametrize("name", sorted(STATES))
def test_v1_state_applies_new_inputs_and_replays_identically(name):
    first_bytes, first_out = _continue(name)
    second_bytes, second_out = _continue(name)
    assert first_bytes == second_bytes
    assert first_out == second_out
    updates = [o.update for o in first_out if o.update]
    assert len(updates) >= 40
    for update in updates:
        TwinUpdate.model_validate(update)
    for out in first_out:
        for alert in out.alerts:
            TwinAlert.model_validate(alert)
    # the interval comes back once the conformal window has filled
    assert updates[-1]["forecast_severity_lo"] is not None


@pytest.mark.parametrize("name", sorted(STATES))
def test_upgraded_state_serializes_like_a_current_one(name):
    state = serialize.deserialize(_blob(name))
    blob = serialize.serialize(state)
    assert blob != _blob(name)
    assert serialize.serialize(serialize.deserialize(blob)) == blob


def test_episode_raised_by_the_old_monitor_is_carried_not_raised_again():
    state = serialize.deserialize(_blob("worsening"))
    assert state.deterioration.rule == upgrade.LEGACY_RULE
    assert "SUSTAINED_DETERIORATION" in state.alerts
    day = STATES["worsening"]["folded"]
    rest = tf.worsening()[day:]
    state, out = APPLY[rest[0][0]](state, rest[0][1])
    assert "SUSTAINED_DETERIORATION" in state.alerts
    assert not [a for a in out.alerts if a["alert_type"] == "SUSTAINED_DETERIORATION"]
    # the old monitor's frozen baseline (3 before the ramp, plus what it absorbed before it
    # fired) anchors the new one, well below the episode's level of about 7
    assert 3.0 <= state.deterioration.baseline < 4.0
    assert state.deterioration.recent_rise() > 5


def test_quiet_v1_patient_raises_no_deterioration_on_the_next_days():
    _, outputs = _continue("year_seed1")
    raised = [a for o in outputs[:20] for a in o.alerts if a["alert_type"] == "SUSTAINED_DETERIORATION"]
    assert raised == []


def _state_tree_fingerprint() -> str:
    import dataclasses
    import importlib

    classes = {}
    for name in ("twin", "forecast", "monitors", "deterioration", "shifts", "conformal"):
        module = importlib.import_module(f"workers.twin.{name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and dataclasses.is_dataclass(value)
                and value.__module__ == module.__name__
            ):
                classes[f"{name}.{value.__qualname__}"] = [f.name for f in dataclasses.fields(value)]
    return hashlib.sha256(json.dumps(classes, sort_keys=True).encode()).hexdigest()[:16]


FIELDS_BY_LAYOUT = {2: "57196cdbeb3ea8f8", 3: "bd5b8f53a16440b8"}


def test_layout_is_bumped_when_the_state_tree_changes():
    from workers.twin.twin import LAYOUT

    assert _state_tree_fingerprint() == FIELDS_BY_LAYOUT.get(LAYOUT), (
        "the twin's dataclass fields changed: bump workers.twin.twin.LAYOUT, teach "
        "workers/twin/upgrade.py the previous layout and record the new fingerprint here"
    )


def test_current_states_skip_the_upgrade_walk(year_factory):
    from workers.twin.state import new_twin
    from workers.twin.twin import LAYOUT

    state = new_twin(tf.PID)
    for kind, rec in year_factory(40):
        state, _ = APPLY[kind](state, rec)
    assert state.layout == LAYOUT == 3
    blob = serialize.serialize(state)
    assert serialize.serialize(serialize.deserialize(blob)) == blob


V2 = {s["name"]: s for s in json.loads(FIXTURE.with_name("v2_states.json").read_text())["states"]}


def test_v2_state_gains_empty_grid_shares_and_keeps_the_rest():
    stored = V2["year_seed1"]
    blob = base64.b64decode(stored["state_b64"])
    assert hashlib.sha256(blob).hexdigest() == stored["sha256"]
    state = serialize.deserialize(blob)
    assert state.layout == 3
    assert state.severity.grid_share == {}
    assert state.severity.published.mae == stored["kept"]["forecast_mae"]
    assert dict(sorted(state.severity.expert_err.items())) == stored["kept"]["expert_err"]
    assert (state.twin_version, state.days_seen) == (
        stored["kept"]["twin_version"],
        stored["kept"]["days_seen"],
    )
    outputs = []
    for kind, rec in tf.year(days=200, seed=1)[stored["folded"] :]:
        state, out = APPLY[kind](state, rec)
        outputs.append(out)
    shares = state.severity.grid_share
    assert set(shares) == {1, 2, 3, 4} and 0.0 < sum(shares.values()) <= 1.0  # learned from the new days
    updates = [o.update for o in outputs if o.update]
    assert len(updates) >= 40
    for update in updates:
        TwinUpdate.model_validate(update)
