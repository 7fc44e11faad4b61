"""``novamind connect``: arguments, identities and usage errors (checked before any service is used)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from connectors.exceptions import AdapterError, DeviceNotLinked
from connectors.pseudonyms import device_ref, pseudonymize
from connectors.wearables.devices import DeviceRegistry
from novamind.app.cli import build_parser, main
from novamind.app.commands.connect import scope_details, wearer
from tests.connectors.conftest import PSEUDONYM_KEY

PID = "p_" + "6" * 32


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOVAMIND_SECURITY__PSEUDONYM_KEY", PSEUDONYM_KEY.decode())
    # unreachable services: every case below must fail before touching them
    monkeypatch.setenv("NOVAMIND_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("NOVAMIND_MONGO__URI", "mongodb://127.0.0.1:1/")


def args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["connect", *argv])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fhir", "/no/such/bundle.json"], "no such file or directory at /no/such/bundle.json"),
        (["fhir", "{fx}/fhir", "--purpose", "CURIOSITY"], "unknown purpose 'CURIOSITY'"),
        (["fitbit", "{fx}/fitbit", "--patient", "Jane Doe"], "--patient must be a pseudonym"),
        (["fitbit", "{fx}/fitbit", "--mrn", "MRN-1"], "--mrn needs --mrn-system"),
        (["fitbit", "{fx}/fitbit", "--patient", PID], "Fitbit times are local: give --timezone"),
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


def test_mrn_is_pseudonymised_and_device_user_hashed(fixtures):
    who = wearer(
        args(
            "fitbit",
            str(fixtures),
            "--mrn",
            "MRN-7",
            "--mrn-system",
            "urn:oid:1.2",
            "--device-user",
            "ABC123",
        ),
        "fitbit",
        PSEUDONYM_KEY,
    )
    assert who.patient_id == pseudonymize("urn:oid:1.2", "MRN-7", key=PSEUDONYM_KEY)
    assert who.device_id == device_ref("fitbit", "ABC123", key=PSEUDONYM_KEY)
    assert "MRN-7" not in repr(who) and "ABC123" not in repr(who)


def test_without_device_user_the_ref_derives_from_the_pseudonym(fixtures):
    who = wearer(args("openmhealth", str(fixtures), "--patient", PID), "openmhealth", PSEUDONYM_KEY)
    assert who.device_id == device_ref("openmhealth", PID, key=PSEUDONYM_KEY)


def test_registry_requires_a_linked_device_and_supplies_its_time_zone(fixtures, tmp_path: Path):
    path = tmp_path / "devices.json"
    DeviceRegistry(key=PSEUDONYM_KEY, path=path).link(PID, "fitbit", "ABC123", time_zone="Europe/Berlin")
    linked = args(
        "fitbit", str(fixtures), "--patient", PID, "--device-user", "ABC123", "--registry", str(path)
    )
    assert wearer(linked, "fitbit", PSEUDONYM_KEY).time_zone == "Europe/Berlin"
    other = args("fitbit", str(fixtures), "--patient", PID, "--device-user", "ZZZ", "--registry", str(path))
    with pytest.raises(DeviceNotLinked, match="is not linked to patient"):
        wearer(other, "fitbit", PSEUDONYM_KEY)
    stranger = args("fitbit", str(fixtures), "--patient", "p_" + "7" * 32, "--device-user", "ABC123")
    with pytest.raises(DeviceNotLinked):
        wearer(argparse.Namespace(**{**vars(stranger), "registry": path}), "fitbit", PSEUDONYM_KEY)
    with pytest.raises(AdapterError, match="pseudonym"):
        wearer(args("fitbit", str(fixtures), "--patient", "MRN-7"), "fitbit", PSEUDONYM_KEY)


def test_scopes_are_packed_into_audit_details_of_at_most_128_characters():
    scopes = " ".join(
        f"system/{t}.read"
        for t in (
            "Patient",
            "Observation",
            "Condition",
            "Encounter",
            "MedicationRequest",
            "MedicationStatement",
        )
    )
    details = scope_details(scopes)
    assert list(details) == ["scopes", "scopes_2"]
    assert all(len(v) <= 128 for v in details.values())
    assert " ".join(details.values()) == scopes
    assert scope_details("activity heartrate sleep") == {"scopes": "activity heartrate sleep"}
