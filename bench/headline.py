"""The headline figures of ``make bench`` as markdown rows, from the result files.

Pure: a mapping of result name (file stem) to its JSON in, rows out. A missing result or
field shows as "not measured" rather than failing the summary.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Results = Mapping[str, Any]


def _get(results: Results, *path: str) -> Any:
    node: Any = results
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _n(value: Any, unit: str = "") -> str:
    if value is None:
        return "not measured"
    text = f"{value:,.0f}" if isinstance(value, int | float) and abs(value) >= 100 else f"{value}"
    return f"{text}{unit}"


def _connectors(r: Results) -> str:
    fhir = _get(r, "connectors", "fhir") or {}
    apple = _get(r, "connectors", "wearables_apple_health") or {}
    return (
        f"FHIR {_n(fhir.get('connector_resources_per_s'))} resources/s; "
        f"Apple Health {_n(apple.get('connector_samples_per_s'))} samples/s vs bare producer "
        f"{_n(apple.get('bare_producer_records_per_s'))}/s (ratio {_n(apple.get('ratio_connector_to_bare'))})"
    )


def _worker(r: Results) -> str:
    w = _get(r, "worker") or {}
    return (
        f"{_n(w.get('worker_events_per_s_sustained'))}/s sustained vs bare consume+decode "
        f"{_n(w.get('bare_consume_decode_per_s'))}/s (ratio {_n(w.get('ratio_worker_to_bare'))}); "
        f"RSS {_n(w.get('worker_rss_mb'), ' MB')}"
    )


def _latency(key: str) -> Callable[[Results], str]:
    def row(r: Results) -> str:
        backlog = _get(r, "latency", key, "backlog") or {}
        p50, p99 = _n(backlog.get("p50"), " ms"), _n(backlog.get("p99"), " ms")
        return f"p50 {p50}, p99 {p99} (n={_n(backlog.get('n'))})"

    return row


def _live(r: Results) -> str:
    live = _get(r, "live") or {}
    trickle = _get(live, "live", "trickle") or {}
    return (
        f"CPU per event live/backfill {_n(live.get('live_to_backfill_cpu_per_event'))}x; "
        f"changelog {_n(trickle.get('changelog_bytes_per_event'), ' B')} per live event; "
        f"{_n(_get(live, 'live', 'burst', 'events_per_s'))} live events/s over "
        f"{_n(_get(live, 'live', 'patients'))} patients; restart ready in "
        f"{_n(_get(live, 'live', 'restart_ready_s'), ' s')}"
    )


def _memory(r: Results) -> str:
    """What a replica holds per patient, beside the store; not the whole state in memory."""
    live = _get(r, "live_5000_250", "live") or {}
    held, stored = live.get("resident_kb_per_patient"), live.get("store_bytes_per_patient")
    if held is None or stored is None:
        return "not measured"
    whole = _get(r, "features", "memory", "tracemalloc_bytes_per_patient")
    every_day = f"; every day in memory (no store, `bench_features`): {whole / 1e3:,.0f} KB" if whole else ""
    return (
        f"{held:,.0f} KB held per patient (RSS growth, {_n(live.get('patients'))} patients with "
        f"{_n(live.get('history_days'))} days), {stored / 1e3:,.0f} KB in the local store{every_day}"
    )


def _make_test(r: Results) -> str:
    run = _get(r, "make_test") or {}
    if "seconds" not in run:
        return "not measured (make bench-ci)"
    minutes, seconds = divmod(int(run["seconds"]), 60)
    return f"{minutes} min {seconds} s, exit {run.get('exit_code')} (commit {str(run.get('commit', ''))[:8]})"


def _one_sample_per_batch(r: Results) -> str:
    live = _get(r, "live_5000_250") or {}
    steady = _get(live, "live", "trickle_steady") or {}
    cpu = _n(steady.get("cpu_ms_per_event_above_idle"), " ms")
    ratios = (
        _n(live.get("steady_above_idle_to_backfill_cpu_per_event")),
        _n(live.get("patient_day_to_backfill_cpu_per_event")),
    )
    changelog = _n(steady.get("changelog_bytes_per_event"), " B")
    return (
        "steady CPU per event above idle {} ({}x backfill; a patient-day {}x); changelog {} per event".format(
            cpu, *ratios, changelog
        )
    )


ROWS: tuple[tuple[str, Callable[[Results], str]], ...] = (
    ("connector produce rate", _connectors),
    ("one worker, biometric events/s", _worker),
    ("symptom report -> twin update, under biometric backfill", _latency("symptom_report_to_twin_update_ms")),
    ("item-9 alert latency, under biometric backfill", _latency("item9_alert_ms")),
    (
        "twin updates/s per worker (twin stage busy)",
        lambda r: _n(_get(r, "latency", "twin_updates_per_s", "per_busy_s")),
    ),
    ("worker state, live traffic over many patients", _live),
    ("worker state, one sample per patient per batch (5,000 patients, 250/s)", _one_sample_per_batch),
    ("worker memory per patient, 30 days of minute-level heart rate", _memory),
    ("fresh clone, `bash .ci/run`", _make_test),
)


def headline_rows(results: Results) -> list[str]:
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| {name} | {render(results)} |" for name, render in ROWS]
    return lines
