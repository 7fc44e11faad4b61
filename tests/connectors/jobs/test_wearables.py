"""Wearer and device binding of the wearable jobs: real identifiers go no further."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.exceptions import DeviceNotLinked, JobArgumentError
from connectors.jobs.wearables import WearerIds, fitbit_job, openmhealth_job, wearable_job, wearer
from connectors.pseudonyms import device_ref, pseudonymize
from connectors.wearables import WearableFormat
from connectors.wearables.devices import DeviceRegistry
from tests.connectors.conftest import PSEUDONYM_KEY

PID = "p_" + "6" * 32


def test_mrn_is_pseudonymised_and_device_user_hashed():
    ids = WearerIds(mrn="MRN-7", mrn_system="urn:oid:1.2", device_user="ABC123")
    who = wearer("fitbit", PSEUDONYM_KEY, ids)
    assert who.patient_id == pseudonymize("urn:oid:1.2", "MRN-7", key=PSEUDONYM_KEY)
    assert who.device_id == device_ref("fitbit", "ABC123", key=PSEUDONYM_KEY)
    assert "MRN-7" not in repr(who) and "ABC123" not in repr(who)


def test_without_device_user_the_ref_derives_from_the_pseudonym():
    who = wearer("openmhealth", PSEUDONYM_KEY, WearerIds(patient=PID))
    assert who.device_id == device_ref("openmhealth", PID, key=PSEUDONYM_KEY)


def test_registry_requires_a_linked_device_and_supplies_its_time_zone(tmp_path: Path):
    path = tmp_path / "devices.json"
    DeviceRegistry(key=PSEUDONYM_KEY, path=path).link(PID, "fitbit", "ABC123", time_zone="Europe/Berlin")
    linked = WearerIds(patient=PID, device_user="ABC123", registry=path)
    assert wearer("fitbit", PSEUDONYM_KEY, linked).time_zone == "Europe/Berlin"
    assert wearer("fitbit", PSEUDONYM_KEY, linked, time_zone="UTC").time_zone == "UTC"
    with pytest.raises(DeviceNotLinked, match="is not linked to patient"):
        wearer("fitbit", PSEUDONYM_KEY, WearerIds(patient=PID, device_user="ZZZ", registry=path))
    with pytest.raises(DeviceNotLinked):
        stranger = WearerIds(patient="p_" + "7" * 32, device_user="ABC123", registry=path)
        wearer("fitbit", PSEUDONYM_KEY, stranger)
    with pytest.raises(DeviceNotLinked):  # the ref is per vendor: a Fitbit account is no OMH device
        wearer("openmhealth", PSEUDONYM_KEY, WearerIds(patient=PID, device_user="ABC123", registry=path))


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (WearerIds(patient="MRN-7"), "`patient` must be a pseudonym (p_ + 32 hex); use `mrn`/`mrn_system`"),
        (WearerIds(mrn="MRN-7"), "`mrn` needs `mrn_system`"),
        (WearerIds(), "give either `patient` (a pseudonym) or `mrn` with `mrn_system`"),
        (WearerIds(patient=PID, mrn="MRN-7", mrn_system="s"), "give either `patient`"),
    ],
)
def test_the_patient_is_named_once_and_by_pseudonym_or_mrn(ids, message):
    with pytest.raises(JobArgumentError) as caught:
        wearer("fitbit", PSEUDONYM_KEY, ids)
    assert message in str(caught.value)
    spelled = caught.value.spelled(lambda name: "--" + name.replace("_", "-"))
    assert "`" not in spelled and "--mrn" in spelled


def test_fitbit_needs_a_time_zone_and_files_are_checked_first(fixtures: Path):
    with pytest.raises(JobArgumentError, match="Fitbit times are local: give `time_zone`"):
        fitbit_job([fixtures / "fitbit"], PSEUDONYM_KEY, WearerIds(patient=PID))
    ids = WearerIds(patient=PID)
    job = fitbit_job([fixtures / "fitbit"], PSEUDONYM_KEY, ids, time_zone="America/New_York")
    assert (job.label, job.system, job.scopes, job.actor) == (
        "fitbit",
        "fitbit",
        "activity heartrate sleep",
        "connector-wearables",
    )
    with pytest.raises(Exception, match="no such file or directory"):  # before the identity
        openmhealth_job([fixtures / "nothing-here"], PSEUDONYM_KEY, WearerIds(patient="Jane Doe"))


@pytest.mark.parametrize(
    ("fmt", "folder", "system"),
    [
        (WearableFormat.FITBIT, "fitbit", "fitbit"),
        (WearableFormat.APPLE_HEALTH, "apple_health", "apple_health"),
        (WearableFormat.OPENMHEALTH, "openmhealth", "openmhealth"),
    ],
)
def test_each_format_builds_its_own_job_and_only_fitbit_takes_a_time_zone(
    fixtures: Path, fmt: WearableFormat, folder: str, system: str
):
    paths, ids = [fixtures / folder], WearerIds(patient=PID)
    if fmt is not WearableFormat.FITBIT:
        with pytest.raises(JobArgumentError, match="`time_zone` is for Fitbit's local times"):
            wearable_job(fmt, paths, PSEUDONYM_KEY, ids, time_zone="Europe/Paris")
    job = wearable_job(fmt, paths, PSEUDONYM_KEY, ids, time_zone="Europe/Paris" if fmt == "fitbit" else None)
    assert job.system == system
