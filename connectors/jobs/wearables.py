"""Wearable jobs (Fitbit, Apple Health, Open mHealth): one patient's files per run.

The patient is named by pseudonym or by MRN (pseudonymised here) and the vendor account by
its user/device id (kept only as a keyed hash); with a device registry, the device must be
linked to the patient. Real identifiers go no further than :func:`wearer`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from connectors.delivery import WEARABLE_ROUTES
from connectors.exceptions import AdapterError, DeviceNotLinked, JobArgumentError
from connectors.jobs.model import Job
from connectors.pseudonyms import device_ref, pseudonymize
from connectors.sources import (
    InputMeter,
    apple_health_records,
    fitbit_records,
    input_files,
    openmhealth_records,
)
from connectors.wearables import WearableFormat, apple_health, fitbit, openmhealth
from connectors.wearables.common import zone
from connectors.wearables.devices import DeviceRegistry
from schemas.topics import Principal

PSEUDONYM = re.compile(r"p_[0-9a-f]{32}")
FITBIT_SCOPES = "activity heartrate sleep"  # OAuth scopes of the endpoints the adapter reads
OMH_SCOPES = "omh:heart-rate omh:step-count omh:sleep-episode"
APPLE_HEALTH_SCOPES = " ".join(
    re.sub(r"^HK\w+TypeIdentifier", "", k) for k in [*apple_health.QUANTITIES, apple_health.SLEEP_TYPE]
)


@dataclass(frozen=True)
class WearerIds:
    """Whose data a wearable file holds, as an operator names them: the patient's pseudonym
    (``patient``) or MRN (``mrn`` with ``mrn_system``), the vendor user/device id
    (``device_user``) and optionally the device registry that must link the two."""

    patient: str | None = None
    mrn: str | None = None
    mrn_system: str | None = None
    device_user: str | None = None
    registry: Path | None = None


@dataclass(frozen=True)
class Wearer:
    """Whose records a wearable run produces: the patient's pseudonym and the device ref."""

    patient_id: str
    device_id: str
    time_zone: str | None


def wearer(vendor: str, key: bytes, ids: WearerIds, *, time_zone: str | None = None) -> Wearer:
    """The patient pseudonym and device ref of a wearable import.

    An MRN is pseudonymised here; without ``device_user`` the device ref derives from the
    pseudonym. With a registry the device must be linked to the patient (``DeviceNotLinked``)
    and supplies the time zone when none is given.
    """
    if (ids.patient is None) == (ids.mrn is None):
        raise JobArgumentError("give either `patient` (a pseudonym) or `mrn` with `mrn_system`")
    if ids.patient is not None:
        if not PSEUDONYM.fullmatch(ids.patient):
            raise JobArgumentError(
                "`patient` must be a pseudonym (p_ + 32 hex); use `mrn`/`mrn_system` for an MRN"
            )
        patient_id = ids.patient
    else:
        if not ids.mrn_system:
            raise JobArgumentError("`mrn` needs `mrn_system` (the identifier system of the MRN)")
        patient_id = pseudonymize(ids.mrn_system, ids.mrn or "", key=key)
    ref = device_ref(vendor, ids.device_user or patient_id, key=key)
    if ids.registry is not None:
        if not ids.registry.is_file():
            raise AdapterError("no device registry file", path=str(ids.registry))
        device = DeviceRegistry(key=key, path=ids.registry).get(patient_id, ref)
        if device.vendor != vendor:
            raise DeviceNotLinked(f"device {ref} is a {device.vendor} device, not {vendor}")
        time_zone = time_zone or device.time_zone
    return Wearer(patient_id, ref, time_zone)


def fitbit_job(
    paths: Sequence[str | Path], key: bytes, ids: WearerIds, *, time_zone: str | None = None
) -> Job:
    """Fitbit Web API JSON responses, local times read in ``time_zone`` (or the registry's)."""
    files = input_files(paths, (".json",))
    who = wearer(fitbit.SOURCE, key, ids, time_zone=time_zone)
    if who.time_zone is None:
        raise JobArgumentError("Fitbit times are local: give `time_zone` (IANA name) or a `registry`")
    zone(who.time_zone)  # unknown zones fail here, not once per file
    tz = who.time_zone
    return Job(
        label="fitbit",
        actor=Principal.CONNECTOR_WEARABLES.value,
        system=fitbit.SOURCE,
        scopes=FITBIT_SCOPES,
        routes=WEARABLE_ROUTES,
        records=lambda summary: fitbit_records(
            files, patient_id=who.patient_id, device_id=who.device_id, tz=tz, summary=summary
        ),
    )


def apple_health_job(paths: Sequence[str | Path], key: bytes, ids: WearerIds) -> Job:
    """Apple Health ``export.xml`` files, streamed (progress by bytes read)."""
    files = input_files(paths, (".xml",))
    who = wearer(apple_health.SOURCE, key, ids)
    meter = InputMeter(files)
    return Job(
        label="apple-health",
        actor=Principal.CONNECTOR_WEARABLES.value,
        system=apple_health.SOURCE,
        scopes=APPLE_HEALTH_SCOPES,
        routes=WEARABLE_ROUTES,
        records=lambda summary: apple_health_records(
            files, patient_id=who.patient_id, device_id=who.device_id, summary=summary, meter=meter
        ),
        fraction=meter.fraction,
    )


def openmhealth_job(paths: Sequence[str | Path], key: bytes, ids: WearerIds) -> Job:
    """Open mHealth heart-rate, step-count and sleep-episode data points."""
    files = input_files(paths, (".json",))
    who = wearer(openmhealth.SOURCE, key, ids)
    return Job(
        label="openmhealth",
        actor=Principal.CONNECTOR_WEARABLES.value,
        system=openmhealth.SOURCE,
        scopes=OMH_SCOPES,
        routes=WEARABLE_ROUTES,
        records=lambda summary: openmhealth_records(
            files, patient_id=who.patient_id, device_id=who.device_id, summary=summary
        ),
    )


def wearable_job(
    fmt: WearableFormat,
    paths: Sequence[str | Path],
    key: bytes,
    ids: WearerIds,
    *,
    time_zone: str | None = None,
) -> Job:
    """The job reading ``paths`` in format ``fmt``; only Fitbit's local times take ``time_zone``."""
    if fmt is WearableFormat.FITBIT:
        return fitbit_job(paths, key, ids, time_zone=time_zone)
    if time_zone is not None:
        raise JobArgumentError(f"`time_zone` is for Fitbit's local times; {fmt} times carry their offset")
    if fmt is WearableFormat.APPLE_HEALTH:
        return apple_health_job(paths, key, ids)
    return openmhealth_job(paths, key, ids)
