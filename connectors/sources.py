"""Vendor inputs -> mapped records, counting what was read, skipped and rejected.

Each ``*_records`` function is a generator of ``(pseudonym, record type, record)`` for
:func:`connectors.delivery.deliver`. A malformed item is reported through
``ImportSummary.reject`` with its id, its position (``file#JSON path``, ``file#/HealthData/
Record[n]/@attr`` or ``file:line``) and the reason, and never stops the rest. Patient and
device identities arrive already pseudonymised: nothing here sees an MRN or a vendor user id.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from connectors.delivery import ImportSummary, MappedRecord, Rejected
from connectors.ehr.mapping import FhirMapper
from connectors.ehr.reader import RawResource
from connectors.exceptions import AdapterError
from connectors.wearables.apple_health import parse_export
from connectors.wearables.fitbit import parse_fitbit
from connectors.wearables.openmhealth import parse_omh

FHIR_SUFFIXES = (".json", ".ndjson")
_POINT_INDEX = re.compile(r"^\$\[(\d+)\]")


def input_files(paths: Sequence[str | Path], suffixes: tuple[str, ...]) -> list[Path]:
    """The files named, plus those under named directories (recursive, sorted by path).

    ``AdapterError`` for a path that does not exist or a directory without such files.
    """
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in suffixes)
            if not inside:
                raise AdapterError(f"no {'/'.join(suffixes)} files in directory", path=str(path))
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise AdapterError("no such file or directory", path=str(path))
    return found


def fhir_records(
    resources: Iterable[RawResource], mapper: FhirMapper, summary: ImportSummary
) -> Iterator[MappedRecord]:
    """Map FHIR resources (files or a REST sync); rejections are reported as they happen."""
    reported = 0
    pulled = 0

    def report() -> None:
        nonlocal reported
        for r in mapper.summary.rejected[reported:]:
            summary.reject(Rejected(r.resource_id, r.path, r.reason))
        reported = len(mapper.summary.rejected)

    def pull() -> Iterator[RawResource]:
        nonlocal pulled
        for raw in resources:
            summary.read += 1
            pulled += 1
            report()
            yield raw

    ms = mapper.summary
    read, mapped, parked, unparked = ms.read, ms.mapped, ms.parked, ms.unparked
    skipped, identities = Counter(ms.skipped), Counter(ms.identities)
    yield from mapper.map_resources(pull())
    report()
    summary.read += ms.read - read - pulled  # Patients fetched from the server by id
    summary.mapped = (summary.mapped or 0) + ms.mapped - mapped
    summary.parked += ms.parked - parked
    summary.unparked += ms.unparked - unparked
    summary.skipped.update(ms.skipped - skipped)
    summary.identities.update(ms.identities - identities)


def _load_json(file: Path) -> Any:
    try:
        return json.loads(file.read_bytes())
    except OSError as exc:
        raise AdapterError(f"unreadable file: {exc.strerror}", path=str(file)) from exc
    except ValueError as exc:
        raise AdapterError(f"unreadable JSON: {exc}", path=str(file)) from exc


def _where(file: Path, exc: AdapterError) -> str:
    if exc.path is None or exc.path == str(file):
        return str(file) + (f":{exc.line}" if exc.line else "")
    return f"{file}#{exc.path}"


def fitbit_records(
    files: Iterable[Path],
    *,
    patient_id: str,
    device_id: str,
    tz: str,
    summary: ImportSummary,
    received_time: datetime | None = None,
) -> Iterator[MappedRecord]:
    """One Fitbit Web API response per file; a malformed payload is rejected whole."""
    for file in files:
        summary.read += 1
        try:
            samples = parse_fitbit(
                _load_json(file),
                patient_id=patient_id,
                device_id=device_id,
                tz=tz,
                received_time=received_time,
            )
        except AdapterError as exc:
            summary.reject(Rejected(None, _where(file, exc), exc.message))
            continue
        for sample in samples:
            yield patient_id, "BiometricSample", sample


def _point_id(payload: Any, path: str | None) -> str | None:
    """The ``header.id`` of the data point an error path points into, when it has one."""
    match = _POINT_INDEX.match(path or "")
    point = payload[int(match.group(1))] if match and isinstance(payload, list) else payload
    header = point.get("header") if isinstance(point, dict) else None
    ident = header.get("id") if isinstance(header, dict) else None
    return str(ident) if ident is not None else None


def openmhealth_records(
    files: Iterable[Path],
    *,
    patient_id: str,
    device_id: str,
    summary: ImportSummary,
    received_time: datetime | None = None,
) -> Iterator[MappedRecord]:
    """Open mHealth files holding one data point or an array of them."""
    for file in files:
        try:
            payload = _load_json(file)
        except AdapterError as exc:
            summary.read += 1
            summary.reject(Rejected(None, _where(file, exc), exc.message))
            continue
        summary.read += len(payload) if isinstance(payload, list) else 1
        errors: list[AdapterError] = []
        samples = parse_omh(
            payload, patient_id=patient_id, device_id=device_id, received_time=received_time, errors=errors
        )
        for err in errors:
            summary.reject(Rejected(_point_id(payload, err.path), _where(file, err), err.message))
        for sample in samples:
            yield patient_id, "BiometricSample", sample


class InputMeter:
    """Share of the input bytes consumed so far (a progress fraction for streamed files)."""

    def __init__(self, files: Sequence[Path]) -> None:
        self.total = sum(f.stat().st_size for f in files)
        self.done = 0
        self.current: IO[bytes] | None = None

    def fraction(self) -> float | None:
        if not self.total:
            return None
        position = self.current.tell() if self.current is not None and not self.current.closed else 0
        return min(1.0, (self.done + position) / self.total)


def apple_health_records(
    files: Sequence[Path],
    *,
    patient_id: str,
    device_id: str,
    summary: ImportSummary,
    meter: InputMeter | None = None,
    received_time: datetime | None = None,
) -> Iterator[MappedRecord]:
    """Stream ``export.xml`` files; broken XML rejects the rest of that file (with its line).

    ``read`` counts the records mapped or rejected; record types without a metric (body mass,
    in-bed intervals, activity summaries) are passed over by the adapter uncounted.
    """
    for file in files:
        errors: list[AdapterError] = []
        try:
            with file.open("rb") as fh:
                if meter is not None:
                    meter.current = fh
                for sample in parse_export(
                    fh, patient_id=patient_id, device_id=device_id, received_time=received_time, errors=errors
                ):
                    _report_records(file, errors, summary)
                    summary.read += 1
                    yield patient_id, "BiometricSample", sample
                _report_records(file, errors, summary)
        except AdapterError as exc:  # malformed XML: nothing after this point can be read
            _report_records(file, errors, summary)
            summary.reject(Rejected(None, _where(file, exc), exc.message))
        except OSError as exc:
            summary.reject(Rejected(None, str(file), f"unreadable file: {exc.strerror}"))
        finally:
            if meter is not None:
                meter.done += file.stat().st_size if file.exists() else 0
                meter.current = None


def _report_records(file: Path, errors: list[AdapterError], summary: ImportSummary) -> None:
    for err in errors:
        summary.read += 1
        summary.reject(Rejected(None, _where(file, err), err.message))
    errors.clear()
