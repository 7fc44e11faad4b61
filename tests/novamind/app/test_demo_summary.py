"""The demo's summary lines from plain records: counts, twins, quality, logs, the feed."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

import pytest

from novamind.app.demo.feed import FeedTotals
from novamind.app.demo.plot import latest_features
from novamind.app.demo.summary import (
    Results,
    counts,
    explore_commands,
    feed_lines,
    log_levels,
    pick_patient,
    quality_line,
    summary_lines,
    twin_lines,
)
from novamind.platform.settings import Settings

DAY = dt.date(2026, 3, 2)


def twin_factory(pid: str, **fields: Any) -> dict[str, Any]:
    twin = {"_id": pid, "risk_level": "LOW", "model_source": "PERSONAL", "twin_version": 10, "summary": {}}
    summary = {k: fields.pop(k) for k in ("days_learned", "forecast_mae", "persistence_mae") if k in fields}
    return twin | fields | {"summary": summary}


def feature_factory(pid: str, day: int, revision: int = 0, **fields: Any) -> dict[str, Any]:
    base = {"missing": False, "meets_quality_standards": True, "completeness": 1.0, "outlier_share": 0.0}
    return {"patient_id": pid, "date": DAY + dt.timedelta(days=day), "revision": revision, **base, **fields}


def test_counts_lists_the_most_common_first() -> None:
    assert counts(["LOW", "HIGH", "LOW", "MODERATE", "LOW", "HIGH"]) == "LOW 3, HIGH 2, MODERATE 1"
    assert counts([]) == "none"
    assert counts(["A"] * 1200) == "A 1,200"


def test_twin_lines_give_risk_learning_and_forecast_error() -> None:
    twins = [
        twin_factory("p1", risk_level="HIGH", days_learned=40, forecast_mae=1.0, persistence_mae=1.5),
        twin_factory("p2", days_learned=20, forecast_mae=2.0, persistence_mae=1.5),
        twin_factory("p3", model_source="POPULATION_PRIOR"),  # no forecast scored yet
    ]
    assert twin_lines(twins, observed_days=120) == [
        "3 by risk level: LOW 2, HIGH 1; model: PERSONAL 2, POPULATION_PRIOR 1",
        "learned from 60 of 120 patient-days with data (50%)",
        "next-day severity forecast MAE 1.50 vs 1.50 for persistence (mean over 2 twins)",
    ]
    assert twin_lines([], observed_days=0) == [
        "0 by risk level: none; model: none",
        "learned from 0 of 0 patient-days with data",
    ]


def test_quality_line_counts_days_with_data_and_revisions() -> None:
    features = [
        feature_factory("p1", 0, completeness=0.8, outlier_share=0.01),
        feature_factory("p1", 1, meets_quality_standards=False, completeness=0.4, outlier_share=0.03),
        feature_factory("p1", 2, missing=True, meets_quality_standards=False, completeness=0.0),
    ]
    assert quality_line(features, revisions=12) == (
        "3 patient-days (1 without data), 50% meet the quality standards, mean completeness 0.60, "
        "mean outlier share 0.020; 12 revisions from late data"
    )
    assert quality_line([], revisions=0) == "0 patient-days (0 without data); 0 revisions from late data"


def test_the_last_revision_of_each_day_counts() -> None:
    first = feature_factory("p1", 0, revision=0, completeness=0.5)
    revised = feature_factory("p1", 0, revision=2, completeness=0.9)
    other = feature_factory("p2", 0)
    assert latest_features([revised, first, other]) == [revised, other]


def test_the_drawn_twin_has_the_most_alerts_then_the_most_updates() -> None:
    twins = [twin_factory("p_b", twin_version=50), twin_factory("p_a", twin_version=80), twin_factory("p_c")]
    assert pick_patient(twins, []) == "p_a"
    assert pick_patient(twins, [{"patient_id": "p_c"}, {"patient_id": "p_c"}, {"patient_id": "p_b"}]) == "p_c"
    assert pick_patient([twin_factory("p_z"), twin_factory("p_y")], []) == "p_y"
    assert pick_patient([], [{"patient_id": "p_c"}]) is None


def test_log_levels_count_json_librdkafka_and_traceback_lines_and_keep_the_errors() -> None:
    error = json.dumps({"event": "audit_failed", "level": "error"})
    refused = "%3|1795705138.918|FAIL|rdkafka#producer-1| [thrd:127.0.0.1:9092/bootstrap]: Connection refused"
    lines = [
        json.dumps({"event": "ingest_batch", "level": "info"}),
        json.dumps({"event": "consume_error", "level": "warning"}),
        error,
        "%4|1795705270.355|GETPID|worker#producer-4| [thrd:main]: Coordinator load in progress: retrying",
        refused,
        "%6|1795705270.355|INFO|worker#consumer-1| joined",
        "Traceback (most recent call last):",
        '  File "/work/main/workers/app.py", line 66, in main',
        "cimpl.KafkaException: KafkaError{code=NOT_LEADER_FOR_PARTITION}",
        "{not json",
        "[1, 2]",
        "",
    ]
    levels, errors = log_levels(lines)
    assert levels == Counter({"info": 2, "warning": 2, "error": 3})
    assert errors == [error, refused, "Traceback (most recent call last):"]


def totals_factory(**intake_status: int) -> FeedTotals:
    totals = FeedTotals()
    totals.produced.update(fitbit=1000, openmhealth=900, fhir=25, intake=40, direct=77)
    totals.files.update(fitbit=120, openmhealth=30, fhir=21)
    totals.runs.update(fitbit=30, openmhealth=30, fhir=2)
    totals.rejected.update(fitbit=3)
    totals.intake_status.update({int(k.removeprefix("http")): v for k, v in intake_status.items()})
    return totals


def test_feed_lines_say_what_came_by_each_route() -> None:
    assert feed_lines(totals_factory(http201=40)) == [
        "fitbit      1,000 records from 120 Fitbit Web API files (30 imports with novamind connect fitbit)"
        ", 3 rejected",
        "openmhealth 900 records from 30 Open mHealth files (30 imports with novamind connect openmhealth)",
        "fhir        25 records from 21 FHIR R4 Bundle files (2 imports with novamind connect fhir)",
        "intake      40 reports accepted over HTTP",
        "direct      77 records published straight to the topics",
    ]
    refused = feed_lines(totals_factory(http201=40, http422=2, http401=1))[3]
    assert refused == "intake      40 reports accepted over HTTP, refused: HTTP 401 x1, HTTP 422 x2"


@pytest.fixture
def results() -> Results:
    return Results(
        twins=[twin_factory("p1", risk_level="CRITICAL", days_learned=1)],
        alerts=[{"patient_id": "p1", "alert_type": "ITEM9_SAFETY"}],
        features=[feature_factory("p1", 0), feature_factory("p1", 1, missing=True)],
        revisions=0,
        updates=[],
        letters=[{"error_class": "OutOfRange"}, {"error_class": "LateEvent"}, {"error_class": "OutOfRange"}],
    )


def test_summary_lines_label_the_first_line_of_every_aspect(results: Results) -> None:
    logs = {"worker-0": Counter(info=9, warning=2), "intake": Counter(info=4, error=1)}
    lines = summary_lines(results, totals_factory(http201=40), logs)
    labels = [line[:13].strip() for line in lines]
    assert labels == ["feed", *[""] * 4, "twins", "", "alerts", "data quality", "dead letters", "logs", ""]
    assert lines[6] == f"{'':<13}learned from 1 of 1 patient-days with data (100%)"
    assert lines[7] == f"{'alerts':<13}1: ITEM9_SAFETY 1"
    assert lines[9] == f"{'dead letters':<13}3: OutOfRange 2, LateEvent 1"
    assert lines[10:] == [
        f"{'logs':<13}worker-0: 0 errors, 2 warnings in 11 lines",
        f"{'':<13}intake: 1 errors, 0 warnings in 5 lines",
    ]


def test_explore_commands_point_at_this_run() -> None:
    base = Settings()
    settings = base.model_copy(
        update={
            "kafka": base.kafka.model_copy(update={"topic_prefix": "demo-1."}),
            "mongo": base.mongo.model_copy(update={"database": "novamind_demo_1"}),
        }
    )
    commands = explore_commands(settings, "p_" + "a" * 32)
    assert commands[0] == (
        "export NOVAMIND_KAFKA__TOPIC_PREFIX=demo-1. NOVAMIND_MONGO__DATABASE=novamind_demo_1"
    )
    assert f".venv/bin/novamind twin show p_{'a' * 32}" in commands
    assert ".venv/bin/novamind status --dead-letters" in commands
    assert ".venv/bin/novamind twin show PSEUDONYM" in explore_commands(settings, None)
