"""``novamind connect`` through argv: usage errors (before any service is used), the JSON line and
the exit status. The jobs themselves are tested in ``tests/connectors/jobs``."""

from __future__ import annotations

import dataclasses
import json
import signal
from typing import Any

import pytest

from connectors import jobs
from connectors.delivery import ImportSummary
from connectors.jobs import JobResult
from novamind.app.cli import main
from tests.connectors.conftest import PSEUDONYM_KEY

PID = "p_" + "6" * 32


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOVAMIND_SECURITY__PSEUDONYM_KEY", PSEUDONYM_KEY.decode())
    # unreachable services: every case below must fail before touching them
    monkeypatch.setenv("NOVAMIND_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("NOVAMIND_MONGO__URI", "mongodb://127.0.0.1:1/")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fhir", "/no/such/bundle.json"], "no such file or directory at /no/such/bundle.json"),
        (["fhir", "{fx}/fhir", "--purpose", "CURIOSITY"], "unknown purpose 'CURIOSITY'"),
        (["fitbit", "{fx}/fitbit", "--patient", "Jane Doe"], "--patient must be a pseudonym"),
        (["fitbit", "{fx}/fitbit", "--mrn", "MRN-1"], "--mrn needs --mrn-system"),
        (
            ["fitbit", "{fx}/fitbit", "--patient", PID],
            "Fitbit times are local: give --timezone (IANA name) or a --registry",
        ),
        (["fitbit", "{fx}/fitbit", "--patient", PID, "--timezone", "Mars/Olympus"], "unknown IANA time zone"),
        (["apple-health", "{fx}/fitbit", "--patient", PID], "no .xml files in directory"),
        (
            ["openmhealth", "{fx}/openmhealth", "--patient", PID, "--registry", "/no/reg.json"],
            "no device registry",
        ),
        (
            ["fhir-sync", "--base-url", "ftp://x", "--token-url", "t", "--client-id", "c"]
            + ["--client-secret-file", "/s", "--state-dir", "/tmp"],
            "--base-url must be an http(s) URL",
        ),
        (
            ["fhir-sync", "--base-url", "http://x", "--token-url", "t", "--client-id", "c"]
            + ["--client-secret-file", "/s", "--state-dir", "/tmp", "--types", "Observation,Claim"],
            "--types: no mapping for Claim; known: Patient,",
        ),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(env, fixtures, capsys, argv, message):
    code = main(["connect", *(a.format(fx=fixtures) for a in argv)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith("novamind connect: ") and message in err and err.count("\n") == 1


def test_missing_pseudonym_key_is_a_usage_error(monkeypatch, fixtures, capsys):
    monkeypatch.delenv("NOVAMIND_SECURITY__PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("NOVAMIND_SECURITY__PSEUDONYM_KEY_FILE", raising=False)
    assert main(["connect", "fhir", str(fixtures / "fhir")]) == 2
    assert "no pseudonym key" in capsys.readouterr().err


def fake_result(**counts: Any) -> JobResult:
    summary = ImportSummary(read=3, records=2)
    summary.sent["wearable-biometrics"] = summary.acknowledged["wearable-biometrics"] = 2
    for name, value in counts.items():
        setattr(summary, name, value)
    return JobResult(connector="openmhealth", summary=summary, audited=1)


@pytest.mark.parametrize(
    ("result", "code"),
    [
        (fake_result(), 0),
        (fake_result(unacknowledged=1), 1),
        (dataclasses.replace(fake_result(), error="2 audit events not acknowledged by Kafka"), 1),
        (fake_result(interrupted="SIGTERM"), 128 + signal.SIGTERM),
    ],
)
def test_the_job_result_is_the_json_line_and_the_exit_status(env, capsys, monkeypatch, result, code):
    calls = []

    def run_wearable(fmt, paths, settings, **kwargs):
        calls.append((fmt, paths, kwargs))
        return result

    monkeypatch.setattr(jobs, "run_wearable", run_wearable)
    argv = ["connect", "openmhealth", "a.json", "b.json", "--patient", PID, "--purpose", "RESEARCH"]
    assert main([*argv, "--no-progress"]) == code
    out, err = capsys.readouterr()
    assert json.loads(out) == result.as_dict() and out.count("\n") == 1
    assert err == ("" if result.error is None else f"novamind connect openmhealth: {result.error}\n")
    [(fmt, paths, kwargs)] = calls
    assert (fmt, paths) == (jobs.WearableFormat.OPENMHEALTH, ["a.json", "b.json"])
    assert (
        kwargs["patient"],
        kwargs["mrn"],
        kwargs["time_zone"],
        kwargs["purpose"],
        kwargs["flush_timeout"],
    ) == (
        PID,
        None,
        None,
        "RESEARCH",
        60.0,
    )
    assert kwargs["reporting"].prefix == "novamind connect openmhealth: " and not kwargs["reporting"].progress
