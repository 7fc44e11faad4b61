"""The quality gate refuses below the minimum share and names failing patients and days."""

from __future__ import annotations

import datetime as dt

import pytest

from novamind.app.datasets.exceptions import BadExportParameters, EmptyDataset, QualityGateFailed
from novamind.app.datasets.quality import assess, day_ranges, describe, gate
from novamind.app.datasets.rows import latest_revisions
from tests.novamind.app.datasets.factories import START, cohort, feature_record, pseudonym


def test_refusal_names_each_failing_patient_and_day() -> None:
    records = cohort(3, 10, failing=[(0, 0), (0, 1), (0, 2), (0, 6), (2, 9)])
    report = assess(latest_revisions(records))
    with pytest.raises(QualityGateFailed) as refused:
        gate(report, min_passing_share=1.0)
    p0, p2 = pseudonym(0), pseudonym(2)
    assert refused.value.failures == {
        p0: (START, START + dt.timedelta(days=1), START + dt.timedelta(days=2), START + dt.timedelta(days=6)),
        p2: (START + dt.timedelta(days=9),),
    }
    message = str(refused.value)
    assert "5 of 30 patient-days" in message
    assert "passing share 83.3% is below the required 100.0%" in message
    assert f"{p0}: 2026-01-05..2026-01-07, 2026-01-11" in message
    assert f"{p2}: 2026-01-14" in message
    assert pseudonym(1) not in message


def test_a_lower_minimum_share_accepts_and_the_failing_days_are_counted() -> None:
    report = assess(latest_revisions(cohort(2, 10, failing=[(1, 3)])))
    gate(report, min_passing_share=0.9)
    assert (report.evaluated, report.passing, report.failing) == (20, 19, 1)
    summary = report.summary(min_passing_share=0.9)
    assert summary["days_failing_dropped"] == 1 and summary["patients_with_failing_days"] == 1
    assert pseudonym(1) not in str(summary)
    with pytest.raises(QualityGateFailed):
        gate(report, min_passing_share=0.96)


def test_missing_days_are_gaps_not_failures() -> None:
    records = [*cohort(1, 3), feature_record(pseudonym(0), START + dt.timedelta(days=3), missing=True)]
    report = assess(latest_revisions(records))
    assert (report.evaluated, report.passing, report.missing) == (3, 3, 1)
    gate(report, min_passing_share=1.0)


def test_the_last_revision_decides() -> None:
    p = pseudonym(0)
    records = [
        feature_record(p, START, revision=0, passed=True),
        feature_record(p, START, revision=1, passed=False),
    ]
    with pytest.raises(QualityGateFailed):
        gate(assess(latest_revisions(records)), min_passing_share=1.0)
    records.append(feature_record(p, START, revision=2, passed=True))
    gate(assess(latest_revisions(records)), min_passing_share=1.0)


def test_nothing_to_export_is_its_own_error() -> None:
    with pytest.raises(EmptyDataset, match="no patient-day with data"):
        gate(
            assess(latest_revisions([feature_record(pseudonym(0), START, missing=True)])),
            min_passing_share=0.0,
        )
    with pytest.raises(EmptyDataset, match="none of the 2 patient-days"):
        gate(assess(latest_revisions(cohort(1, 2, failing=[(0, 0), (0, 1)]))), min_passing_share=0.0)
    with pytest.raises(BadExportParameters):
        gate(assess(latest_revisions(cohort(1, 2))), min_passing_share=1.5)


def test_descriptions_are_compact_and_bounded() -> None:
    days = tuple(START + dt.timedelta(days=n) for n in (0, 1, 2, 5, 7, 8))
    assert day_ranges(days) == ["2026-01-05..2026-01-07", "2026-01-10", "2026-01-12..2026-01-13"]
    many = {pseudonym(n): (START,) for n in range(25)}
    text = describe(many, limit=20)
    assert text.endswith("; and 5 more patients") and text.count("2026-01-05") == 20
