"""Benchmark of the pure per-event path (validate + dedup + fold + quality counters).

Usage: ``python bench/bench_features.py [--patients 300] [--memory-patients 20]``.
Writes ``bench/results/features.json``.

* throughput: a realistic wearable day per patient (HR 1/min, 15-min steps, nightly sleep
  stages, SpO2 and respiratory rate each 5 min at night, daily RHR/HRV, two symptom
  reports), patients interleaved as on one partition; timed for ``datetime`` event times
  (as fastavro decodes them) and for epoch-ms ints; best and median of ``--repeat`` runs
  (CPU time of this process: the machine may be shared). Day closing and publication included.
* memory: ``--memory-patients`` patients fed 31 days each, so the state holds a full
  30-day horizon; tracemalloc bytes per patient (and a deep getsizeof breakdown) are
  multiplied by 10,000 patients.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import statistics
import sys
import time
import tracemalloc
from array import array
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemas.metrics import METRIC_UNIT
from workers.features.patient import PatientState

DAY_MS = 86_400_000
MIN_MS = 60_000
T0 = 19_700 * DAY_MS


def pseudonym(i: int) -> str:
    return f"p_{i:032x}"


def day_events(pid: str, day: int, rng: random.Random, as_datetime: bool) -> list[dict[str, Any]]:
    """One realistic day of events for a patient, in time order."""
    base = T0 + day * DAY_MS
    out: list[tuple[int, dict[str, Any]]] = []

    def bio(t: int, metric: str, value: float, **extra: Any) -> None:
        ev = {"event_id": f"{pid}-{metric}-{t}", "patient_id": pid, "event_time": t,
              "received_time": t, "source": "simulator", "schema_version": 1,
              "metric": metric, "value": value, "unit": METRIC_UNIT[metric],
              "duration_seconds": None, "sleep_stage": None, "device_id": "dev-1",
              "loinc": None}  # fmt: skip
        ev.update(extra)
        out.append((t, ev))

    for m in range(1440):
        bio(base + m * MIN_MS, "HEART_RATE", float(rng.randint(52, 110)))
    for q in range(28, 92):  # 07:00-23:00
        bio(base + q * 15 * MIN_MS, "STEPS", float(rng.randint(0, 2500)), duration_seconds=900)
    t = base - 2 * 3_600_000  # 22:00 the evening before
    while t < base + 6 * 3_600_000:
        secs = 30 * rng.randint(2, 60)
        stage = rng.choice(("LIGHT", "LIGHT", "DEEP", "REM", "AWAKE"))
        bio(t, "SLEEP_STAGE", float(secs), sleep_stage=stage, duration_seconds=secs)
        t += secs * 1000
    for m in range(0, 360, 5):
        bio(base + m * MIN_MS, "SPO2", float(rng.randint(92, 99)))
        bio(base + m * MIN_MS + 1, "RESPIRATORY_RATE", float(rng.randint(11, 18)))
    bio(base + 6 * 3_600_000 + 5, "RESTING_HEART_RATE", float(rng.randint(50, 70)))
    bio(base + 6 * 3_600_000 + 6, "HRV_RMSSD", float(rng.randint(20, 80)))
    for h in (9, 20):
        t = base + h * 3_600_000
        out.append((t, {"event_id": f"{pid}-sym-{t}", "patient_id": pid, "event_time": t,
                        "received_time": t, "source": "intake", "schema_version": 1,
                        "symptom_type": "ANXIETY", "severity": rng.randint(0, 10),
                        "context": None, "triggers": [], "notes": None}))  # fmt: skip
    out.sort(key=lambda p: p[0])
    if as_datetime:
        for _, ev in out:
            ev["event_time"] = datetime.fromtimestamp(ev["event_time"] / 1000, UTC)
    return [ev for _, ev in out]


def interleave(per_patient: list[list[dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
    tagged = [(i, ev) for i, evs in enumerate(per_patient) for ev in evs]
    key = lambda p: p[1]["event_time"]  # noqa: E731
    tagged.sort(key=key)
    return tagged


def throughput(n_patients: int, as_datetime: bool, repeat: int) -> dict[str, Any]:
    rng = random.Random(7)
    pids = [pseudonym(i) for i in range(n_patients)]
    stream = interleave([day_events(p, 0, rng, as_datetime) for p in pids])
    stream += interleave([day_events(p, 1, rng, as_datetime)[:120] for p in pids])  # closes day 0
    now = T0 + 10 * DAY_MS
    kinds = ["SymptomReport" if "symptom_type" in ev else "BiometricSample" for _, ev in stream]
    runs = []
    for _ in range(repeat):
        states = [PatientState(p) for p in pids]
        gc.collect()
        start = time.process_time()
        errors = 0
        published = 0
        for (i, ev), kind in zip(stream, kinds, strict=True):
            st = states[i]
            err = (st.ingest_biometric(ev, now) if kind == "BiometricSample"
                   else st.ingest_symptom(ev, now))  # fmt: skip
            if err is not None:
                errors += 1
            if st.outbox:
                published += len(st.drain())
        runs.append(time.process_time() - start)
    best = min(runs)
    return {
        "events": len(stream),
        "repeats": repeat,
        "seconds_best": round(best, 3),
        "events_per_second_best": round(len(stream) / best),
        "events_per_second_median": round(len(stream) / statistics.median(runs)),
        "errors": errors,
        "daily_features_published": published,
        "event_time_type": "datetime" if as_datetime else "int-ms",
    }


def deep_size(obj: Any, seen: set[int] | None = None) -> int:
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    elif isinstance(obj, list | tuple | set | frozenset):
        size += sum(deep_size(v, seen) for v in obj)
    elif isinstance(obj, array | str | int | float | bytes):
        pass
    elif hasattr(obj, "__slots__"):
        for name in obj.__slots__:
            if name != "config" and hasattr(obj, name):
                size += deep_size(getattr(obj, name), seen)
    return size


def memory(n_patients: int, days: int = 31) -> dict[str, Any]:
    rng = random.Random(11)
    now = T0 + 100 * DAY_MS
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    states = []
    for i in range(n_patients):
        st = PatientState(pseudonym(i))
        for day in range(days):
            for ev in day_events(st.patient_id, day, rng, False):
                kind = "SymptomReport" if "symptom_type" in ev else "BiometricSample"
                st.ingest(kind, ev, now)
            st.drain()
        states.append(st)
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    per_patient = traced / n_patients
    first = states[0]
    windows = sum(deep_size(w) for w in first.days.values())
    dedup = deep_size(first.dedup)
    json_bytes = len(json.dumps(first.to_dict()))
    return {
        "patients_measured": n_patients,
        "days_fed": days,
        "days_retained": len(first.days),
        "dedup_ids_retained": len(first.dedup),
        "tracemalloc_bytes_per_patient": round(per_patient),
        "deep_sizeof_bytes_per_patient": {"windows": windows, "dedup": dedup, "total": deep_size(first)},
        "json_bytes_per_patient": json_bytes,
        "extrapolated_bytes_10000_patients_30_days": round(per_patient * 10_000),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=300)
    parser.add_argument("--memory-patients", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "features.json"))
    args = parser.parse_args()
    result = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "throughput": [
            throughput(args.patients, True, args.repeat),
            throughput(args.patients, False, args.repeat),
        ],
        "memory": memory(args.memory_patients),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
