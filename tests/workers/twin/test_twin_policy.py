"""Update/snapshot policy, bands and risk levels."""

from __future__ import annotations

import pytest

from workers.twin import policy


@pytest.mark.parametrize(
    ("last_day", "day", "revision", "missing", "quality", "expected"),
    [
        (None, 10, 0, False, True, ("LEARN", "OK")),
        (9, 10, 0, False, True, ("LEARN", "OK")),
        (9, 10, 0, True, True, ("SCORE_ONLY", "MISSING")),
        (9, 10, 0, False, False, ("SCORE_ONLY", "LOW_QUALITY")),
        (10, 10, 0, False, True, ("IGNORE", "DUPLICATE")),
        (10, 10, 1, False, True, ("IGNORE", "LATE_REVISION")),
        (10, 8, 0, False, True, ("IGNORE", "OUT_OF_ORDER")),
        (8, 10, 2, False, True, ("LEARN", "OK")),  # first sight of a revised day: learn it
    ],
)
def test_should_update(last_day, day, revision, missing, quality, expected):
    got = policy.should_update(
        last_day=last_day, day=day, revision=revision, missing=missing, quality_ok=quality
    )
    assert got == expected


def test_should_snapshot_every_n_on_drift_and_on_source_change():
    every = policy.SNAPSHOT_EVERY
    assert not policy.should_snapshot(learned_since=every - 1, drift=False, source_changed=False)
    assert policy.should_snapshot(learned_since=every, drift=False, source_changed=False)
    assert policy.should_snapshot(learned_since=1, drift=True, source_changed=False)
    assert policy.should_snapshot(learned_since=1, drift=False, source_changed=True)


def test_model_source_switch():
    assert policy.model_source(policy.PRIOR_DAYS - 1) == "POPULATION_PRIOR"
    assert policy.model_source(policy.PRIOR_DAYS) == "PERSONAL"


@pytest.mark.parametrize(
    ("instrument", "total", "band"),
    [
        ("PHQ9", 0, "MINIMAL"),
        ("PHQ9", 4, "MINIMAL"),
        ("PHQ9", 5, "MILD"),
        ("PHQ9", 9, "MILD"),
        ("PHQ9", 10, "MODERATE"),
        ("PHQ9", 14, "MODERATE"),
        ("PHQ9", 15, "MODERATELY_SEVERE"),
        ("PHQ9", 19, "MODERATELY_SEVERE"),
        ("PHQ9", 20, "SEVERE"),
        ("PHQ9", 27, "SEVERE"),
        ("GAD7", 4, "MINIMAL"),
        ("GAD7", 5, "MILD"),
        ("GAD7", 10, "MODERATE"),
        ("GAD7", 14, "MODERATE"),
        ("GAD7", 15, "SEVERE"),
        ("GAD7", 21, "SEVERE"),
    ],
)
def test_bands(instrument, total, band):
    assert policy.band(instrument, total) == band


def test_risk_levels():
    base = {"item9": False, "phq9_band": None, "gad7_band": None, "deterioration": False, "anomaly": False}
    assert policy.risk_level(**base) == "LOW"
    assert policy.risk_level(**{**base, "anomaly": True}) == "MODERATE"
    assert policy.risk_level(**{**base, "phq9_band": "MODERATE"}) == "MODERATE"
    assert policy.risk_level(**{**base, "gad7_band": "SEVERE"}) == "HIGH"
    assert policy.risk_level(**{**base, "phq9_band": "MODERATELY_SEVERE"}) == "HIGH"
    assert policy.risk_level(**{**base, "phq9_band": "MINIMAL", "item9": True}) == "CRITICAL"


def test_population_prior_by_age_band():
    adult = policy.population_prior(None)
    older = policy.population_prior("AGE_65_74")
    assert older["hrv_rmssd"][0] < adult["hrv_rmssd"][0]
    assert older["resting_heart_rate"] == adult["resting_heart_rate"]
