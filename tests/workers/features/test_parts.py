"""Window state as keyed parts: incremental writes reload to the same state, old states migrate,
and a live event writes a few hundred bytes however long the patient's history."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import pytest

from tests.workers.features.factories import DAY_MS, MIN_MS, NOW, PATIENT, T0
from tests.workers.features.test_streams import backlog_events, feed, hr
from workers.features.day import DayWindow
from workers.features.parts import (
    all_parts,
    load_state,
    pack_days,
    pack_head,
    take_changes,
    unpack_days,
    unpack_head,
)
from workers.features.patient import PatientState
from workers.features.streams import BIOMETRICS

FIXTURES = Path(__file__).parent / "fixtures"


class DictStore:
    """The part keys of one patient in a dict, as the worker's local store holds them."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.written = 0

    def apply(self, puts: dict[str, bytes | None], deleted: list[str]) -> None:
        for prefix in deleted:
            for key in [k for k in self.data if k.startswith(prefix)]:
                del self.data[key]
        for key, value in puts.items():
            self.written += len(key) + len(value or b"")
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def scan(self, prefix: str) -> list[tuple[str, bytes]]:
        return sorted((k, v) for k, v in self.data.items() if k.startswith(prefix))


def _events() -> list[dict]:
    reports, biometrics = backlog_events(random.Random(12))
    return reports + biometrics


def _written_in_batches() -> tuple[PatientState, DictStore]:
    """The backlog folded 250 events at a time, each batch's changes applied to a store."""
    events = _events()
    live, store = PatientState(PATIENT), DictStore()
    for start in range(0, 3000, 250):
        feed(live, events[start : start + 250])
        live.flush_revisions()
        store.apply(*take_changes(live, {"t": start}))
    return live, store


def test_parts_written_batch_by_batch_reload_to_the_same_state() -> None:
    live, store = _written_in_batches()
    loaded = load_state(PATIENT, store.get, store.scan)
    assert loaded is not None
    again, fence = loaded
    assert fence == {"t": 2750}
    assert again.to_dict() == live.to_dict()
    live.drain()
    events = _events()
    tail = events[3000:] + events[2990:3000]  # and redeliveries of folded events
    feed(live, tail)
    feed(again, tail)
    assert again.to_dict() == live.to_dict()
    assert again.drain() == live.drain()


def test_days_load_on_first_use_and_can_be_released() -> None:
    live, store = PatientState(PATIENT), DictStore()
    feed(live, [hr(d, 600, 70.0) for d in range(20)])
    store.apply(*take_changes(live, {}))
    again, _ = load_state(PATIENT, store.get, store.scan)  # type: ignore[misc]
    assert len(again.days) == 20 and again.days.resident() == 0
    assert again.features(live.cursor) == live.features(live.cursor)
    # the day is loaded; the six before it (rolling features) are read, not kept
    assert again.days.resident() == 1
    again.days.release(float("inf"))
    assert again.days.resident() == 0 and len(again.days) == 20


def test_a_peeked_day_is_read_from_memory_when_there_and_never_kept() -> None:
    live, store = PatientState(PATIENT), DictStore()
    feed(live, [hr(d, 600, 70.0 + d) for d in range(3)])
    store.apply(*take_changes(live, {}))
    again, _ = load_state(PATIENT, store.get, store.scan)  # type: ignore[misc]
    first = min(again.days)
    peeked = again.days.peek(first)
    assert peeked is not None and peeked.whole() == live.days[first].whole()
    assert again.days.resident() == 0
    held = again.days[first]
    assert again.days.peek(first) is held  # in memory, possibly with changes not yet stored
    assert again.days.peek(first - 1) is None


def test_a_version_2_state_migrates_and_still_recognises_its_duplicates() -> None:
    events = _events()
    old = json.loads((FIXTURES / "state_v2.json").read_text())  # written by the version-2 code
    assert old["version"] == 2
    migrated = PatientState.from_dict(old)
    reference = PatientState(PATIENT)
    feed(reference, events[:2000])
    reference.drain()
    tail = events[2000:] + events[1990:2000]  # the last ten were folded in before the upgrade
    feed(migrated, tail)
    feed(reference, tail)
    assert migrated.drain() == reference.drain()
    assert migrated.rejected == reference.rejected
    store = DictStore()
    store.apply(all_parts(migrated, {}), [])
    again, _ = load_state(PATIENT, store.get, store.scan)  # type: ignore[misc]
    assert again.to_dict() == migrated.to_dict()


def test_a_live_event_writes_a_few_hundred_bytes_after_30_days_of_minute_data() -> None:
    live, store = PatientState(PATIENT), DictStore()
    feed(live, [hr(d, m, 60.0 + m % 30) for d in range(30) for m in range(0, 1440)])
    feed(live, [hr(30, m, 60.0) for m in range(600)])  # day 28 has turned cold: stored whole
    store.apply(*take_changes(live, {"wearable-biometrics": 1}))
    assert len(store.data) < 30 + 2 * 24 + 5  # a record per cold day, cells for two hot days
    before = store.written
    for minute in range(10):
        assert live.ingest_biometric(hr(30, 720 + minute, 64.0), NOW) is None
        live.flush_revisions()
        store.apply(*take_changes(live, {"wearable-biometrics": 2 + minute}))
    per_event = (store.written - before) / 10
    assert per_event < 1024, per_event
    assert sum(len(v) for v in store.data.values()) / (30 * 1440) < 12  # bytes stored per sample
    assert T0 // 86_400_000 + 30 in live.days


def test_a_patient_whose_first_events_were_all_rejected_writes_and_then_folds_normally() -> None:
    live, store = PatientState(PATIENT), DictStore()
    assert live.ingest_biometric({**hr(0, 0, 70.0), "value": 9999.0}, NOW) is not None  # out of range
    store.apply(*take_changes(live, {"t": 0}))  # no event time yet: no day is cold
    feed(live, [hr(d, 600, 70.0) for d in range(5)])
    store.apply(*take_changes(live, {"t": 1}))
    again, _ = load_state(PATIENT, store.get, store.scan)  # type: ignore[misc]
    assert again.to_dict() == live.to_dict()


def test_version_3_json_parts_still_load_and_are_rewritten_packed() -> None:
    fixture = json.loads((FIXTURES / "parts_v3.json").read_text())  # written by the version-3 code
    store = DictStore()
    store.apply({k: base64.b64decode(v) for k, v in fixture["parts"].items()}, [])
    assert store.data["h"][:1] == b"{" and any(v[:1] == b"W" for v in store.data.values())
    events = [{**e, "event_id": f"v3-{i}"} for i, e in enumerate(_events())]
    reference, written = PatientState(PATIENT), DictStore()
    for start in range(0, 3000, 250):  # as the fixture was written
        feed(reference, events[start : start + 250])
        reference.flush_revisions()
        written.apply(*take_changes(reference, {"t": start}))
    reference.drain()
    upgraded, fence = load_state(PATIENT, store.get, store.scan)  # type: ignore[misc]
    assert fence == {"t": 2750}
    assert upgraded.to_dict() == reference.to_dict()
    tail = events[3000:] + events[2990:3000]
    feed(upgraded, tail)
    feed(reference, tail)
    assert upgraded.drain() == reference.drain()
    store.apply(*take_changes(upgraded, {"t": 3000}))
    assert store.data["h"][:1] == b"I"  # the head is rewritten packed with the next write
    again, _ = load_state(PATIENT, store.get, store.scan)  # type: ignore[misc]
    assert again.to_dict() == upgraded.to_dict()


def test_the_packed_head_keeps_every_field_and_none() -> None:
    state = PatientState(PATIENT)
    index = {"stored_days": [], "has_legacy": False}
    assert unpack_head(pack_head(state, {})) == {**state.head(), "devices": {}, "fence": {}, **index}
    feed(state, _events()[:400])
    state.devices["watch-é|HEART_RATE"] = [5, None]
    state.dirty_days.update({20_000, 20_003})
    fence = {"x.wearable-biometrics": 12, "x.patient-reports": 3}
    head = unpack_head(pack_head(state, fence))
    index = {"stored_days": sorted(state.days), "has_legacy": False}
    assert head == {**state.head(), "devices": state.devices, "fence": fence, **index}


def test_the_stored_days_pack_as_a_bitmap_over_their_span() -> None:
    month = list(range(20_000, 20_031))
    assert len(pack_days(month)) == 8 + 4  # first day and span, then 31 bits
    for days in ([], [7], month, [20_000, 20_009, 20_010, 20_089], [-3, 0, 5]):
        assert unpack_days(b"x" + pack_days(days) + b"y", 1) == (days, 1 + len(pack_days(days)))


class CountingStore(DictStore):
    """A store that records what is read of it: the keys got and the prefixes scanned."""

    def __init__(self) -> None:
        super().__init__()
        self.got: list[str] = []
        self.scanned: list[str] = []

    def get(self, key: str) -> bytes | None:
        self.got.append(key)
        return super().get(key)

    def scan(self, prefix: str) -> list[tuple[str, bytes]]:
        self.scanned.append(prefix)
        return super().scan(prefix)


def test_the_head_lists_the_stored_days_after_every_write_and_a_load_reads_no_other_day() -> None:
    """Evictions, late events into cold days and journal-only writes included: the head's
    index always names exactly the stored ``d|`` parts. So a load lists nothing, and folding
    one live event reads the head, profile, journal, its day's meta and its hour's cell:
    the same five reads however long the patient's history."""
    events = _events()
    live, store = PatientState(PATIENT), CountingStore()
    for start in range(0, len(events), 97):
        feed(live, events[start : start + 97])
        live.flush_revisions()
        store.apply(*take_changes(live, {"t": start}))
        head = unpack_head(store.data["h"])
        assert head["stored_days"] == sorted(int(k.split("|")[1]) for k in store.data if k.startswith("d|"))
        assert head["has_legacy"] is False
    assert len(live.days) > 20
    store.got.clear()
    again, _ = load_state(PATIENT, store.get, store.scan)  # type: ignore[misc]
    assert again.days.resident() == 0
    newest = again.watermark  # one more sample at that minute: no day closes
    day, minute = newest // DAY_MS, newest % DAY_MS // MIN_MS
    sample = hr(day - T0 // DAY_MS, minute, 71.0)
    feed(again, [sample])
    assert store.scanned == [] and again.days.resident() == 1
    assert store.got == ["h", "p", "j", f"d|{day:06d}", f"c|{day:06d}|{minute // 60:02d}"]
    feed(live, [sample])
    assert again.to_dict() == live.to_dict()  # reading the rest of the day unpacks its other hours


def test_a_loaded_patient_reads_its_profile_only_when_a_field_of_it_is_used() -> None:
    """A live sample needs none of the profile (assessments, normaliser, context dedup, reject
    counts), so a load leaves its JSON unread; the first use of a field reads it whole, and a
    count the event adds lands on the stored ones."""
    live, store = _written_in_batches()
    again, _ = load_state(PATIENT, store.get, store.scan)  # type: ignore[misc]
    newest = again.clock.marks[BIOMETRICS]  # a sample there moves no clock: nothing is evicted
    day, minute = newest // DAY_MS - T0 // DAY_MS, newest % DAY_MS // MIN_MS
    sample = hr(day, minute, 71.0, event_id="live-1")
    assert feed(again, [sample]) == [None]
    assert again._stored_profile is not None  # still unread
    late = hr(day - 40, 0, 70.0)  # past the lateness horizon: rejected and counted
    feed(again, [late])
    assert again._stored_profile is None
    feed(live, [sample, late])
    assert again.rejected == live.rejected and again.rejected["LateEvent"] >= 1
    assert again.to_dict() == live.to_dict()
    with pytest.raises(AttributeError, match="no attribute 'nowhere'"):
        again.nowhere  # type: ignore[attr-defined]  # noqa: B018


def test_a_head_without_the_index_still_loads_by_listing_the_store() -> None:
    """The ``H`` head of the release before: the same layout without the index."""
    live, store = _written_in_batches()
    indexed = store.data["h"]
    index_size = len(pack_days(list(live.days))) + 1
    store.data["h"] = b"H" + indexed[1:-index_size]
    assert "stored_days" not in unpack_head(store.data["h"])
    again, fence = load_state(PATIENT, store.get, store.scan)  # type: ignore[misc]
    assert fence == {"t": 2750} and again.to_dict() == live.to_dict()
    store.apply(*take_changes(again, {"t": 3000}))
    assert store.data["h"][:1] == b"I"


def test_a_day_meta_with_counts_beyond_16_bits_packs_them_wide() -> None:
    state = PatientState(PATIENT)
    feed(state, [hr(0, m, 70.0) for m in range(30)])
    window = state.days[max(state.days)]
    narrow = window.packed_meta()
    assert DayWindow.from_parts(window.day, narrow, {}).hist == window.hist
    window.hist["HEART_RATE"][3] = 70_000
    wide = window.packed_meta()
    assert len(wide) > len(narrow)
    assert DayWindow.from_parts(window.day, wide, {}).hist == window.hist
