"""The audit and reid subcommands parse as documented."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pytest

from novamind.app.cli import build_parser
from novamind.app.commands.audit import parse_time


def test_audit_query_arguments() -> None:
    args = build_parser().parse_args(
        [
            "audit",
            "query",
            "--patient",
            "p_" + "a" * 32,
            "--actor",
            "intake",
            "--purpose",
            "TREATMENT",
            "--since",
            "2026-01-01",
            "--until",
            "2026-01-02T06:00:00+02:00",
            "--json",
        ]
    )
    assert args.since == datetime(2026, 1, 1, tzinfo=UTC)
    assert args.until == datetime(2026, 1, 2, 4, tzinfo=UTC)
    assert args.json and args.actor == "intake"


def test_bad_times_are_refused() -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_time("yesterday")


def test_reid_lookup_requires_actor_and_purpose(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["reid", "lookup", "p_" + "a" * 32])
    assert "--actor" in capsys.readouterr().err
    args = build_parser().parse_args(
        ["reid", "lookup", "p_" + "a" * 32, "--actor", "dr-a", "--purpose", "TREATMENT"]
    )
    assert (args.actor, args.purpose) == ("dr-a", "TREATMENT")
