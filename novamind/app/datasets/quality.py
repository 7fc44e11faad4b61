"""The quality gate (pure).

Rule, applied to the last revision of every patient-day:

1. A day without data (``missing``) is a gap, not bad data: it is neither exported nor
   counted; the summary reports how many there were.
2. Every other day is *evaluated*. It *passes* when the workers marked it
   ``meets_quality_standards`` (outlier share, consistency and completeness within the
   thresholds of ``workers.quality.scoring``).
3. The export goes ahead only if ``passing / evaluated >= min_passing_share`` (default 1.0:
   every evaluated day must pass). Otherwise it is refused and the error names each failing
   patient with its failing days.
4. Failing days are never exported. Accepting a share below 1 is how an operator chooses to
   drop them; the manifest's quality summary says how many were dropped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from novamind.app.datasets.exceptions import BadExportParameters, EmptyDataset, QualityGateFailed
from novamind.app.datasets.rows import PatientDay

LISTED_PATIENTS = 20  # patients named in the refusal message (all are on the exception)


@dataclass(frozen=True)
class QualityReport:
    """Outcome of the quality assessment of a set of patient-days."""

    evaluated: int
    passing: int
    missing: int
    failures: dict[str, tuple[dt.date, ...]] = field(default_factory=dict)

    @property
    def failing(self) -> int:
        return self.evaluated - self.passing

    @property
    def passing_share(self) -> float:
        return self.passing / self.evaluated if self.evaluated else 0.0

    def summary(self, *, min_passing_share: float) -> dict[str, Any]:
        """Counts for the manifest (no pseudonyms, no dates)."""
        return {
            "rule": "days marked meets_quality_standards pass; missing days are gaps; "
            "failing days are never exported; refused below min_passing_share",
            "days_evaluated": self.evaluated,
            "days_passing": self.passing,
            "days_failing_dropped": self.failing,
            "days_missing": self.missing,
            "patients_with_failing_days": len(self.failures),
            "passing_share": round(self.passing_share, 6),
            "min_passing_share": min_passing_share,
        }


def passes(record: Mapping[str, Any]) -> bool:
    return not record["missing"] and bool(record["meets_quality_standards"])


def assess(days: Mapping[PatientDay, Mapping[str, Any]]) -> QualityReport:
    """Count evaluated, passing and missing days and collect the failing ones per patient."""
    failing: dict[str, list[dt.date]] = {}
    evaluated = passing = missing = 0
    for (patient, day), record in days.items():
        if record["missing"]:
            missing += 1
            continue
        evaluated += 1
        if passes(record):
            passing += 1
        else:
            failing.setdefault(patient, []).append(day)
    failures = {p: tuple(sorted(d)) for p, d in sorted(failing.items())}
    return QualityReport(evaluated=evaluated, passing=passing, missing=missing, failures=failures)


def check_share(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise BadExportParameters(f"the minimum passing share must be between 0 and 1, got {value}")
    return value


def gate(report: QualityReport, *, min_passing_share: float) -> None:
    """Raise :class:`QualityGateFailed` (naming patients and days) or :class:`EmptyDataset`."""
    check_share(min_passing_share)
    if report.evaluated == 0:
        raise EmptyDataset(f"no patient-day with data to export ({report.missing} days without data)")
    if report.passing_share < min_passing_share:
        raise QualityGateFailed(
            f"quality gate: {report.failing} of {report.evaluated} patient-days with data are below "
            f"the quality standards; passing share {report.passing_share:.1%} is below the required "
            f"{min_passing_share:.1%} (--min-passing-share). Failing: {describe(report.failures)}",
            failures=report.failures,
            passing_share=report.passing_share,
        )
    if report.passing == 0:
        raise EmptyDataset(
            f"none of the {report.evaluated} patient-days with data meets the quality standards"
        )


def describe(failures: Mapping[str, tuple[dt.date, ...]], *, limit: int = LISTED_PATIENTS) -> str:
    """``p_...: 2026-03-02..2026-03-04, 2026-03-09; p_...: ...`` for the first ``limit`` patients."""
    parts = [f"{patient}: {', '.join(day_ranges(days))}" for patient, days in list(failures.items())[:limit]]
    more = len(failures) - limit
    return "; ".join(parts) + (f"; and {more} more patients" if more > 0 else "")


def day_ranges(days: tuple[dt.date, ...]) -> list[str]:
    """Sorted days as runs of consecutive dates: ``['2026-03-02..2026-03-04', '2026-03-09']``."""
    runs: list[list[dt.date]] = []
    for day in sorted(days):
        if runs and (day - runs[-1][-1]).days == 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return [str(r[0]) if len(r) == 1 else f"{r[0]}..{r[-1]}" for r in runs]
