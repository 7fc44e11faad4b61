"""Deterioration rules: PHQ-9 crossings, PHQ-9 rises weighed with the daily reports, CUSUM on a
robust personal baseline; each alert names its rule and why."""

from __future__ import annotations

import random

import pytest

from workers.twin.deterioration import CROSSING_CONFIRM, DeteriorationMonitor
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


def test_noise_alone_alarms_less_than_the_false_alarm_budget():
    # persistent day-to-day mood (AR 0.8) plus reporting noise, rounded to the 0-10 grid: 40
    # patient-years, at most 0.3 alarms per patient-year (issue #16's budget)
    alarms = 0
    for seed in range(40):
        rng = random.Random(seed)
        mon = DeteriorationMonitor()
        latent = 0.0
        for _ in range(365):
            latent = 0.8 * latent + rng.gauss(0, 0.45)
            alarms += mon.update(round(3.0 + latent + rng.gauss(0, 0.7)))[0]
    assert alarms <= 0.3 * 40


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


def test_phq9_rise_alerts_with_its_rule_numbers_and_reason():
    from twin_factories import features

    state = _twin_with_stable_weeks()
    for t in range(42, 49):  # reports up by 1.5 personal SDs: corroborates, CUSUM still quiet
        state, _ = apply_daily_features(state, features(t, 3.0))
    assert not state.deterioration.active
    state, out = apply_assessment(state, _assessment(49, 12))
    alerts = [a for a in out.alerts if a["alert_type"] == "SUSTAINED_DETERIORATION"]
    assert len(alerts) == 1
    ev = alerts[0]["evidence"]
    assert ev["rule"] == "PHQ9_RISE"
    assert (ev["phq9_total"], ev["phq9_previous"], ev["phq9_baseline"]) == ("12", "5", "5.000")
    assert ev["phq9_rise"] == "1"
    # 7 points / 4.6 + 1.2 x 1.5 SDs
    assert float(ev["phq9_rise_evidence"]) >= float(ev["phq9_rise_threshold"])
    assert ev["reason"].startswith("PHQ9_RISE: PHQ-9 12 after 5, baseline 5.0")


def test_a_phq9_rise_without_daily_corroboration_does_not_alert():
    state = _twin_with_stable_weeks()
    state, out = apply_assessment(state, _assessment(45, 11))
    assert not [a for a in out.alerts if a["alert_type"] == "SUSTAINED_DETERIORATION"]


def _monitor_with_baseline(phq9: int, days: int = 42, spread: float = 0.4) -> DeteriorationMonitor:
    """A compressive rater: daily reports alternate 2 +- ``spread``; PHQ-9 ``phq9`` fortnightly."""
    mon = DeteriorationMonitor()
    for t in range(days):
        mon.update(2.0 + (spread if t % 2 else -spread))
        if t % 14 == 3:
            mon.observe_phq9(phq9)
    return mon


def test_a_large_phq9_rise_needs_little_daily_corroboration():
    mon = _monitor_with_baseline(2)
    _days(mon, [2.3] * 7)  # half a personal SD: a compressive rater's daily reports barely move
    assert not mon.active
    assert mon.observe_phq9(14)  # 12 points over baseline
    assert mon.rule == "PHQ9_RISE"


def test_daily_reports_confirm_a_phq9_rise_between_administrations():
    mon = _monitor_with_baseline(5)
    assert not mon.observe_phq9(13)  # 8 points: not enough with flat daily reports
    flags = [mon.update(3.0)[0] for _ in range(7)]  # then the daily reports rise; CUSUM quiet
    assert flags == [False] * 6 + [True]
    assert mon.rule == "DAILY_AFTER_PHQ9_RISE"
    assert mon.cusum < 10
    assert "daily reports now confirm the last PHQ-9 rise" in mon.evidence()["reason"]


def test_a_phq9_rise_below_10_or_under_4_points_never_counts():
    mon = _monitor_with_baseline(2)
    _days(mon, [2.5] * 7)
    assert not mon.observe_phq9(9)  # 7 points up but below the clinical range
    assert mon.rise_evidence() is None
    mon = _monitor_with_baseline(8)
    _days(mon, [2.5] * 7)
    assert not mon.observe_phq9(11)  # in range but only 3 points up
    assert mon.rise_evidence() is None


def test_a_crossing_into_10_alerts_once_the_daily_reports_confirm_it():
    # PHQ-9 7 -> 10: three points over baseline, too few for PHQ9_RISE; the crossing into the
    # moderate band counts when the 7-day mean is CROSSING_CONFIRM personal SDs up
    mon = _monitor_with_baseline(7)
    _days(mon, [2.9] * 7)
    assert 1.4 < mon.recent_rise() < CROSSING_CONFIRM
    assert not mon.observe_phq9(10)
    mon = _monitor_with_baseline(7)
    _days(mon, [3.0] * 7)
    assert mon.recent_rise() >= CROSSING_CONFIRM
    assert mon.observe_phq9(10)
    assert mon.rule == "PHQ9_CROSSED_10" and mon.rise_evidence() is None
    assert "into the moderate band" in mon.evidence()["reason"]


def test_a_chronic_patient_hovering_around_15_does_not_alarm_at_each_pass():
    mon = _monitor_with_baseline(14, spread=0.8)
    for total in (13, 16, 14, 15, 13, 16):
        mon.update(2.4)
        mon.observe_phq9(total)
        assert not mon.crossed_15
    assert not mon.active


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


def test_a_crossing_into_15_that_raises_the_flag_is_one_alert_not_two():
    from twin_factories import features

    state = _twin_with_stable_weeks(phq9=8)
    for t in range(42, 48):  # reports up a point: corroborates, CUSUM still quiet
        state, _ = apply_daily_features(state, features(t, 3.0))
    assert not state.deterioration.active
    state, out = apply_assessment(state, _assessment(48, 16))
    alerts = [a for a in out.alerts if a["alert_type"] == "SUSTAINED_DETERIORATION"]
    assert [a["evidence"]["rule"] for a in alerts] == ["PHQ9_CROSSED_15"]
    assert CROSSED_15_KEY in state.alerts  # recorded: no second alert while it holds
    state, out = apply_assessment(state, _assessment(62, 17))
    assert out.alerts == ()
    state, _ = apply_assessment(state, _assessment(76, 12))
    assert CROSSED_15_KEY not in state.alerts


def test_evidence_carries_every_rules_numbers():
    mon = _monitor_with_baseline(5)
    ev = mon.evidence()
    assert ev["rule"] is None and ev["reason"] == "no rule holds"
    for key in (
        "severity_mean_7d",
        "severity_baseline",
        "severity_scale",
        "severity_rise_sd",
        "cusum",
        "cusum_threshold",
        "phq9_total",
        "phq9_baseline",
        "phq9_rise_evidence",
        "phq9_rise_threshold",
        "phq9_rise",
        "phq9_crossed_10",
        "phq9_crossed_15",
    ):
        assert key in ev


def test_item9_safety_is_independent_of_the_deterioration_rules():
    state = _twin_with_stable_weeks()
    items = _items(4)
    items[8] = 1
    from twin_factories import assessment

    state, out = apply_assessment(state, assessment(44, items, sid="phq-44"))
    assert [a["alert_type"] for a in out.alerts] == ["ITEM9_SAFETY"]


def test_the_7_day_mean_holds_only_the_reports_of_the_last_seven_days():
    mon = _monitor_with_baseline(5)
    _days(mon, [1.0] * 3)
    mon.update(None)  # a day without a report: the week is the three days before these four
    assert mon.recent_mean() == pytest.approx((2.4 + 1.6 + 2.4 + 3 * 1.0) / 6)
    mon.update(4.0, elapsed=7)  # six days without daily features: only today's report is recent
    assert mon.recent_mean() == 4.0
    mon.update(None, elapsed=8)
    assert mon.recent_mean() is None and mon.recent_rise() is None


def test_a_phq9_rise_after_a_week_without_reports_is_weighed_on_its_own():
    def rise_after(gap: int) -> bool:
        mon = _monitor_with_baseline(5)
        _days(mon, [1.6] * 7)  # a good week, a personal SD below the baseline
        mon.update(None, elapsed=gap)
        return mon.observe_phq9(19)  # 14 points up: enough on its own, not against the good week

    assert not rise_after(1)
    assert rise_after(8)


def test_a_week_without_reports_does_not_clear_a_deterioration():
    mon = _monitor_with_baseline(5)
    _days(mon, [4.0] * 7)
    assert mon.active and mon.rule == "SEVERITY_CUSUM"
    for _ in range(10):
        mon.update(None)
    assert mon.active  # silence is not recovery
    _days(mon, [2.0] * 7)
    assert not mon.active


def test_the_twin_tells_the_monitor_of_days_without_daily_features():
    from twin_factories import features

    state = _twin_with_stable_weeks(phq9=8)
    assert state.deterioration.recent_mean() is not None
    state, _ = apply_daily_features(state, features(50, None))  # eight days after the last one
    assert state.deterioration.recent == [None] * 7
    assert state.deterioration.recent_mean() is None
