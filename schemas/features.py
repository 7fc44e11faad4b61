"""The daily features of ``PatientDailyFeatures``, named once.

The workers compute them (:mod:`workers.features.daily`), the twin learns from them and the
dataset export flattens them (:mod:`novamind.app.datasets.schema`); each takes its list from here.
Every name is a field of the ``PatientDailyFeatures`` record (a test checks the .avsc).
"""

from __future__ import annotations

# The day's measurements: the record's optional numbers, all null on a day without data.
DAILY_MEASURES: tuple[str, ...] = (
    "heart_rate_mean",
    "heart_rate_min",
    "heart_rate_max",
    "heart_rate_std",
    "resting_heart_rate",
    "hrv_rmssd",
    "hrv_sdnn",
    "steps_total",
    "spo2_mean",
    "respiratory_rate_mean",
    "sleep_total_minutes",
    "sleep_deep_minutes",
    "sleep_rem_minutes",
    "sleep_light_minutes",
    "sleep_awake_minutes",
    "sleep_efficiency",
    "symptom_severity_mean",
)
# The model features: the day's main measurements and the latest questionnaire totals. Each
# gets a per-patient running z-score (map ``normalized``).
MODEL_FEATURES: tuple[str, ...] = (
    *(
        name
        for name in DAILY_MEASURES
        if name not in {"heart_rate_min", "heart_rate_max", "heart_rate_std"}
        and not (name.startswith("sleep_") and name.endswith("_minutes") and name != "sleep_total_minutes")
    ),
    "phq9_total",
    "gad7_total",
)
# Features with a 7-day rolling mean (map ``rolling_7d``, key ``<feature>_mean7``): the model
# features bar HRV SDNN, SpO2, respiratory rate and the questionnaire totals.
ROLLING_FEATURES: tuple[str, ...] = tuple(
    name
    for name in MODEL_FEATURES
    if name not in {"hrv_sdnn", "spo2_mean", "respiratory_rate_mean", "phq9_total", "gad7_total"}
)
