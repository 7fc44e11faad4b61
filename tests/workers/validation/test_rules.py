from datetime import UTC, datetime

import pytest

from tests.workers.features.factories import (
    NOW,
    T0,
    assessment,
    biometric,
    phq9,
    sleep,
    steps,
    symptom,
)
from workers.validation.catalog import METRICS
from workers.validation.exceptions import (
    FutureTimestamp,
    Inconsistent,
    InvalidType,
    MissingField,
    OutOfRange,
    UnitMismatch,
    UnknownCode,
    ValidationError,
)
from workers.validation.rules import (
    Assessment,
    Sample,
    Symptom,
    ValidationConfig,
    validate_assessment,
    validate_biometric,
    validate_symptom,
)


def test_valid_heart_rate_is_normalised_sample():
    s = validate_biometric(biometric("HEART_RATE", T0, 61.0), NOW)
    assert isinstance(s, Sample)
    assert (s.t, s.metric, s.value, s.outlier) == (T0, "HEART_RATE", 61.0, False)


def test_received_time_is_carried_as_the_delivery_stamp():
    when = datetime.fromtimestamp((T0 + 5000) / 1000, UTC)
    assert validate_biometric(biometric("HEART_RATE", T0, 61.0, received_time=T0 + 7), NOW).received == T0 + 7
    assert (
        validate_biometric(biometric("HEART_RATE", T0, 61.0, received_time=when), NOW).received == T0 + 5000
    )
    for unreadable in (None, "yesterday", datetime(2024, 1, 1)):  # naive datetime: no stamp
        s = validate_biometric(biometric("HEART_RATE", T0, 61.0, received_time=unreadable), NOW)
        assert isinstance(s, Sample) and s.received is None


def test_datetime_event_time_is_accepted_and_naive_rejected():
    aware = datetime.fromtimestamp(T0 / 1000, UTC)
    s = validate_biometric(biometric("HEART_RATE", T0, 61, event_time=aware), NOW)
    assert isinstance(s, Sample) and s.t == T0
    err = validate_biometric(biometric("HEART_RATE", T0, 61, event_time=aware.replace(tzinfo=None)), NOW)
    assert isinstance(err, InvalidType) and err.field == "event_time"


@pytest.mark.parametrize(
    ("metric", "lo", "hi"),
    [
        ("HEART_RATE", 25, 250),
        ("RESTING_HEART_RATE", 25, 150),
        ("HRV_RMSSD", 1, 300),
        ("HRV_SDNN", 1, 400),
        ("SPO2", 50, 100),
        ("RESPIRATORY_RATE", 4, 60),
    ],
)
def test_physiological_range_boundaries(metric, lo, hi):
    assert isinstance(validate_biometric(biometric(metric, T0, lo), NOW), Sample)
    assert isinstance(validate_biometric(biometric(metric, T0, hi), NOW), Sample)
    for bad in (lo - 0.01, hi + 0.01):
        err = validate_biometric(biometric(metric, T0, bad), NOW)
        assert isinstance(err, OutOfRange)
        assert (err.field, err.error_class, err.hard) == ("value", "OutOfRange", True)


def test_plausible_but_atypical_value_is_kept_as_outlier():
    s = validate_biometric(biometric("HEART_RATE", T0, 230), NOW)
    assert isinstance(s, Sample) and s.outlier
    s = validate_biometric(biometric("SPO2", T0, 80), NOW)
    assert isinstance(s, Sample) and s.outlier


def test_steps_rate_and_daily_bounds():
    assert isinstance(validate_biometric(steps(T0, 120, 60), NOW), Sample)
    s = validate_biometric(steps(T0, 250, 60), NOW)
    assert isinstance(s, Sample) and s.outlier  # sprint cadence: plausible outlier
    assert isinstance(validate_biometric(steps(T0, 301, 60), NOW), OutOfRange)
    assert isinstance(validate_biometric(steps(T0, 60001, 86400), NOW), OutOfRange)
    assert isinstance(validate_biometric(steps(T0, -1, 60), NOW), OutOfRange)
    err = validate_biometric(steps(T0, 10, 0), NOW)
    assert isinstance(err, OutOfRange) and err.field == "duration_seconds"


@pytest.mark.parametrize("metric", list(METRICS))
def test_unit_mismatch_for_every_metric(metric):
    err = validate_biometric(biometric(metric, T0, 10, unit="furlongs"), NOW)
    assert isinstance(err, UnitMismatch) and err.field == "unit"
    assert METRICS[metric].unit in err.reason


def test_future_timestamp_uses_passed_now_and_skew():
    cfg = ValidationConfig(max_future_skew_ms=60_000)
    assert isinstance(validate_biometric(biometric("HEART_RATE", T0 + 60_000, 60), T0, cfg), Sample)
    err = validate_biometric(biometric("HEART_RATE", T0 + 60_001, 60), T0, cfg)
    assert isinstance(err, FutureTimestamp) and err.field == "event_time"


@pytest.mark.parametrize(
    "field", ["event_id", "patient_id", "event_time", "source", "metric", "value", "unit"]
)
def test_missing_required_field(field):
    event = biometric("HEART_RATE", T0, 60)
    del event[field]
    err = validate_biometric(event, NOW)
    assert isinstance(err, MissingField) and err.field == field


def test_malformed_values_are_typed_errors():
    assert isinstance(validate_biometric(biometric("HEART_RATE", T0, "60"), NOW), InvalidType)
    assert isinstance(validate_biometric(biometric("HEART_RATE", T0, float("nan")), NOW), InvalidType)
    err = validate_biometric(biometric("HEART_RATE", T0, 60, patient_id="MRN12345"), NOW)
    assert isinstance(err, InvalidType) and err.field == "patient_id"
    err = validate_biometric(biometric("HEART_RATE", T0, 60, event_time="yesterday"), NOW)
    assert isinstance(err, InvalidType)
    err = validate_biometric(biometric("HEART_RATE", 1000, 60), NOW)
    assert isinstance(err, OutOfRange) and err.field == "event_time"


def test_unknown_codes():
    err = validate_biometric(biometric("HEART_RATE", T0, 60, metric="GLUCOSE"), NOW)
    assert isinstance(err, UnknownCode) and err.field == "metric"
    err = validate_biometric(sleep(T0, "UNKNOWN", 30), NOW)
    assert isinstance(err, UnknownCode) and err.field == "sleep_stage"
    err = validate_biometric(sleep(T0, "REM", 30, sleep_stage=None), NOW)
    assert isinstance(err, MissingField) and err.field == "sleep_stage"


def test_sleep_stage_duration_rules():
    s = validate_biometric(sleep(T0, "DEEP", 1800), NOW)
    assert isinstance(s, Sample) and s.stage == "DEEP" and s.duration_s == 1800
    assert isinstance(validate_biometric(sleep(T0, "DEEP", 90000), NOW), OutOfRange)
    err = validate_biometric(sleep(T0, "DEEP", 1800, duration_seconds=60), NOW)
    assert isinstance(err, Inconsistent)


def test_symptom_rules():
    s = validate_symptom(symptom(T0, "ANXIETY", 10), NOW)
    assert isinstance(s, Symptom) and s.severity == 10
    assert isinstance(validate_symptom(symptom(T0, "ANXIETY", 0), NOW), Symptom)
    assert isinstance(validate_symptom(symptom(T0, "ANXIETY", 11), NOW), OutOfRange)
    assert isinstance(validate_symptom(symptom(T0, "ANXIETY", -1), NOW), OutOfRange)
    assert isinstance(validate_symptom(symptom(T0, "ANXIETY", True), NOW), InvalidType)
    assert isinstance(validate_symptom(symptom(T0, "ANXIETY", 2.5), NOW), InvalidType)
    assert isinstance(validate_symptom(symptom(T0, "UNKNOWN", 3), NOW), UnknownCode)
    assert isinstance(validate_symptom(symptom(T0, "BOREDOM", 3), NOW), UnknownCode)


def test_assessment_rules():
    a = validate_assessment(phq9(T0, 14), NOW)
    assert isinstance(a, Assessment) and (a.instrument, a.total) == ("PHQ9", 14)
    assert isinstance(validate_assessment(assessment(T0, "GAD7", [3] * 7), NOW), Assessment)
    err = validate_assessment(assessment(T0, "PHQ9", [0] * 8 + [4]), NOW)
    assert isinstance(err, OutOfRange) and err.field == "item_responses[8]"
    err = validate_assessment(assessment(T0, "PHQ9", [1] * 9, total=8), NOW)
    assert isinstance(err, Inconsistent) and err.field == "total"
    err = validate_assessment(assessment(T0, "PHQ9", [1] * 9, band="SEVERE"), NOW)
    assert isinstance(err, Inconsistent) and err.field == "band"
    err = validate_assessment(assessment(T0, "PHQ9", [0] * 8 + [1], item9_positive=False), NOW)
    assert isinstance(err, Inconsistent) and err.field == "item9_positive"
    err = validate_assessment(assessment(T0, "GAD7", [1] * 9), NOW)
    assert isinstance(err, Inconsistent) and err.field == "item_responses"
    event = assessment(T0, "PHQ9", [0] * 9)
    event["instrument"] = "BDI"
    err = validate_assessment(event, NOW)
    assert isinstance(err, UnknownCode) and err.field == "instrument"
    err = validate_assessment(assessment(T0, "PHQ9", [0] * 9, loinc_total="8867-4"), NOW)
    assert isinstance(err, UnknownCode) and err.field == "loinc_total"


def test_errors_are_returned_never_raised_for_garbage():
    for garbage in ({}, {"event_id": 5}, {"metric": None, "value": {}}):
        for fn in (validate_biometric, validate_symptom, validate_assessment):
            assert isinstance(fn(garbage, NOW), ValidationError)


def item9_screen(t: int, answer: int, **over):
    """A PHQ9_ITEM9 result: PHQ-9 item 9 answered on its own (1 item, total 0-3, no band)."""
    fields = {"band": "UNKNOWN", "item9_positive": answer >= 1, "loinc_total": "44260-8", **over}
    return assessment(T0, "PHQ9_ITEM9", [answer], **fields)


@pytest.mark.parametrize("answer", [0, 1, 2, 3])
def test_item9_screen_is_one_item_0_to_3_without_a_band(answer):
    a = validate_assessment(item9_screen(T0, answer), NOW)
    assert isinstance(a, Assessment) and (a.instrument, a.total) == ("PHQ9_ITEM9", answer)
    assert isinstance(validate_assessment(item9_screen(T0, answer, loinc_total=None), NOW), Assessment)


@pytest.mark.parametrize(
    ("event", "error", "field"),
    [
        (
            assessment(T0, "PHQ9_ITEM9", [0] * 9, band="UNKNOWN", item9_positive=False),
            Inconsistent,
            "item_responses",
        ),
        (item9_screen(T0, 4, item9_positive=True), OutOfRange, "item_responses[0]"),
        (item9_screen(T0, 2, total=5), Inconsistent, "total"),
        (item9_screen(T0, 2, band="MILD"), Inconsistent, "band"),
        (item9_screen(T0, 2, band="NOT_A_BAND"), UnknownCode, "band"),
        (item9_screen(T0, 2, item9_positive=False), Inconsistent, "item9_positive"),
        (item9_screen(T0, 0, item9_positive=True), Inconsistent, "item9_positive"),
        (item9_screen(T0, 1, loinc_total="44261-6"), UnknownCode, "loinc_total"),
    ],
)
def test_item9_screen_errors(event, error, field):
    err = validate_assessment(event, NOW)
    assert isinstance(err, error) and err.field == field


def test_a_full_phq9_still_needs_a_band():
    err = validate_assessment(assessment(T0, "PHQ9", [0] * 9, band="UNKNOWN"), NOW)
    assert isinstance(err, UnknownCode) and err.field == "band"
