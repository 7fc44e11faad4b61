"""The ``make bench`` summary reads the result files it names, and says what is missing."""

from __future__ import annotations

from bench.headline import headline_rows


def test_rows_quote_the_results() -> None:
    results = {
        "worker": {
            "worker_events_per_s_sustained": 9349,
            "bare_consume_decode_per_s": 31547,
            "ratio_worker_to_bare": 0.296,
            "worker_rss_mb": 206.0,
        },
        "latency": {"item9_alert_ms": {"backlog": {"p50": 62.7, "p99": 111.9, "n": 2}}},
        "make_test": {"seconds": 605.4, "exit_code": 0, "commit": "0123456789abcdef"},
        "live": {
            "live_to_backfill_cpu_per_event": 3.1,
            "live": {
                "patients": 5000,
                "trickle": {"changelog_bytes_per_event": 640.2},
                "burst": {"events_per_s": 5210},
                "restart_ready_s": 4.2,
            },
        },
    }
    results["live_5000_250"] = {
        "steady_above_idle_to_backfill_cpu_per_event": 4.01,
        "patient_day_to_backfill_cpu_per_event": 4.11,
        "live": {
            "trickle_steady": {"cpu_ms_per_event_above_idle": 0.0955, "changelog_bytes_per_event": 449.8},
            "patients": 5000,
            "history_days": 30,
            "resident_kb_per_patient": 31.1,
            "store_bytes_per_patient": 224848,
        },
    }
    results["features"] = {"memory": {"tracemalloc_bytes_per_patient": 874735}}
    rows = "\n".join(headline_rows(results))
    assert (
        "steady CPU per event above idle 0.0955 ms (4.01x backfill; a patient-day 4.11x); "
        "changelog 450 B per event"
    ) in rows
    assert (
        "CPU per event live/backfill 3.1x; changelog 640 B per live event; "
        "5,210 live events/s over 5,000 patients; restart ready in 4.2 s"
    ) in rows
    assert "9,349/s sustained vs bare consume+decode 31,547/s (ratio 0.296); RSS 206 MB" in rows
    assert "| item-9 alert latency, under biometric backfill | p50 62.7 ms, p99 112 ms (n=2) |" in rows
    assert "10 min 5 s, exit 0 (commit 01234567)" in rows
    assert (
        "31 KB held per patient (RSS growth, 5,000 patients with 30 days), 225 KB in the local store; "
        "every day in memory (no store, `bench_features`): 875 KB"
    ) in rows


def test_missing_results_are_named_not_invented() -> None:
    rows = headline_rows({})
    assert rows[:2] == ["| figure | value |", "|---|---|"]
    assert all("not measured" in row for row in rows[2:])


def test_the_ci_timing_keeps_pytests_summary_line() -> None:
    from bench.time_make_test import pytest_outcome

    log = "....\n==== 783 passed, 5 skipped in 584.41s (0:09:44) ====\n%3|noise after the run\n"
    assert pytest_outcome(log) == "783 passed, 5 skipped in 584.41s (0:09:44)"
    assert pytest_outcome("no summary here") is None
