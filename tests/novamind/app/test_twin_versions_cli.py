"""``novamind twin versions``: argument parsing and the listing (no services)."""

from __future__ import annotations

import datetime as dt

from novamind.app.cli import build_parser
from novamind.app.commands.inspect import format_versions

PID = "p_" + "ab" * 16


def test_versions_is_a_twin_action_with_audit_arguments():
    args = build_parser().parse_args(["twin", "versions", PID, "--purpose", "OPERATIONS"])
    assert (args.action, args.patient, args.purpose, args.json) == ("versions", PID, "OPERATIONS", False)


def test_listing_shows_each_snapshot_with_its_model_version_id_and_metrics():
    docs = [
        {
            "version": 7,
            "created_at": dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC),
            "model_version_id": "novamind-twin/2:0123456789ab",
            "samples_seen": 140,
            "model_source": "PERSONAL",
            "metrics": {
                "forecast_mae": 0.81,
                "persistence_mae": 1.02,
                "interval_coverage": 0.797,
                "phq9_forecast_mae": 2.4,
                "phq9_persistence_mae": 3.5,
            },
        },
        {  # written before model version ids were recorded
            "version": 6,
            "created_at": dt.datetime(2026, 2, 1, 12, 0, tzinfo=dt.UTC),
            "samples_seen": 110,
            "model_source": "PERSONAL",
            "metrics": {"forecast_mae": 0.9},
        },
    ]
    header, newest, older = format_versions(docs)
    assert "model version id" in header and "MAE" in header
    assert newest.split()[:6] == [
        "7",
        "2026-03-01",
        "12:00:00",
        "novamind-twin/2:0123456789ab",
        "140",
        "PERSONAL",
    ]
    assert newest.split()[6:] == ["0.81", "1.02", "80%", "2.40", "3.50"]
    assert older.split()[3] == "unrecorded"
    assert older.split()[6:] == ["0.90", "-", "-", "-", "-"]


def test_promote_and_rollback_are_twin_actions():
    from novamind.app.cli import build_parser

    promote = build_parser().parse_args(["twin", "promote", "--dry-run", "--actor", "ops-1"])
    assert (promote.action, promote.dry_run, promote.actor) == ("promote", True, "ops-1")
    back = build_parser().parse_args(["twin", "rollback", PID, "--to", "4"])
    assert (back.action, back.patient, back.snapshot, back.pin, back.purpose) == (
        "rollback",
        PID,
        4,
        None,
        "OPERATIONS",
    )
    assert build_parser().parse_args(["twin", "rollback", PID, "--to", "4", "--no-pin"]).pin is False
    assert build_parser().parse_args(["twin", "rollback", PID, "--to", "4", "--pin"]).pin is True


def test_the_listing_starts_with_the_twins_version_and_its_shadow():
    from novamind.app.commands.inspect import format_twin_version

    lines = format_twin_version(
        {
            "model_version_id": "novamind-twin/2:aaaaaaaaaaaa",
            "pinned": True,
            "total_state_bytes": 11000,
            "shadow": {
                "version_id": "novamind-twin/2:bbbbbbbbbbbb",
                "paired": {"pairs": 40, "live_mae": 0.9, "shadow_mae": 0.8, "live_coverage": 0.8},
            },
        }
    )
    assert lines[0] == "twin runs novamind-twin/2:aaaaaaaaaaaa  (pinned by a rollback)"
    assert lines[1].startswith("shadow novamind-twin/2:bbbbbbbbbbbb: 40 paired forecasts")
    assert "live 0.90 / shadow 0.80" in lines[1] and "coverage 80% / -" in lines[1]
    assert lines[2] == "state 11000 bytes (shadow included)"
    assert format_twin_version(None) == []


def test_the_promotion_report_names_the_versions_and_why_it_did_not_pass():
    from workers.runtime.twin_versions import report_lines
    from workers.twin.promotion import evaluate
    from workers.twin.shadow import PairedMetrics

    report = evaluate([PairedMetrics(pairs=20, live_abs=20.0, shadow_abs=19.0)], live="L", shadow="S")
    lines = report_lines(report, names={"L": "standard"})
    assert lines[0] == "live    standard (L)" and lines[1] == "shadow  S"
    assert "rule: not passed" in lines and any("needs 20" in line for line in lines)
