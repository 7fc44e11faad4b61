import hashlib
import hmac
from datetime import UTC

import pytest

from connectors.exceptions import PseudonymKeyError
from connectors.pseudonyms import device_ref, pseudonymize
from connectors.records import event_id, score_assessment

KEY = b"k" * 32


def test_pseudonym_is_hmac_of_system_and_mrn():
    expected = hmac.new(KEY, b"urn:oid:1.2|MRN-1", hashlib.sha256).hexdigest()[:32]
    assert pseudonymize("urn:oid:1.2", "MRN-1", key=KEY) == "p_" + expected


def test_pseudonym_depends_on_system_key_and_mrn():
    base = pseudonymize("sys", "1", key=KEY)
    assert base != pseudonymize("sys2", "1", key=KEY)
    assert base != pseudonymize("sys", "2", key=KEY)
    assert base != pseudonymize("sys", "1", key=b"x" * 32)
    assert len(base) == 34


def test_short_key_and_empty_mrn_are_refused():
    with pytest.raises(PseudonymKeyError):
        pseudonymize("sys", "1", key=b"short")
    with pytest.raises(PseudonymKeyError):
        pseudonymize("sys", "", key=KEY)


def test_device_ref_is_distinct_from_patient_pseudonyms():
    ref = device_ref("fitbit", "7XYZAB", key=KEY)
    assert ref.startswith("d_") and ref == device_ref("fitbit", "7XYZAB", key=KEY)
    assert ref != device_ref("withings", "7XYZAB", key=KEY)


def test_event_id_is_same_instant_in_any_zone():
    from datetime import datetime, timedelta, timezone

    a = datetime(2024, 1, 1, 12, tzinfo=UTC)
    b = a.astimezone(timezone(timedelta(hours=-5)))
    assert event_id("fitbit", "d1", "HEART_RATE", a) == event_id("fitbit", "d1", "HEART_RATE", b)


@pytest.mark.parametrize(
    ("instrument", "items", "total", "band", "item9"),
    [
        ("PHQ9", [0] * 9, 0, "MINIMAL", False),
        ("PHQ9", [1, 1, 1, 1, 1, 0, 0, 0, 0], 5, "MILD", False),
        ("PHQ9", [2, 2, 2, 2, 1, 1, 0, 0, 0], 10, "MODERATE", False),
        ("PHQ9", [3, 3, 3, 3, 3, 0, 0, 0, 0], 15, "MODERATELY_SEVERE", False),
        ("PHQ9", [3, 3, 3, 3, 3, 3, 2, 0, 0], 20, "SEVERE", False),
        ("PHQ9", [0, 0, 0, 0, 0, 0, 0, 0, 1], 1, "MINIMAL", True),
        ("GAD7", [2, 2, 2, 2, 2, 2, 2], 14, "MODERATE", False),
        ("GAD7", [3, 3, 3, 3, 3, 0, 0], 15, "SEVERE", False),
    ],
)
def test_scoring_bands(instrument, items, total, band, item9):
    assert score_assessment(instrument, items) == (total, band, item9)


def test_scoring_rejects_bad_items():
    with pytest.raises(ValueError):
        score_assessment("PHQ9", [4] + [0] * 8)
    with pytest.raises(ValueError):
        score_assessment("GAD7", [0] * 9)
