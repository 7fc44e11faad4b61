"""Time-based train/validation/test split with an embargo gap (pure).

Why by calendar time, for all patients at once: a model is trained on the past and used on the
future, so it must be evaluated on days strictly after every day it learned from, whichever
patient they belong to. A random or per-patient split would let a model learn from one
patient's spring and be tested on another's winter of the same cohort: shared events (season,
a device firmware, a pipeline change) would leak across the boundary. So the boundaries are
two real dates, computed before any date shift:

* train: ``day < validation_from``
* validation: ``validation_from + gap_days <= day < test_from``
* test: ``test_from + gap_days <= day``

Days inside a gap are dropped (embargo). With the default gap of 7 days (the length of the
7-day rolling features), no validation or test row carries a rolling mean or a next-day label
computed from a day of an earlier split. Every patient's rows of a split therefore form one
window inside that split's interval; no window straddles a boundary.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from novamind.app.datasets.exceptions import BadExportParameters, EmptyDataset
from novamind.app.datasets.rows import PatientDay

SPLITS = ("train", "validation", "test")
DEFAULT_GAP_DAYS = 7


@dataclass(frozen=True)
class SplitPlan:
    """The two boundaries (real dates) and the embargo gap."""

    validation_from: dt.date
    test_from: dt.date
    gap_days: int = DEFAULT_GAP_DAYS

    def __post_init__(self) -> None:
        if self.gap_days < 0:
            raise BadExportParameters(f"the gap must be 0 days or more, got {self.gap_days}")
        if self.validation_from + dt.timedelta(days=self.gap_days) >= self.test_from:
            raise BadExportParameters(
                f"the validation window is empty: it starts {self.gap_days} days after "
                f"{self.validation_from} and must end before the test boundary {self.test_from}"
            )

    def split_of(self, day: dt.date) -> str | None:
        """The split of a real date, or ``None`` inside an embargo gap."""
        gap = dt.timedelta(days=self.gap_days)
        if day < self.validation_from:
            return "train"
        if day < self.validation_from + gap:
            return None
        if day < self.test_from:
            return "validation"
        if day < self.test_from + gap:
            return None
        return "test"


def plan_by_shares(
    first: dt.date,
    last: dt.date,
    *,
    train_share: float,
    validation_share: float,
    gap_days: int = DEFAULT_GAP_DAYS,
) -> SplitPlan:
    """Boundaries at ``train_share`` and ``train_share + validation_share`` of the date span
    ``first..last`` (inclusive); each split must keep at least one day after its gap."""
    if not (train_share > 0 and validation_share > 0 and train_share + validation_share < 1):
        raise BadExportParameters(
            f"train share {train_share} and validation share {validation_share} must be positive "
            "and sum to less than 1 (the test split takes the rest)"
        )
    span = (last - first).days + 1
    validation_from = first + dt.timedelta(days=round(span * train_share))
    test_from = first + dt.timedelta(days=round(span * (train_share + validation_share)))
    gap = dt.timedelta(days=gap_days)
    if validation_from <= first or validation_from + gap >= test_from or test_from + gap > last:
        raise BadExportParameters(
            f"the data spans {span} days; shares {train_share}/{validation_share}/"
            f"{1 - train_share - validation_share:.2f} with a {gap_days}-day gap leave a split "
            "without days: lower --gap-days or give --validation-from/--test-from"
        )
    return SplitPlan(validation_from=validation_from, test_from=test_from, gap_days=gap_days)


def assign(days: Iterable[PatientDay], plan: SplitPlan) -> tuple[dict[str, list[PatientDay]], int]:
    """Patient-days per split (sorted) and the number dropped in the embargo gaps."""
    out: dict[str, list[PatientDay]] = {name: [] for name in SPLITS}
    embargoed = 0
    for patient, day in sorted(days):
        split = plan.split_of(day)
        if split is None:
            embargoed += 1
        else:
            out[split].append((patient, day))
    if not any(out.values()):
        raise EmptyDataset("every patient-day falls inside an embargo gap")
    return out, embargoed
