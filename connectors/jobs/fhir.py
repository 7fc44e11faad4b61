"""FHIR jobs: files (Bundles, resources, NDJSON bulk exports) and the incremental REST sync.

Both resolve subjects through the persistent patient index in MongoDB (beside the
re-identification vault), where resources whose Patient is not known yet wait (parked).
The sync keeps its cursor in a state directory (:class:`SyncCursor`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import shutil
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TypeVar

import aiohttp

from connectors.delivery import EHR_ROUTES
from connectors.ehr.mapping import MODELS, FhirMapper
from connectors.ehr.patients import MongoPatientIndex
from connectors.ehr.reader import iter_resources
from connectors.ehr.rest import FhirRestSync
from connectors.exceptions import AdapterError, JobArgumentError, PatientIndexError, StoreUnavailable
from connectors.jobs.keys import encryptor
from connectors.jobs.model import Job
from connectors.sources import FHIR_SUFFIXES, fhir_records, input_files
from novamind.platform.mongo import database, mongo_client
from novamind.platform.privacy.fieldcrypt import FieldCipher
from novamind.platform.settings import Settings
from schemas.topics import Principal

T = TypeVar("T")
EHR_SOURCE = "fhir:ehr"  # default source label of FHIR records
FILE_SCOPES = " ".join(f"system/{t}.read" for t in MODELS)


def open_patient_index(
    settings: Settings,
    loop: asyncio.AbstractEventLoop,
    *,
    key: bytes,
    source: str,
    cipher: FieldCipher | None,
) -> tuple[MongoPatientIndex, Callable[[], str | None]]:
    """The persistent FHIR patient index and its closer (which flushes it and returns a
    warning when it cannot); ``StoreUnavailable`` when MongoDB does not answer."""
    client = mongo_client(settings.mongo, app_name="novamind-connect")
    index = MongoPatientIndex(
        db=database(client, settings.mongo), loop=loop, key=key, source=source, cipher=cipher
    )
    try:
        index.ensure_indexes()
    except PatientIndexError as exc:
        loop.run_until_complete(client.close())
        raise StoreUnavailable(f"the FHIR patient index is unavailable: {exc}") from exc

    def close() -> str | None:
        try:
            index.flush()  # Patients seen by an interrupted run are remembered all the same
        except PatientIndexError as exc:  # their resources wait (parked) until they are seen again
            return f"patient index not updated: {exc}"
        finally:
            loop.run_until_complete(client.close())
        return None

    return index, close


def fhir_files_job(
    paths: Sequence[str | Path],
    settings: Settings,
    loop: asyncio.AbstractEventLoop,
    *,
    key: bytes,
    cipher: FieldCipher | None,
    source: str = EHR_SOURCE,
    as_of: dt.date | None = None,
) -> Job:
    """FHIR R4 Bundles, single resources or NDJSON bulk-export files (or directories of them)."""
    input_files(paths, FHIR_SUFFIXES)  # every path exists and holds something to read
    index, close = open_patient_index(settings, loop, key=key, source=source, cipher=cipher)
    mapper = FhirMapper(
        key=key, as_of=as_of or today(), source=source, encrypt_text=encryptor(cipher), patients=index
    )
    resources = chain.from_iterable(iter_resources(p) for p in paths)
    return Job(
        label="fhir",
        actor=Principal.CONNECTOR_EHR.value,
        system=source,
        scopes=FILE_SCOPES,
        routes=EHR_ROUTES,
        records=lambda summary: fhir_records(resources, mapper, summary),
        commit=index.commit,
        free_text=free_text(cipher),
        close=close,
        identity=mapper.identities.get,
    )


@dataclass(frozen=True)
class SyncCursor:
    """The sync's cursor in its state directory (``cursor.json``).

    1. :meth:`begin` copies it to a scratch cursor (``cursor.pending.json``), which the sync
       advances as it reads.
    2. :meth:`commit`, once Kafka has acknowledged every record, replaces the cursor with it.

    A run that fails or is interrupted never commits, so its resources are read again next time.
    """

    state_dir: Path

    @property
    def current(self) -> Path:
        return self.state_dir / "cursor.json"

    @property
    def pending(self) -> Path:
        return self.state_dir / "cursor.pending.json"

    def begin(self) -> Path:
        """Start a run: the scratch cursor the sync may advance."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.current.exists():
            shutil.copyfile(self.current, self.pending)
        else:
            self.pending.unlink(missing_ok=True)
        return self.pending

    def commit(self) -> None:
        if self.pending.exists():
            os.replace(self.pending, self.current)


def import_earlier_index(state_dir: Path, index: MongoPatientIndex) -> bool:
    """Move the patient index a state directory used to keep (``patients.json``) into the
    MongoDB index; the file is then renamed ``patients.json.imported``. False if there was none."""
    legacy = state_dir / "patients.json"
    try:
        earlier = json.loads(legacy.read_text(encoding="utf-8")) if legacy.exists() else {}
    except ValueError as exc:
        raise AdapterError("patient index is not valid JSON", path=str(legacy)) from exc
    for reference, pid in earlier.items():
        if reference.startswith("Patient/"):
            index.record([reference], pid, "earlier-run")
    if not earlier:
        return False
    try:
        index.flush()
    except PatientIndexError as exc:
        raise AdapterError(f"earlier patient index not imported: {exc}", path=str(legacy)) from exc
    os.replace(legacy, legacy.with_suffix(".json.imported"))
    return True


def sync_types(types: Sequence[str] | None) -> tuple[str, ...]:
    """The resource types to sync (default: every mapped type); ``JobArgumentError`` for others."""
    chosen = tuple(types) if types else tuple(MODELS)
    unknown = [t for t in chosen if t not in MODELS]
    if unknown:
        raise JobArgumentError(f"`types`: no mapping for {', '.join(unknown)}; known: {', '.join(MODELS)}")
    return chosen


def fhir_sync_job(
    settings: Settings,
    loop: asyncio.AbstractEventLoop,
    *,
    base_url: str,
    token_url: str,
    client_id: str,
    client_secret_file: Path,
    state_dir: Path,
    key: bytes,
    cipher: FieldCipher | None,
    types: Sequence[str] | None = None,
    page_size: int = 200,
    source: str = EHR_SOURCE,
    as_of: dt.date | None = None,
) -> Job:
    """Incremental sync from a FHIR server's REST API (OAuth2 client credentials); the cursor
    in ``state_dir`` advances only with the job's commit."""
    if not re.match(r"https?://", base_url):
        raise JobArgumentError(f"`base_url` must be an http(s) URL, got {base_url!r}")
    resource_types = sync_types(types)
    try:
        secret = client_secret_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        where = str(client_secret_file)
        raise AdapterError(f"unreadable client secret file: {exc.strerror}", path=where) from exc
    cursor = SyncCursor(state_dir)
    pending = cursor.begin()
    index, close_index = open_patient_index(settings, loop, key=key, source=source, cipher=cipher)
    try:
        import_earlier_index(state_dir, index)
    except AdapterError:
        close_index()
        raise

    async def session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))

    http = loop.run_until_complete(session())
    sync = FhirRestSync(
        session=http,
        base_url=base_url,
        token_url=token_url,
        client_id=client_id,
        client_secret=secret,
        cursor_path=pending,
        resource_types=resource_types,
        page_size=page_size,
    )
    mapper = FhirMapper(
        key=key,
        as_of=as_of or today(),
        source=source,
        encrypt_text=encryptor(cipher),
        patients=index,
        fetch_patient=lambda reference: loop.run_until_complete(sync.patient(reference)),
    )

    def commit() -> None:
        index.commit()
        cursor.commit()

    def close() -> str | None:
        loop.run_until_complete(http.close())
        return close_index()

    return Job(
        label="fhir-sync",
        actor=Principal.CONNECTOR_EHR.value,
        system=base_url.split("?")[0],
        scopes=sync.scopes,
        routes=EHR_ROUTES,
        records=lambda summary: fhir_records(blocking(loop, sync.resources()), mapper, summary),
        commit=commit,
        free_text=free_text(cipher),
        close=close,
        identity=mapper.identities.get,
    )


def blocking(loop: asyncio.AbstractEventLoop, items: AsyncIterator[T]) -> Iterator[T]:
    """Iterate an async iterator from synchronous code on a private, non-running loop."""
    while True:
        try:
            yield loop.run_until_complete(anext(items))
        except StopAsyncIteration:
            return


def free_text(cipher: FieldCipher | None) -> str:
    """What becomes of FHIR notes and narratives: field-encrypted, or dropped without keys."""
    return "dropped" if cipher is None else "encrypted"


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()
