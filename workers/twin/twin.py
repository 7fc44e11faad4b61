"""The per-patient twin state: a tree of small dataclasses and river estimators.

Kept acyclic and free of sets so that :mod:`workers.twin.serialize` pickles it canonically.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workers.twin.deterioration import DeteriorationMonitor
from workers.twin.forecast import ScoreForecaster, SeverityForecaster
from workers.twin.monitors import BiometricAnomaly, LaggedCoupling
from workers.twin.shifts import BiometricShift

LAYOUT = 3
"""Layout of the state tree, stored in every state. Bump it whenever a dataclass of the twin
gains, loses or renames a field, and teach :mod:`workers.twin.upgrade` the previous layout
(``tests/workers/twin/test_twin_upgrade.py`` fails until both are done)."""


@dataclass
class Assessment:
    """Latest result of one instrument."""

    total: int
    band: str
    day: int
    item9: bool
    submission_id: str


@dataclass
class MedCourse:
    """One medication course with the baselines its response is measured against."""

    drug: str
    start_day: int
    dose_mg: float | None
    active: bool = True
    stop_day: int | None = None
    base_phq9: int | None = None
    base_gad7: int | None = None
    base_severity: float | None = None


@dataclass
class ActiveAlert:
    """An alert that has been raised and not yet cleared (deduplication key)."""

    alert_type: str
    since_day: int
    trigger_event_id: str


@dataclass
class TwinState:
    """Compact, serialisable per-patient twin (< 32 KB serialized after a year)."""

    patient_id: str
    twin_version: int = 0
    model_source: str = "POPULATION_PRIOR"
    days_seen: int = 0
    days_learned: int = 0
    last_day: int | None = None
    learned_since_snapshot: int = 0
    snapshots: int = 0
    forecast_severity: float | None = None
    forecast_phq9: float | None = None
    anomaly_score: float | None = None
    anomaly_active: bool = False
    normal_streak: int = 0
    severity: SeverityForecaster = field(default_factory=SeverityForecaster)
    phq9_model: ScoreForecaster = field(default_factory=ScoreForecaster)
    gad7_model: ScoreForecaster = field(
        default_factory=lambda: ScoreForecaster(max_total=21.0, prior_slope=1.9)
    )
    anomaly: BiometricAnomaly = field(default_factory=BiometricAnomaly)
    shift: BiometricShift = field(default_factory=BiometricShift)
    deterioration: DeteriorationMonitor = field(default_factory=DeteriorationMonitor)
    coupling: LaggedCoupling = field(default_factory=LaggedCoupling)
    phq9: Assessment | None = None
    gad7: Assessment | None = None
    medications: dict[str, MedCourse] = field(default_factory=dict)
    phenotypes: dict[str, str] = field(default_factory=dict)
    age_band: str | None = None
    sex: str | None = None
    alerts: dict[str, ActiveAlert] = field(default_factory=dict)
    recent_ids: list[str] = field(default_factory=list)
    pending_symptoms: dict[int, list[float]] = field(default_factory=dict)
    ignored: dict[str, int] = field(default_factory=dict)
    layout: int = LAYOUT


def new_twin(patient_id: str) -> TwinState:
    """Return the empty twin of a patient (population prior, no history)."""
    return TwinState(patient_id=patient_id)
