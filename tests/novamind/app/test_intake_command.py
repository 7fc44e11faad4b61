"""``novamind intake serve`` refuses to start without a usable authenticator (exit 2, no trace)."""

from __future__ import annotations

from pathlib import Path

import pytest

from novamind.app.cli import main


def test_static_mode_needs_a_tokens_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("NOVAMIND_INTAKE__TOKENS_FILE", raising=False)
    monkeypatch.setenv("NOVAMIND_AUTH__MODE", "static")
    assert main(["intake", "serve"]) == 2
    assert "NOVAMIND_AUTH__MODE=jwt" in capsys.readouterr().err


def test_jwt_mode_with_an_unreadable_jwks_file_does_not_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name, value in {
        "MODE": "jwt",
        "ISSUER": "https://idp.example.test",
        "AUDIENCE": "novamind-intake",
        "JWKS_FILE": str(tmp_path / "missing.json"),
    }.items():
        monkeypatch.setenv(f"NOVAMIND_AUTH__{name}", value)
    assert main(["intake", "serve"]) == 2
    assert "cannot read JWKS file" in capsys.readouterr().err
