"""From daily-feature records to whitelisted training rows (pure)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from novamind.app.datasets.schema import (
    MEASURES,
    NORMALIZED_FEATURES,
    QUALITY,
    ROLLING_FEATURES,
    SYMPTOM_TYPES,
    normalized_field,
    rolling_field,
    symptom_field,
)
from schemas.models import AgeBand, Sex

PatientDay = tuple[str, dt.date]


@dataclass(frozen=True, slots=True)
class Attributes:
    """A subject's static attributes, taken from the twin (bands only)."""

    age_band: str = AgeBand.UNKNOWN.value
    sex: str = Sex.UNKNOWN.value

    @classmethod
    def of(cls, age_band: Any, sex: Any) -> Attributes:
        """Known symbols are kept; anything else (None, a new symbol) becomes UNKNOWN."""
        band = str(age_band) if str(age_band) in AgeBand.__members__ else AgeBand.UNKNOWN.value
        kind = str(sex) if str(sex) in Sex.__members__ else Sex.UNKNOWN.value
        return cls(age_band=band, sex=kind)


def latest_revisions(records: Iterable[Mapping[str, Any]]) -> dict[PatientDay, Mapping[str, Any]]:
    """The last revision of every patient-day; on equal revisions the later record wins
    (a republished day replaces the earlier copy, as readers of the topic agree)."""
    latest: dict[PatientDay, Mapping[str, Any]] = {}
    for record in records:
        key = (str(record["patient_id"]), record["date"])
        kept = latest.get(key)
        if kept is None or record["revision"] >= kept["revision"]:
            latest[key] = record
    return latest


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def to_row(
    record: Mapping[str, Any], *, subject_id: str, date: dt.date, attributes: Attributes
) -> dict[str, Any]:
    """The training row of one daily-feature record: whitelisted fields only, maps flattened."""
    row: dict[str, Any] = {
        "subject_id": subject_id,
        "date": date,
        "age_band": attributes.age_band,
        "sex": attributes.sex,
    }
    for name, avro_type, _ in MEASURES:
        value = record.get(name)
        row[name] = (None if value is None else int(value)) if avro_type == "int" else _number(value)
    by_type = record.get("symptom_severity_by_type") or {}
    for symptom in SYMPTOM_TYPES:
        row[symptom_field(symptom)] = _number(by_type.get(symptom))
    rolling = record.get("rolling_7d") or {}
    row["days_observed7"] = _number(rolling.get("days_observed7"))
    for feature in ROLLING_FEATURES:
        row[rolling_field(feature)] = _number(rolling.get(rolling_field(feature)))
    normalized = record.get("normalized") or {}
    for feature in NORMALIZED_FEATURES:
        row[normalized_field(feature)] = _number(normalized.get(feature))
    for name, _ in QUALITY:
        row[name] = float(record[name])
    return row
