"""The export's Avro schema: the whitelist of what a training row may carry.

A row is one patient-day. Only the fields declared here leave the pipeline; everything else
of ``PatientDailyFeatures`` (event ids, pseudonyms, timestamps, source, revision) and of the
twin is dropped. Map-valued features are flattened into fixed, documented fields; unknown map
keys are ignored, so a new key upstream never reaches a dataset unreviewed.
"""

from __future__ import annotations

from typing import Any

from schemas.features import MODEL_FEATURES, ROLLING_FEATURES
from schemas.models import REPORTED_SYMPTOM_TYPES, AgeBand, Sex

NAMESPACE = "health.novamind.dataset.v1"
RECORD_NAME = "TrainingDay"
SCHEMA_VERSION = 1
SUBJECT_PREFIX = "s_"

# Daily measurements copied as they are: (field, Avro type, doc).
MEASURES: tuple[tuple[str, str, str], ...] = (
    ("heart_rate_mean", "double", "Mean heart rate, beats/min."),
    ("heart_rate_min", "double", "Minimum heart rate, beats/min."),
    ("heart_rate_max", "double", "Maximum heart rate, beats/min."),
    ("heart_rate_std", "double", "Sample standard deviation of heart rate, beats/min."),
    ("resting_heart_rate", "double", "Resting heart rate, beats/min."),
    ("hrv_rmssd", "double", "Heart-rate variability, RMSSD, ms."),
    ("hrv_sdnn", "double", "Heart-rate variability, SDNN, ms."),
    ("steps_total", "double", "Total steps that day."),
    ("spo2_mean", "double", "Mean SpO2, %."),
    ("respiratory_rate_mean", "double", "Mean respiratory rate, breaths/min."),
    ("sleep_total_minutes", "double", "Total sleep of the night ending on this day, minutes."),
    ("sleep_deep_minutes", "double", "Deep sleep, minutes."),
    ("sleep_rem_minutes", "double", "REM sleep, minutes."),
    ("sleep_light_minutes", "double", "Light sleep, minutes."),
    ("sleep_awake_minutes", "double", "Awake time within the sleep period, minutes."),
    ("sleep_efficiency", "double", "Time asleep / time in bed, 0-1."),
    ("symptom_severity_mean", "double", "Mean severity of all symptom reports that day, 0-10."),
    ("phq9_total", "int", "Latest PHQ-9 total as of this day, 0-27."),
    ("phq9_change", "int", "Change of the PHQ-9 total since the previous assessment."),
    ("gad7_total", "int", "Latest GAD-7 total as of this day, 0-21."),
    ("gad7_change", "int", "Change of the GAD-7 total since the previous assessment."),
)
# Keys of ``symptom_severity_by_type`` -> symptom_<lower>_severity; features of ``rolling_7d``
# (key ``<feature>_mean7``, plus ``days_observed7``); features of ``normalized`` -> <feature>_z.
SYMPTOM_TYPES = REPORTED_SYMPTOM_TYPES
NORMALIZED_FEATURES = MODEL_FEATURES
QUALITY: tuple[tuple[str, str], ...] = (
    ("completeness", "Share of the patient's expected data present that day, 0-1."),
    ("outlier_share", "Share of the day's samples flagged as outliers, 0-1."),
    ("consistency", "Cross-signal consistency score of the day, 0-1."),
)


def symptom_field(symptom_type: str) -> str:
    return f"symptom_{symptom_type.lower()}_severity"


def rolling_field(feature: str) -> str:
    return f"{feature}_mean7"


def normalized_field(feature: str) -> str:
    return f"{feature}_z"


def _optional(name: str, avro_type: str, doc: str) -> dict[str, Any]:
    return {"name": name, "type": ["null", avro_type], "default": None, "doc": doc}


def _enum(name: str, symbols: list[str], doc: str) -> dict[str, Any]:
    return {
        "type": "enum",
        "name": name,
        "namespace": NAMESPACE,
        "doc": doc,
        "symbols": symbols,
        "default": "UNKNOWN",
    }


def training_schema() -> dict[str, Any]:
    """The Avro record schema of one training row (every field has a ``doc``)."""
    fields: list[dict[str, Any]] = [
        {
            "name": "subject_id",
            "type": "string",
            "doc": f"Per-export subject id: '{SUBJECT_PREFIX}' + 32 hex chars of HMAC-SHA256 of the "
            "patient pseudonym under a random key drawn for this export and never stored. "
            "Stable within this export, unlinkable across exports and to any other identifier.",
        },
        {
            "name": "date",
            "type": {"type": "int", "logicalType": "date"},
            "doc": "Day the row describes, shifted by a random whole number of days that is the "
            "same for every row of this subject and different between subjects. Differences "
            "between one subject's dates are real; calendar dates are not.",
        },
        {
            "name": "age_band",
            "type": _enum("AgeBand", [b.value for b in AgeBand], "Age band in years."),
            "doc": "Age band from the subject's twin (connector-computed, never a birth date); "
            "UNKNOWN without demographics.",
        },
        {
            "name": "sex",
            "type": _enum("Sex", [s.value for s in Sex], "Administrative sex."),
            "doc": "Administrative sex from the subject's twin; UNKNOWN without demographics.",
        },
    ]
    fields += [
        _optional(name, avro_type, f"{doc} Null when not observed.") for name, avro_type, doc in MEASURES
    ]
    fields += [
        _optional(
            symptom_field(t),
            "double",
            f"Mean severity of the day's {t} symptom reports, 0-10. Null when none.",
        )
        for t in SYMPTOM_TYPES
    ]
    fields.append(
        _optional(
            "days_observed7",
            "double",
            "Days with data in the 7-day window ending on this day (this day included).",
        )
    )
    fields += [
        _optional(
            rolling_field(f),
            "double",
            f"Mean of {f} over the days with data in the 7-day window ending on this day.",
        )
        for f in ROLLING_FEATURES
    ]
    fields += [
        _optional(
            normalized_field(f),
            "double",
            f"z-score of {f} against the subject's own earlier days (running mean and SD). "
            "Null until two earlier values exist.",
        )
        for f in NORMALIZED_FEATURES
    ]
    fields += [{"name": name, "type": "double", "doc": doc} for name, doc in QUALITY]
    return {
        "type": "record",
        "name": RECORD_NAME,
        "namespace": NAMESPACE,
        "doc": "One de-identified patient-day of the NOVAMIND training dataset: daily wearable, "
        "symptom and assessment features that met the quality standards. No free text, no "
        "identifiers, shifted dates.",
        "fields": fields,
    }


def field_names() -> tuple[str, ...]:
    return tuple(f["name"] for f in training_schema()["fields"])
