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
