import json

from tests.workers.features.factories import DAY_MS, T0
from workers.validation.dedup import DedupWindow, fingerprint


def test_duplicate_detected_and_distinct_ids_pass():
    d = DedupWindow()
    assert d.add("a", T0)
    assert d.add("b", T0)
    assert not d.add("a", T0)
    assert len(d) == 2


def test_fingerprint_is_deterministic():
    assert fingerprint("evt-1") == fingerprint("evt-1")
    assert fingerprint("evt-1") != fingerprint("evt-2")
    assert -(2**63) <= fingerprint("x") < 2**63


def test_sealed_buckets_still_detect_duplicates_and_accept_backfill():
    d = DedupWindow()
    d.add("old", T0)
    d.add("new", T0 + 5 * DAY_MS)  # seals day T0
    assert not d.add("old", T0)
    assert d.add("backfill", T0 + 1000)
    assert not d.add("backfill", T0 + 1000)


def test_horizon_evicts_by_event_time():
    d = DedupWindow(horizon_ms=2 * DAY_MS)
    d.add("a", T0)
    d.add("b", T0 + 4 * DAY_MS)
    assert len(d) == 1
    assert d.add("a", T0)  # beyond the horizon: not remembered, not stored
    assert len(d) == 1


def test_max_entries_bounds_memory_oldest_days_first():
    d = DedupWindow(max_entries=10)
    for day in range(5):
        for i in range(4):
            d.add(f"{day}-{i}", T0 + day * DAY_MS + i)
    assert len(d) <= 10
    assert not d.add("4-0", T0 + 4 * DAY_MS)  # newest day kept
    assert d.add("0-0", T0)  # oldest day evicted


def test_round_trip_through_json():
    d = DedupWindow()
    for i in range(50):
        d.add(f"e{i}", T0 + i * DAY_MS // 10)
    restored = DedupWindow.from_dict(json.loads(json.dumps(d.to_dict())))
    assert len(restored) == len(d)
    assert all(not restored.add(f"e{i}", T0 + i * DAY_MS // 10) for i in range(50))
    assert restored.to_dict()["buckets"].keys() == d.to_dict()["buckets"].keys()
