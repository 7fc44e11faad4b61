"""Deterioration rules: PHQ-9 crossings, reliable change, CUSUM on a robust personal baseline."""

from __future__ import annotations

import random

from workers.twin.deterioration import DeteriorationMonitor
from workers.twin.state import CROSSED_15_KEY, apply_assessment, apply_daily_features, new_twin

PID = "p_" + "ef" * 16


def _items(total: int) -> list[int]:
    items = [0] * 9
    for i in range(total):
        items[i % 8] += 1
    return items


def _days(mon: DeteriorationMonitor, values: list[float]) -> list[bool]:
    return [mon.update(v)[1] for v in values]


def test_cusum_fires_on_a_sustained_rise_and_names_its_rule():
    rng = random.Random(4)
    mon = DeteriorationMonitor()
    flags = _days(mon, [3.0 + rng.gauss(0, 0.8) for _ in range(80)])
    assert not any(flags)
    flags = _days(mon, [6.0 + rng.gauss(0, 0.8) for _ in range(15)])
    assert any(flags)
    ev = mon.evidence()
    assert ev["rule"] == "SEVERITY_CUSUM"
    assert ev["cusum"] >= ev["cusum_threshold"]
    assert ev["severity_baseline_method"] == "iqm_56d"


def test_baseline_forgets_an_old_episode_and_catches_a_relapse_from_partial_recovery():
    rng = random.Random(5)
    mon = DeteriorationMonitor()
    # An earlier high period (as if before monitoring caught it), then partial recovery.
    _days(mon, [6.0 + rng.gauss(0, 0.6) for _ in range(40)])
    _days(mon, [3.5 + rng.gauss(0, 0.6) for _ in range(70)])
    assert not mon.active
    assert abs(mon.baseline - 3.5) < 0.5  # the window no longer holds the high period
    flags = _days(mon, [5.5 + rng.gauss(0, 0.6) for _ in range(14)])
    assert any(flags)


def test_a_compressive_rater_is_judged_on_their_own_spread():
    rng = random.Random(6)
    mon = DeteriorationMonitor()
    assert not any(_days(mon, [2.0 + rng.gauss(0, 0.25) for _ in range(60)]))
    assert mon.scale == 0.5  # floored: a tiny spread does not make noise look alarming
    assert any(_days(mon, [3.4 + rng.gauss(0, 0.25) for _ in range(14)]))


def test_noise_alone_does_not_alarm_for_a_year():
    rng = random.Random(7)
    mon = DeteriorationMonitor()
    latent, flags = 0.0, []
    for _ in range(365):
        latent = 0.8 * latent + rng.gauss(0, 0.45)
        flags.append(mon.update(round(3.0 + latent + rng.gauss(0, 0.7)))[1])
    assert not any(flags)


def _twin_with_stable_weeks(days: int = 42, severity: float = 2.0, phq9: int = 5):
    from twin_factories import features

    state = new_twin(PID)
    for t in range(days):
        state, _ = apply_daily_features(state, features(t, severity + (0.5 if t % 2 else -0.5)))
        if t % 14 == 3:
            state, _ = apply_assessment(state, _assessment(t, phq9))
    return state


def _assessment(day: int, total: int):
    from twin_factories import assessment

    return assessment(day, _items(total), sid=f"phq-{day}")


def test_phq9_reliable_rise_alerts_with_its_rule_and_numbers():
    from twin_factories import features

    state = _twin_with_stable_weeks()
    for t in range(42, 49):  # reports up by ~1.6 personal SDs: corroborates, CUSUM still quiet
        state, _ = apply_daily_features(state, features(t, 3.0))
    assert not state.deterioration.active
    state, out = apply_assessment(state, _assessment(49, 12))
    alerts = [a for a in out.alerts if a["alert_type"] == "SUSTAINED_DETERIORATION"]
    assert len(alerts) == 1
    ev = alerts[0]["evidence"]
    assert ev["rule"] == "PHQ9_RELIABLE_RISE"
    assert (ev["phq9_total"], ev["phq9_previous"], ev["phq9_baseline"]) == ("12", "5", "5.000")
    assert ev["phq9_reliable_rise"] == "1"


def test_a_phq9_rise_without_daily_corroboration_does_not_alert():
    state = _twin_with_stable_weeks()
    state, out = apply_assessment(state, _assessment(45, 11))
    assert not [a for a in out.alerts if a["alert_type"] == "SUSTAINED_DETERIORATION"]


def test_crossing_15_alerts_under_its_own_key_even_while_active():
    from twin_factories import features

    state = _twin_with_stable_weeks(phq9=8)
    for t in range(42, 49):
        state, _ = apply_daily_features(state, features(t, 4.5))
    state, out = apply_assessment(state, _assessment(49, 13))
    assert state.deterioration.active
    assert "SUSTAINED_DETERIORATION" in state.alerts
    state, out = apply_assessment(state, _assessment(56, 16))
    keys = [a["evidence"]["rule"] for a in out.alerts]
    assert keys == ["PHQ9_CROSSED_15"]
    assert CROSSED_15_KEY in state.alerts
    state, out = apply_assessment(state, _assessment(63, 17))
    assert out.alerts == ()  # still >= 15: not raised again
    state, _ = apply_assessment(state, _assessment(70, 12))
    assert CROSSED_15_KEY not in state.alerts


def test_item9_safety_is_independent_of_the_deterioration_rules():
    state = _twin_with_stable_weeks()
    items = _items(4)
    items[8] = 1
    from twin_factories import assessment

    state, out = apply_assessment(state, assessment(44, items, sid="phq-44"))
    assert [a["alert_type"] for a in out.alerts] == ["ITEM9_SAFETY"]
