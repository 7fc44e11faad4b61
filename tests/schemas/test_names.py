"""Each name is defined once: topics and groups in the registry, symbols and features in schemas.

The last test reads the product's source: a topic name written as a string literal outside the
registry fails it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from schemas.catalog import catalog
from schemas.exceptions import WrongTopic
from schemas.features import DAILY_MEASURES, MODEL_FEATURES, ROLLING_FEATURES
from schemas.metrics import METRIC_LOINC, METRIC_UNIT
from schemas.models import REPORTED_SYMPTOM_TYPES, Metric, SymptomType, known_symbols
from schemas.topics import (
    SAFETY_GROUP,
    SAFETY_TOPICS,
    SOURCE_TOPICS,
    WORKERS_GROUP,
    Principal,
    TopicName,
    check_carries,
    declared_topics,
    record_routes,
    topic,
)

ROOT = Path(__file__).resolve().parents[2]
NOT_YET: tuple[str, ...] = ()


def test_every_topic_name_is_declared_and_every_declared_topic_has_a_name() -> None:
    assert {spec.name for spec in declared_topics()} == {name.value for name in TopicName}


def test_the_source_topics_are_those_the_workers_read_and_others_write() -> None:
    sources = {
        spec.name
        for spec in declared_topics()
        if Principal.WORKERS in spec.readers and Principal.WORKERS not in spec.writers
    }
    assert set(SOURCE_TOPICS) == sources


def test_the_item9_watch_reads_every_source_topic_that_carries_assessment_results() -> None:
    # a FHIR PHQ-9 (or PHQ9_ITEM9 screen) arrives on ehr-clinical-events, an app's on patient-reports
    assert set(SAFETY_TOPICS) == {TopicName.PATIENT_REPORTS, TopicName.EHR_CLINICAL_EVENTS}
    assert set(SAFETY_TOPICS) == {t for t in SOURCE_TOPICS if "AssessmentResult" in topic(t).values}


def test_group_names() -> None:
    assert SAFETY_GROUP.startswith(WORKERS_GROUP) and SAFETY_GROUP != WORKERS_GROUP


def test_feature_lists_name_fields_of_the_daily_features_record() -> None:
    fields = {f["name"]: f for f in catalog().get("PatientDailyFeatures").schema["fields"]}
    assert set(DAILY_MEASURES) | set(MODEL_FEATURES) | set(ROLLING_FEATURES) <= set(fields)
    assert set(ROLLING_FEATURES) <= set(MODEL_FEATURES)
    assert all(fields[name]["type"] == ["null", "double"] for name in DAILY_MEASURES)


def test_reported_symptom_types_are_the_enum_but_its_reader_default() -> None:
    assert set(REPORTED_SYMPTOM_TYPES) == {s.value for s in SymptomType} - {SymptomType.UNKNOWN}


def test_every_metric_has_a_unit_and_a_loinc_entry() -> None:
    assert set(METRIC_UNIT) == set(METRIC_LOINC) == set(known_symbols(Metric))


def test_no_topic_name_is_spelled_out_outside_the_registry() -> None:
    literal = re.compile("[\"'](" + "|".join(re.escape(n.value) for n in TopicName) + ")[\"']")
    found = []
    for package in ("novamind", "schemas", "connectors", "workers", "bench"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative == "schemas/topics.py" or relative.startswith(NOT_YET):
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if literal.search(line):
                    found.append(f"{relative}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


def test_a_topic_carries_only_the_records_the_registry_declares_for_it() -> None:
    check_carries(TopicName.TWIN_UPDATES, "TwinUpdate")
    with pytest.raises(WrongTopic, match="twin-updates carries TwinUpdate, not TwinAlert"):
        check_carries(TopicName.TWIN_UPDATES, "TwinAlert")
    with pytest.raises(WrongTopic, match="no declared records"):
        check_carries("not-a-topic", "TwinUpdate")


def test_routes_come_from_the_registry_and_the_first_topic_given_wins() -> None:
    reports_first = record_routes(TopicName.PATIENT_REPORTS, TopicName.EHR_CLINICAL_EVENTS)
    ehr_first = record_routes(TopicName.EHR_CLINICAL_EVENTS, TopicName.PATIENT_REPORTS)
    assert reports_first["AssessmentResult"] == TopicName.PATIENT_REPORTS
    assert ehr_first["AssessmentResult"] == TopicName.EHR_CLINICAL_EVENTS
    assert set(reports_first) == set(ehr_first) == {
        *topic(TopicName.PATIENT_REPORTS).values,
        *topic(TopicName.EHR_CLINICAL_EVENTS).values,
    }
