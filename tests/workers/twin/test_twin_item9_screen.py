"""PHQ9_ITEM9 screens in the twin: the same ITEM9_SAFETY alert as a full PHQ-9, never a PHQ-9 total."""

from __future__ import annotations

import copy
import pickle
from typing import Any

from twin_factories import PID, assessment, features

from workers.pipeline.ingest import safety_alerts
from workers.twin import serialize
from workers.twin.state import apply_assessment, apply_daily_features, new_twin
from workers.twin.twin import TwinState


def screen(day: int, answer: int, sid: str | None = None) -> dict[str, Any]:
    """A PHQ9_ITEM9 AssessmentResult dict as the FHIR connector writes it."""
    return assessment(
        day,
        [answer],
        "PHQ9_ITEM9",
        sid,
        band="UNKNOWN",
        item9_positive=answer >= 1,
        loinc_total="44260-8",
    )


def phq9_part(state: TwinState) -> bytes:
    """Everything a PHQ-9 total feeds: the latest PHQ-9, its forecaster, the deterioration rules."""
    return pickle.dumps((state.phq9, state.phq9_model, state.deterioration, state.forecast_phq9))


def test_a_positive_screen_raises_item9_safety_like_a_full_phq9():
    state, out = apply_assessment(new_twin(PID), screen(0, 2))
    [alert] = out.alerts
    assert (alert["alert_type"], alert["severity"]) == ("ITEM9_SAFETY", "CRITICAL")
    assert alert["trigger_event_id"] == "e-PHQ9_ITEM9-0"
    assert alert["evidence"] == {"instrument": "PHQ9_ITEM9", "item9_score": "2"}
    assert out.update is not None and out.update["risk_level"] == "CRITICAL"
    assert out.update["active_alerts"] == ["ITEM9_SAFETY"] and out.update["phq9_band"] is None
    assert state.phq9 is None and state.phq9_model.model.n == 0


def test_the_item9_watch_publishes_exactly_the_alert_the_twin_records():
    rec = screen(0, 1)
    _, out = apply_assessment(new_twin(PID), rec)
    assert safety_alerts(rec) == list(out.alerts)
    assert safety_alerts(screen(0, 0)) == []


def test_a_screen_is_never_a_phq9_score():
    state = new_twin(PID)
    for day in range(21):
        state, _ = apply_daily_features(state, features(day, 4.0))
        if day % 7 == 0:
            state, _ = apply_assessment(state, assessment(day, [2] * 8 + [0]))  # PHQ-9 total 16
    before = copy.deepcopy(state)
    for day, answer in ((21, 3), (22, 0), (23, 1)):
        state, out = apply_assessment(state, screen(day, answer))
        assert out.update is not None
        assert out.update["phq9_band"] == "MODERATELY_SEVERE"
        assert out.update["forecast_phq9"] == before.forecast_phq9
        assert not [a for a in out.alerts if a["alert_type"] != "ITEM9_SAFETY"]  # no band, no deterioration
    assert phq9_part(state) == phq9_part(before)
    assert state.gad7 == before.gad7 and state.severity.published.n == before.severity.published.n


def test_the_latest_item9_answer_decides_whether_the_alert_stays_active():
    state, out = apply_assessment(new_twin(PID), assessment(0, [0] * 8 + [2]))  # PHQ-9 item 9 = 2
    assert out.update["risk_level"] == "CRITICAL"
    state, out = apply_assessment(state, screen(3, 0))  # asked again alone: "Not at all"
    assert out.alerts == () and "ITEM9_SAFETY" not in state.alerts
    assert out.update["risk_level"] == "LOW" and out.update["active_alerts"] == []
    state, out = apply_assessment(state, screen(5, 1))
    assert [a["alert_type"] for a in out.alerts] == ["ITEM9_SAFETY"]
    assert out.update["risk_level"] == "CRITICAL"
    state, out = apply_assessment(state, assessment(7, [0] * 9))  # a full PHQ-9 clears it as before
    assert "ITEM9_SAFETY" not in state.alerts and out.update["risk_level"] == "LOW"


def test_every_positive_screen_alerts_and_a_redelivery_does_not():
    state = new_twin(PID)
    raised = []
    for day in range(3):
        state, out = apply_assessment(state, screen(day, 3))
        raised += list(out.alerts)
    assert len({a["event_id"] for a in raised}) == 3
    again, out = apply_assessment(state, screen(2, 3))
    assert out.alerts == () and out.reason == "DUPLICATE"
    assert serialize.serialize(again) != serialize.serialize(state)  # only the ignored count moved
    assert again.ignored == {"DUPLICATE": 1}


def test_an_instrument_this_twin_does_not_know_is_ignored():
    _, out = apply_assessment(new_twin(PID), {**screen(0, 3), "instrument": "UNKNOWN"})
    assert (out.decision, out.reason, out.alerts) == ("IGNORE", "UNKNOWN_INSTRUMENT", ())
