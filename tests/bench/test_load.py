"""``bench_load`` times what it says: a stored month of history, and events that all miss."""

from __future__ import annotations

from bench.bench_load import HISTORY_DAYS, stored_patient, timed_round
from workers.features.parts import unpack_head


def test_the_stored_patient_holds_its_month_and_every_timed_event_folds() -> None:
    store, newest = stored_patient()
    head = unpack_head(store["h"])
    assert len(head["stored_days"]) >= HISTORY_DAYS - 2  # the last two days stay as cells
    assert head["stored_days"] == sorted(int(k.split("|")[1]) for k in store if k.startswith("d|"))
    t = newest - newest % 60_000
    times = timed_round(store, t, patients=30, held=10, events=40)  # asserts each event folds
    assert set(times) == {"miss", "load", "held", "backfill"} and all(v > 0 for v in times.values())
