"""``novamind worker`` refuses a configuration it cannot run with a precise message."""

from __future__ import annotations

import pytest

from novamind.app.cli import main


def test_static_membership_without_a_replica_id_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("NOVAMIND_WORKER__REPLICA_ID", raising=False)
    monkeypatch.setenv("NOVAMIND_WORKER__STATIC_MEMBERSHIP", "true")
    assert main(["worker"]) == 2
    assert "static group membership needs a stable replica id" in capsys.readouterr().err
