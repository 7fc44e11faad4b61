"""The journal: between two snapshots of a patient's parts a write carries only the samples
folded since the last one, and loading folds them again into exactly the state that was live."""

from __future__ import annotations

import random

import pytest

from tests.workers.features.factories import DAY_MS, NOW, PATIENT, T0, sleep, symptom
from tests.workers.features.test_parts import DictStore
from tests.workers.features.test_streams import feed, hr
from workers.features.journal import JOURNAL_LIMIT, Journal, unpack
from workers.features.parts import JOURNAL, load_state, take_changes
from workers.features.patient import PatientState
from workers.validation.rules import Sample

TOPIC = "wearable-biometrics"


def _history(days: int = 3, until_minute: int = 600) -> tuple[PatientState, DictStore]:
    """``days`` days of a sample every 5 minutes, and the next day's up to ``until_minute``,
    written."""
    live, store = PatientState(PATIENT), DictStore()
    feed(live, [hr(d, m, 60.0 + m % 30) for d in range(days) for m in range(0, 1440, 5)])
    feed(live, [hr(days, m, 70.0) for m in range(0, until_minute + 1, 5)])
    live.drain()
    store.apply(*take_changes(live, {TOPIC: 0}))
    return live, store


def _write(live: PatientState, store: DictStore, offset: int) -> dict[str, bytes | None]:
    live.flush_revisions()
    puts, deleted = take_changes(live, {TOPIC: offset})
    store.apply(puts, deleted)
    return puts


def _reload(store: DictStore) -> tuple[PatientState, dict[str, int]]:
    loaded = load_state(PATIENT, store.get, store.scan)
    assert loaded is not None
    return loaded


def test_a_journal_packs_and_unpacks_every_field() -> None:
    journal = Journal()
    samples = [
        Sample("e1", T0, "HEART_RATE", 61.5, "watch-1", None, None, False, T0 + 5),
        Sample("e2", T0 + 60_000, "STEPS", 9000.0, "phone-ü", None, None, True, None),
    ]
    for i, sample in enumerate(samples):
        journal.add(sample, 0xFFFF_FFF0 + i)
    fence, back = unpack(journal.pack({TOPIC: 41, "other": 7}))
    assert fence == {TOPIC: 41, "other": 7}
    got = [(s.t, s.metric, s.value, s.device_id, s.outlier, s.received, fp) for s, fp in back]
    assert got == [
        (T0, "HEART_RATE", 61.5, "watch-1", False, T0 + 5, 0xFFFF_FFF0),
        (T0 + 60_000, "STEPS", 9000.0, "phone-ü", True, None, 0xFFFF_FFF1),
    ]


def test_live_writes_carry_the_journal_alone_and_every_one_reloads_to_the_live_state() -> None:
    live, store = _history()
    parts_before = {k: v for k, v in store.data.items() if k != JOURNAL}
    rng = random.Random(3)
    offset = 1
    for minute in range(601, 601 + JOURNAL_LIMIT):
        assert live.ingest_biometric(hr(3, minute, rng.uniform(55, 90)), NOW) is None
        puts = _write(live, store, offset)
        assert list(puts) == [JOURNAL]
        again, fence = _reload(store)
        assert fence == {TOPIC: offset}
        assert again.to_dict() == live.to_dict()
        offset += 1
    assert {k: v for k, v in store.data.items() if k != JOURNAL} == parts_before  # untouched
    # the next sample makes the journal too long: a snapshot, which deletes it
    assert live.ingest_biometric(hr(3, 700, 70.0), NOW) is None
    puts = _write(live, store, offset)
    assert puts[JOURNAL] is None and "h" in puts and any(k.startswith("c|") for k in puts)
    assert JOURNAL not in store.data
    again, fence = _reload(store)
    assert fence == {TOPIC: offset} and again.to_dict() == live.to_dict()


def test_a_reloaded_journal_folds_on_to_the_same_outputs_as_the_state_that_never_left() -> None:
    live, store = _history(until_minute=1425)
    for minute in range(3):
        feed(live, [hr(3, 1430 + minute, 64.0)])
        _write(live, store, minute + 1)
    again, _ = _reload(store)
    assert again.journal.count == 3
    rest = [hr(3, 1433 + m, 66.0) for m in range(20)] + [hr(4, m, 70.0) for m in range(0, 300, 7)]
    feed(live, rest)
    feed(again, rest)
    published = live.drain()
    assert published and again.drain() == published  # day 3 closed the same way
    assert again.to_dict() == live.to_dict()
    # and their next writes are the same records
    assert take_changes(again, {TOPIC: 9}) == take_changes(live, {TOPIC: 9})


FIRST = hr(3, 601, 61.0)


@pytest.mark.parametrize(
    "event",
    [
        symptom(T0 + 3 * DAY_MS + 602 * 60_000, "MOOD", 4),
        sleep(T0 + 3 * DAY_MS + 120 * 60_000, "DEEP", 1800),
        hr(1, 30, 70.0),  # into a closed day
        FIRST,  # again: a duplicate
        {**hr(3, 650, 61.0), "unit": "bpm"},  # rejected
    ],
    ids=["report", "sleep-stage", "late", "duplicate", "rejected"],
)
def test_anything_but_a_plain_sample_makes_the_next_write_a_snapshot(event: dict) -> None:
    live, store = _history()
    feed(live, [FIRST])
    assert list(_write(live, store, 1)) == [JOURNAL]
    feed(live, [event])
    puts = _write(live, store, 2)
    assert puts[JOURNAL] is None and "h" in puts
    again, _ = _reload(store)
    assert again.to_dict() == live.to_dict()
    assert live.journal.count == 0 and not live.journal.stored


def test_a_snapshot_with_no_journal_stored_writes_no_tombstone_for_it() -> None:
    live, store = _history()
    feed(live, [symptom(T0 + 3 * DAY_MS + 601 * 60_000, "MOOD", 4)])
    assert JOURNAL not in _write(live, store, 1)
