"""What a replica pays for an event of a patient it does not hold, in-process (no Kafka).

Usage: ``python -m bench.bench_load [--patients 10000] [--held 5000] [--events 20000]``.
Writes ``bench/results/load.json``.

A replica holds at most ``NOVAMIND_WORKER__STATE_CACHE_PATIENTS`` patients; the others load from
its store at their next event. Here one patient's 30 days of realistic wearable data
(``bench_features.day_events``) are folded and written as the worker writes them (a batch's
changes every 2,000 events), and ``--patients`` patients share those stored parts. Events then
visit the patients in turn while ``--held`` stay in memory (least recently used out), so every
event is a miss: load the patient, fold one heart-rate sample, take the batch's changes. The
same event on a patient held in memory is timed beside it (a live trickle with one sample per
patient per batch, as the worker folds it, without Kafka), a load alone, and an event of the
month's backfill. CPU time of this process, best of ``--rounds`` interleaved rounds, with the
worker's collector thresholds.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import sys
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_features import DAY_MS, MIN_MS, T0, day_events, pseudonym
from workers.app import GC_THRESHOLDS
from workers.features.parts import load_state, take_changes
from workers.features.patient import PatientState

HISTORY_DAYS = 30
WRITE_EVERY = 2_000
NOW = T0 + (HISTORY_DAYS + 1) * DAY_MS


def stored_patient() -> tuple[dict[str, bytes], int]:
    """One patient's parts after ``HISTORY_DAYS`` days, and its newest event time."""
    store, state = backfill(month())
    return store, state.watermark


def month() -> list[dict[str, Any]]:
    """``HISTORY_DAYS`` days of one patient's realistic wearable data and reports, in time order."""
    rng = random.Random(3)
    pid = pseudonym(0)
    return [ev for day in range(HISTORY_DAYS) for ev in day_events(pid, day, rng, False)]


def backfill(events: list[dict[str, Any]]) -> tuple[dict[str, bytes], PatientState]:
    """``events`` folded and written as the worker writes a backlog: a batch's changes every
    ``WRITE_EVERY`` events, applied to a dict standing for the store."""
    state, store = PatientState(events[0]["patient_id"]), {}
    for start in range(0, len(events), WRITE_EVERY):
        for ev in events[start : start + WRITE_EVERY]:
            kind = "SymptomReport" if "symptom_type" in ev else "BiometricSample"
            error = state.ingest(kind, ev, NOW)
            assert error is None, error
        state.flush_revisions()
        puts, deleted = take_changes(state, {"t": start})
        for prefix in deleted:
            for key in [k for k in store if k.startswith(prefix)]:
                del store[key]
        for key, value in puts.items():
            if value is None:
                store.pop(key, None)
            else:
                store[key] = value
    return store, state


def sample(pid: str, t: int, i: int) -> dict[str, Any]:
    return {"event_id": f"{pid}-live-{i}", "patient_id": pid, "event_time": t, "received_time": t,
            "source": "simulator", "schema_version": 1, "metric": "HEART_RATE",
            "value": 60.0 + i % 40, "unit": "beats/min", "duration_seconds": None,
            "sleep_stage": None, "device_id": "dev-1", "loinc": None}  # fmt: skip


def timed_round(store: dict[str, bytes], t: int, patients: int, held: int, events: int) -> dict[str, float]:
    """CPU ms per event for: a miss (load + fold + changes), a load alone, a held patient, and
    an event of the month's backfill."""
    pids = [pseudonym(i) for i in range(1, patients + 1)]

    def scan(prefix: str) -> list[tuple[str, bytes]]:
        return sorted((k, v) for k, v in store.items() if k.startswith(prefix))

    def load(pid: str) -> PatientState:
        loaded = load_state(pid, store.get, scan)
        assert loaded is not None
        return loaded[0]

    cache: OrderedDict[str, PatientState] = OrderedDict()
    for pid in pids[-held:]:  # warm: the cache full of patients the visits reach last
        cache[pid] = load(pid)
    gc.collect()
    start = time.process_time()
    for i in range(events):
        pid = pids[i % patients]
        state = load(pid)
        error = state.ingest_biometric(sample(pid, t, i), NOW)
        assert error is None, error
        take_changes(state, {"t": i})
        cache[pid] = state
        if len(cache) > held:
            cache.popitem(last=False)
    miss = time.process_time() - start

    start = time.process_time()
    for i in range(events):
        load(pids[i % patients])
    load_only = time.process_time() - start

    resident = list(cache.values())
    start = time.process_time()
    for i in range(events):
        state = resident[i % len(resident)]
        error = state.ingest_biometric(sample(state.patient_id, t, events + i), NOW)
        assert error is None, error
        take_changes(state, {"t": i})
    hit = time.process_time() - start
    timed = (("miss", miss), ("load", load_only), ("held", hit))
    per_event = {name: secs / events * 1e3 for name, secs in timed}

    history = month()
    gc.collect()
    start = time.process_time()
    backfill(history)
    per_event["backfill"] = (time.process_time() - start) / len(history) * 1e3
    return per_event


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--held", type=int, default=5_000)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "load.json"))
    args = parser.parse_args()
    if not 0 < args.held < args.patients:
        parser.error("--held must be between 0 and --patients, so that every event is a miss")
    store, newest = stored_patient()
    t = newest - newest % MIN_MS  # the newest minute: no day closes, the event folds into its hour
    gc.set_threshold(*GC_THRESHOLDS)
    rounds = [timed_round(store, t, args.patients, args.held, args.events) for _ in range(args.rounds)]
    best = {k: min(r[k] for r in rounds) for k in rounds[0]}
    result = {
        "bench": "load",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "patients": args.patients,
        "held": args.held,
        "events_per_round": args.events,
        "history_days": HISTORY_DAYS,
        "stored_parts_per_patient": len(store),
        "stored_bytes_per_patient": sum(map(len, store.values())),
        "cpu_ms_per_event_best": {k: round(v, 4) for k, v in best.items()},
        "miss_to_held": round(best["miss"] / best["held"], 2),
        "held_to_backfill": round(best["held"] / best["backfill"], 2),
        "rounds": [{k: round(v, 4) for k, v in r.items()} for r in rounds],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
