"""Policies of the twin: population priors, when to learn, when to snapshot, risk bands.

All functions are pure and take plain values, so each rule is unit-testable on its own.
"""

from __future__ import annotations

from schemas import assessments
from schemas.exceptions import AssessmentError

PRIOR_DAYS = 14
"""Days of learned data before the twin switches from POPULATION_PRIOR to PERSONAL."""
SNAPSHOT_EVERY = 30
"""Learned samples between two model-version snapshots (``twin_models``)."""

POPULATION_SEVERITY_MEAN = 3.0
"""Prior mean daily symptom severity (0-10). Engineering default for cold start; to be
re-estimated from the pooled cohort (it only matters for the first ``PRIOR_DAYS``)."""

# Rough adult (mean, SD) of daily wearable aggregates, used only to score anomalies before a
# patient has MIN_SAMPLES days of a feature. Deliberately wide: engineering defaults, not
# clinical reference ranges.
_ADULT_PRIOR: dict[str, tuple[float, float]] = {
    "resting_heart_rate": (65.0, 9.0),
    "hrv_rmssd": (40.0, 18.0),
    "steps_total": (7000.0, 3500.0),
    "sleep_total_minutes": (420.0, 70.0),
    "heart_rate_mean": (75.0, 10.0),
    "spo2_mean": (97.0, 1.5),
    "respiratory_rate_mean": (15.0, 2.5),
}
# HRV and daily steps decline with age; coarse overrides by age band.
_AGE_OVERRIDES: dict[str, dict[str, tuple[float, float]]] = {
    "AGE_45_54": {"hrv_rmssd": (32.0, 15.0), "steps_total": (6500.0, 3300.0)},
    "AGE_55_64": {"hrv_rmssd": (28.0, 14.0), "steps_total": (6000.0, 3200.0)},
    "AGE_65_74": {"hrv_rmssd": (24.0, 12.0), "steps_total": (5000.0, 3000.0)},
    "AGE_75_PLUS": {"hrv_rmssd": (22.0, 12.0), "steps_total": (4000.0, 2800.0)},
}


LEARN = "LEARN"
SCORE_ONLY = "SCORE_ONLY"
IGNORE = "IGNORE"

ALERT_SEVERITY = {
    "ITEM9_SAFETY": "CRITICAL",
    "SEVERE_BAND": "WARNING",
    "SUSTAINED_DETERIORATION": "WARNING",
    "GENE_DRUG_INTERACTION": "WARNING",
    "BIOMETRIC_ANOMALY": "INFO",
}


def population_prior(age_band: str | None) -> dict[str, tuple[float, float]]:
    """Return the biometric (mean, SD) prior for an age band (adult default otherwise)."""
    prior = dict(_ADULT_PRIOR)
    prior.update(_AGE_OVERRIDES.get(age_band or "", {}))
    return prior


def band(instrument: str, total: int) -> str:
    """Return the severity band of a PHQ-9 or GAD-7 total.

    Examples
    --------
    >>> band("PHQ9", 15), band("GAD7", 15), band("PHQ9", 4)
    ('MODERATELY_SEVERE', 'SEVERE', 'MINIMAL')
    """
    try:
        return str(assessments.band_for(instrument, total))
    except AssessmentError:
        return "UNKNOWN"


def should_update(
    *, last_day: int | None, day: int, revision: int, missing: bool, quality_ok: bool
) -> tuple[str, str]:
    """Decide what a daily-features record may do to the twin.

    Returns
    -------
    tuple[str, str]
        ``(decision, reason)``. ``LEARN``: score, then train every model. ``SCORE_ONLY``:
        advance the day and score forecasts, but train nothing (``MISSING``, ``LOW_QUALITY``).
        ``IGNORE``: the day is not newer than the last applied one (``DUPLICATE``,
        ``LATE_REVISION``, ``OUT_OF_ORDER``); online models cannot unlearn, so a revised
        past day is counted, not re-applied.
    """
    if last_day is not None and day <= last_day:
        if revision > 0:
            return IGNORE, "LATE_REVISION"
        return IGNORE, "DUPLICATE" if day == last_day else "OUT_OF_ORDER"
    if missing:
        return SCORE_ONLY, "MISSING"
    if not quality_ok:
        return SCORE_ONLY, "LOW_QUALITY"
    return LEARN, "OK"


def should_snapshot(
    *, learned_since: int, drift: bool, source_changed: bool, every: int = SNAPSHOT_EVERY
) -> bool:
    """Whether to persist a model version: every ``every`` learned samples, on a detected
    drift (the pre-change model is worth keeping) or when the twin turns PERSONAL."""
    return drift or source_changed or learned_since >= every


def model_source(days_learned: int) -> str:
    """``POPULATION_PRIOR`` until ``PRIOR_DAYS`` learned days, then ``PERSONAL``."""
    return "PERSONAL" if days_learned >= PRIOR_DAYS else "POPULATION_PRIOR"


def risk_level(
    *,
    item9: bool,
    phq9_band: str | None,
    gad7_band: str | None,
    deterioration: bool,
    anomaly: bool,
) -> str:
    """Map the twin's signals to LOW / MODERATE / HIGH / CRITICAL.

    CRITICAL: latest answer to PHQ-9 item 9 >= 1 (a full PHQ-9 or a PHQ9_ITEM9 screen). HIGH:
    PHQ-9 moderately severe or severe, GAD-7 severe, or a sustained deterioration on top of a
    moderate PHQ-9/GAD-7 band. MODERATE: moderate bands, a sustained deterioration or a
    biometric anomaly. LOW otherwise.

    Examples
    --------
    >>> risk_level(item9=False, phq9_band="MODERATE", gad7_band=None, deterioration=True,
    ...            anomaly=False)
    'HIGH'
    """
    if item9:
        return "CRITICAL"
    if phq9_band in ("MODERATELY_SEVERE", "SEVERE") or gad7_band == "SEVERE":
        return "HIGH"
    moderate = phq9_band == "MODERATE" or gad7_band == "MODERATE"
    if deterioration and moderate:
        return "HIGH"
    if moderate or deterioration or anomaly:
        return "MODERATE"
    return "LOW"
