"""``novamind connect``: read vendor files (or a FHIR server) and produce contract events.

Subcommands: ``fhir`` (Bundles, directories, NDJSON bulk exports), ``fhir-sync`` (incremental
REST sync), ``fitbit``, ``apple-health`` and ``openmhealth``. Each runs the shared loop of
``connectors.delivery`` with the idempotent ``EventProducer``; before a patient's first record
is sent, one COLLECT audit event (system, scopes, pseudonym, purpose) is stored. Rejected items
are printed on stderr, one line each; the last stdout line is the JSON summary.

Exit status: 0 when every record sent was acknowledged, 1 when not (or the run failed midway),
128 + signal number after SIGTERM/SIGINT (the records already sent are flushed first), 2 for
a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from novamind.platform.settings import Settings

T = TypeVar("T")
PSEUDONYM = re.compile(r"p_[0-9a-f]{32}")
MAX_DETAIL = 128  # novamind.platform.privacy.audit.MAX_DETAIL_LENGTH
FITBIT_SCOPES = "activity heartrate sleep"  # OAuth scopes of the endpoints the adapter reads
OMH_SCOPES = "omh:heart-rate omh:step-count omh:sleep-episode"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "connect",
        help="import FHIR, Fitbit, Apple Health or Open mHealth data to the source topics",
        description="Read vendor files (or sync a FHIR server), map them to contract events and "
        "produce them keyed by patient pseudonym; print a one-line JSON summary.",
        epilog="Exit 0 when everything sent was acknowledged, 1 when not, 128+N after signal N.",
    )
    kinds = parser.add_subparsers(dest="connector", metavar="CONNECTOR", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--purpose", default="TREATMENT", help="purpose of use for the audit (TREATMENT)")
    common.add_argument("--no-progress", action="store_true", help="no progress line on stderr")
    common.add_argument(
        "--flush-timeout", type=float, default=60.0, help="seconds to wait for acknowledgements (60)"
    )
    common.add_argument(
        "--metrics-port", type=int, default=None, help="serve Prometheus /metrics on this port while running"
    )
    fhir_opts = argparse.ArgumentParser(add_help=False)
    fhir_opts.add_argument("--source", default="fhir:ehr", help="source label of the records (fhir:ehr)")
    fhir_opts.add_argument(
        "--as-of", type=dt.date.fromisoformat, default=None, help="date for age bands (default: today)"
    )

    fhir = kinds.add_parser(
        "fhir", parents=[common, fhir_opts], help="FHIR R4 Bundles, resources or NDJSON bulk-export files"
    )
    fhir.add_argument("paths", nargs="+", metavar="PATH", help=".json / .ndjson files or directories")

    sync = kinds.add_parser(
        "fhir-sync", parents=[common, fhir_opts], help="incremental sync from a FHIR server's REST API"
    )
    sync.add_argument("--base-url", required=True, help="FHIR base URL, e.g. https://ehr.example/fhir")
    sync.add_argument("--token-url", required=True, help="OAuth2 token endpoint (client credentials)")
    sync.add_argument("--client-id", required=True)
    sync.add_argument("--client-secret-file", type=Path, required=True, help="file holding the secret")
    sync.add_argument("--state-dir", type=Path, required=True, help="the sync cursor lives here")
    sync.add_argument("--types", default=None, help="comma-separated resource types (default: all mapped)")
    sync.add_argument("--page-size", type=int, default=200)

    for name, vendor, files_help in (
        ("fitbit", "Fitbit Web API", "Fitbit Web API JSON responses (files or directories)"),
        ("apple-health", "Apple Health", "Apple Health export.xml files"),
        ("openmhealth", "Open mHealth", "Open mHealth JSON data points (files or directories)"),
    ):
        wear = kinds.add_parser(name, parents=[common], help=f"{vendor} data for one patient")
        wear.add_argument("paths", nargs="+", metavar="PATH", help=files_help)
        who = wear.add_mutually_exclusive_group(required=True)
        who.add_argument("--patient", metavar="PSEUDONYM", help="the patient's pseudonym (p_ + 32 hex)")
        who.add_argument(
            "--mrn", metavar="VALUE", help="the patient's MRN, pseudonymised here (with --mrn-system)"
        )
        wear.add_argument("--mrn-system", metavar="URI", help="identifier system of --mrn")
        wear.add_argument(
            "--device-user", metavar="ID", help="vendor user/device id; stored only as a keyed hash"
        )
        wear.add_argument("--registry", type=Path, help="device registry file: the device must be linked")
        if name == "fitbit":
            wear.add_argument("--timezone", help="the user's IANA time zone (default: from --registry)")
    parser.set_defaults(handler=run)


@dataclass
class Job:
    """One connector run: where records come from and what the audit says about it."""

    label: str
    actor: str
    system: str
    scopes: str
    routes: Mapping[str, str]
    records: Callable[[Any], Iterator[Any]]  # (ImportSummary) -> mapped records
    fraction: Callable[[], float | None] | None = None
    commit: Callable[[], None] | None = None  # only after every record was acknowledged
    free_text: str | None = None  # FHIR notes and narratives: "encrypted" or "dropped"
    close: Callable[[], None] | None = None
    identity: Callable[[str], str | None] | None = None  # FHIR: what a pseudonym was made of


def run(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.exceptions import ConnectorError
    from novamind.platform.exceptions import UsageError
    from novamind.platform.privacy.audit import Purpose

    if args.purpose not in {p.value for p in Purpose}:
        raise UsageError(f"unknown purpose {args.purpose!r}; one of {', '.join(Purpose)}")
    key = _pseudonym_key(settings)
    loop = asyncio.new_event_loop()
    try:
        try:
            builder = BUILDERS[args.connector]
            if args.connector in ("fhir", "fhir-sync"):
                cipher = _field_cipher(settings)
                job = builder(args, key, loop, cipher=cipher, settings=settings)
                job.free_text = "dropped" if cipher is None else "encrypted"
            else:
                job = builder(args, key, loop)
        except ConnectorError as exc:
            raise UsageError(str(exc)) from exc
        try:
            return _execute(job, args, settings, loop)
        finally:
            if job.close is not None:
                job.close()
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def _execute(job: Job, args: argparse.Namespace, settings: Settings, loop: asyncio.AbstractEventLoop) -> int:
    from connectors.delivery import Delivery, ImportSummary, Progress, StopFlag, deliver
    from connectors.exceptions import ConnectorError
    from novamind.platform.privacy.exceptions import AuditError
    from novamind.platform.producer import EventProducer
    from schemas.codec import AvroCodec
    from schemas.topics import TopicName

    if getattr(args, "metrics_port", None) is not None:
        from novamind.platform.exceptions import UsageError
        from novamind.platform.metrics import MetricsError, start_http_exporter

        try:
            start_http_exporter(args.metrics_port)
        except MetricsError as exc:
            raise UsageError(str(exc)) from exc
    producer = EventProducer(kafka=settings.kafka, client_id=f"connect-{job.label}")
    audit = ExtractionAudit.open(settings, loop=loop, producer=producer, job=job, purpose=args.purpose)
    summary = ImportSummary()
    progress = None if args.no_progress else Progress(job.label, summary, fraction=job.fraction)
    summary.on_reject = lambda item: _note(progress, f"novamind connect {job.label}: {item.line()}")
    delivery = Delivery(
        producer=producer,
        codec=AvroCodec.from_settings(settings),
        topic_name=settings.kafka.topic,
        routes=job.routes,
        summary=summary,
        on_patient=audit,
        connector=job.label,
    )
    stop, error = StopFlag(), None
    try:
        with stop.installed():
            deliver(
                job.records(summary), delivery, stop=stop, progress=progress, flush_timeout=args.flush_timeout
            )
    except (ConnectorError, AuditError) as exc:
        error = str(exc)
    finally:
        audit.close()
        producer.discard_unsent()  # counted as unacknowledged; a rerun sends them again
    audit_topic = settings.kafka.topic(TopicName.AUDIT_EVENTS)
    audit_unacknowledged = producer.stats.produced[audit_topic] - producer.stats.acknowledged[audit_topic]
    if error is None and audit_unacknowledged:
        error = f"{audit_unacknowledged} audit events not acknowledged by Kafka"
    complete = summary.complete and error is None
    if complete and job.commit is not None:
        job.commit()
    out = summary.as_dict() | {"connector": job.label, "audited": audit.recorded}
    if job.free_text is not None:
        out["free_text"] = job.free_text
    if error is not None:
        out["error"] = error
        print(f"novamind connect {job.label}: {error}", file=sys.stderr)
    print(json.dumps(out, default=str))
    if summary.interrupted is not None:
        return 128 + stop.signum
    return 0 if complete else 1


def _note(progress: Any, text: str) -> None:
    if progress is not None:
        progress.note(text)
    else:
        print(text, file=sys.stderr)


def _field_cipher(settings: Settings) -> Any | None:
    """The field cipher when field keys are configured (FHIR free text and parked resources
    are then encrypted), else None (free text is dropped)."""
    from novamind.platform.exceptions import UsageError
    from novamind.platform.privacy.exceptions import KeyConfigurationError
    from novamind.platform.privacy.fieldcrypt import FieldCipher

    security = settings.security
    if not security.field_keys and security.field_keys_file is None:
        return None
    try:
        return FieldCipher.from_settings(security)
    except KeyConfigurationError as exc:
        raise UsageError(str(exc)) from exc


def _encryptor(cipher: Any | None) -> Callable[[str, bytes], dict[str, Any]] | None:
    if cipher is None:
        return None
    return lambda text, context: cipher.encrypt(text, context=context).model_dump()


def _patient_index(
    settings: Settings, loop: asyncio.AbstractEventLoop, *, key: bytes, source: str, cipher: Any | None
) -> tuple[Any, Callable[[], None]]:
    """The persistent FHIR patient index (MongoDB, beside the re-identification vault) and
    its closer; a usage error when MongoDB does not answer."""
    from connectors.ehr.patients import MongoPatientIndex
    from connectors.exceptions import PatientIndexError
    from novamind.platform.exceptions import UsageError
    from novamind.platform.mongo import database, mongo_client

    client = mongo_client(settings.mongo, app_name="novamind-connect")
    index = MongoPatientIndex(
        db=database(client, settings.mongo), loop=loop, key=key, source=source, cipher=cipher
    )
    try:
        index.ensure_indexes()
    except PatientIndexError as exc:
        loop.run_until_complete(client.close())
        raise UsageError(f"the FHIR patient index is unavailable: {exc}") from exc

    def close() -> None:
        try:
            index.flush()  # Patients seen by an interrupted run are remembered all the same
        except PatientIndexError as exc:  # their resources wait (parked) until they are seen again
            print(f"novamind connect: patient index not updated: {exc}", file=sys.stderr)
        finally:
            loop.run_until_complete(client.close())

    return index, close


def _pseudonym_key(settings: Settings) -> bytes:
    from connectors.pseudonyms import MIN_KEY_BYTES
    from novamind.platform.exceptions import UsageError

    try:
        key = settings.security.pseudonym_key_bytes()
    except (ValueError, OSError) as exc:
        raise UsageError(str(exc)) from exc
    if len(key) < MIN_KEY_BYTES:
        raise UsageError(f"the pseudonym key must be at least {MIN_KEY_BYTES} bytes")
    return key


def scope_details(scopes: str) -> dict[str, str]:
    """Scopes as audit details of at most 128 characters each: ``scopes``, ``scopes_2``, ..."""
    chunks: list[str] = []
    for word in scopes.split():
        if chunks and len(chunks[-1]) + 1 + len(word) <= MAX_DETAIL:
            chunks[-1] += " " + word
        else:
            chunks.append(word[:MAX_DETAIL])
    return {("scopes" if i == 0 else f"scopes_{i + 1}"): c for i, c in enumerate(chunks)}


class ExtractionAudit:
    """Stores one COLLECT event per patient of the run, before that patient's first record."""

    def __init__(
        self, *, loop: asyncio.AbstractEventLoop, log: Any, client: Any, job: Job, purpose: str
    ) -> None:
        self.loop, self.log, self.client, self.job, self.purpose = loop, log, client, job, purpose
        self.details = {
            "connector": job.label,
            "system": job.system[:MAX_DETAIL],
            "run": uuid.uuid4().hex[:16],
            **scope_details(job.scopes),
        }
        self.recorded = 0

    @classmethod
    def open(
        cls, settings: Settings, *, loop: asyncio.AbstractEventLoop, producer: Any, job: Job, purpose: str
    ) -> ExtractionAudit:
        """Connect to the audit log (MongoDB, then ``audit-events``); a usage error when down."""
        from pymongo.errors import PyMongoError

        from novamind.platform.exceptions import UsageError
        from novamind.platform.mongo import database, mongo_client
        from novamind.platform.privacy.audit import AuditLog
        from schemas.codec import AvroCodec
        from schemas.topics import TopicName

        client = mongo_client(settings.mongo, app_name="novamind-connect")
        log = AuditLog(
            db=database(client, settings.mongo),
            codec=AvroCodec.from_settings(settings),
            producer=producer,
            topic=settings.kafka.topic(TopicName.AUDIT_EVENTS),
        )
        try:
            loop.run_until_complete(log.ensure_indexes())
        except PyMongoError as exc:
            loop.run_until_complete(client.close())
            raise UsageError(f"the audit log is unavailable: {type(exc).__name__}") from exc
        return cls(loop=loop, log=log, client=client, job=job, purpose=purpose)

    def __call__(self, patient_id: str) -> None:
        from schemas.models import AuditAction

        details = self.details
        basis = self.job.identity(patient_id) if self.job.identity is not None else None
        if basis is not None:  # FHIR: mrn, identifier or logical-id
            details = {**details, "identity": basis}
        self.loop.run_until_complete(
            self.log.record(
                actor=self.job.actor,
                action=AuditAction.COLLECT,
                purpose=self.purpose,
                resource=self.job.system,
                patient_id=patient_id,
                details=details,
            )
        )
        self.recorded += 1

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())


# ------------------------------------------------------------------ the connectors
def _fhir_job(
    args: argparse.Namespace,
    key: bytes,
    loop: asyncio.AbstractEventLoop,
    *,
    cipher: Any | None = None,
    settings: Settings,
) -> Job:
    from itertools import chain

    from connectors.delivery import EHR_ROUTES
    from connectors.ehr.mapping import MODELS, FhirMapper
    from connectors.ehr.reader import iter_resources
    from connectors.sources import FHIR_SUFFIXES, fhir_records, input_files
    from schemas.topics import Principal

    input_files(args.paths, FHIR_SUFFIXES)  # every path exists and holds something to read
    index, close = _patient_index(settings, loop, key=key, source=args.source, cipher=cipher)
    mapper = FhirMapper(
        key=key,
        as_of=args.as_of or _today(),
        source=args.source,
        encrypt_text=_encryptor(cipher),
        patients=index,
    )
    resources = chain.from_iterable(iter_resources(p) for p in args.paths)
    return Job(
        label="fhir",
        actor=Principal.CONNECTOR_EHR.value,
        system=args.source,
        scopes=" ".join(f"system/{t}.read" for t in MODELS),
        routes=EHR_ROUTES,
        records=lambda summary: fhir_records(resources, mapper, summary),
        commit=index.commit,
        close=close,
        identity=mapper.identities.get,
    )


def _fhir_sync_job(
    args: argparse.Namespace,
    key: bytes,
    loop: asyncio.AbstractEventLoop,
    *,
    cipher: Any | None = None,
    settings: Settings,
) -> Job:
    import aiohttp

    from connectors.delivery import EHR_ROUTES
    from connectors.ehr.mapping import MODELS, FhirMapper
    from connectors.ehr.rest import FhirRestSync
    from connectors.exceptions import AdapterError, PatientIndexError
    from connectors.sources import fhir_records
    from schemas.topics import Principal

    if not re.match(r"https?://", args.base_url):
        raise AdapterError(f"--base-url must be an http(s) URL, got {args.base_url!r}")
    types = tuple(t.strip() for t in args.types.split(",")) if args.types else tuple(MODELS)
    unknown = [t for t in types if t not in MODELS]
    if unknown:
        raise AdapterError(f"--types: no mapping for {', '.join(unknown)}; known: {', '.join(MODELS)}")
    try:
        secret = args.client_secret_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        where = str(args.client_secret_file)
        raise AdapterError(f"unreadable client secret file: {exc.strerror}", path=where) from exc
    state: Path = args.state_dir
    state.mkdir(parents=True, exist_ok=True)
    cursor, pending, legacy = state / "cursor.json", state / "cursor.pending.json", state / "patients.json"
    # The sync advances a scratch cursor; it replaces the real one only once Kafka has
    # acknowledged every record, so a failed run is read again next time.
    if cursor.exists():
        shutil.copyfile(cursor, pending)
    else:
        pending.unlink(missing_ok=True)
    try:
        earlier = json.loads(legacy.read_text(encoding="utf-8")) if legacy.exists() else {}
    except ValueError as exc:
        raise AdapterError("patient index is not valid JSON", path=str(legacy)) from exc
    index, close_index = _patient_index(settings, loop, key=key, source=args.source, cipher=cipher)
    for reference, pid in earlier.items():  # the index a state directory used to keep
        if reference.startswith("Patient/"):
            index.record([reference], pid, "earlier-run")
    if earlier:
        try:
            index.flush()
        except PatientIndexError as exc:
            close_index()
            raise AdapterError(f"earlier patient index not imported: {exc}", path=str(legacy)) from exc
        os.replace(legacy, legacy.with_suffix(".json.imported"))

    async def session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))

    http = loop.run_until_complete(session())
    sync = FhirRestSync(
        session=http,
        base_url=args.base_url,
        token_url=args.token_url,
        client_id=args.client_id,
        client_secret=secret,
        cursor_path=pending,
        resource_types=types,
        page_size=args.page_size,
    )
    mapper = FhirMapper(
        key=key,
        as_of=args.as_of or _today(),
        source=args.source,
        encrypt_text=_encryptor(cipher),
        patients=index,
        fetch_patient=lambda reference: loop.run_until_complete(sync.patient(reference)),
    )

    def commit() -> None:
        index.commit()
        if pending.exists():
            os.replace(pending, cursor)

    def close() -> None:
        loop.run_until_complete(http.close())
        close_index()

    return Job(
        label="fhir-sync",
        actor=Principal.CONNECTOR_EHR.value,
        system=args.base_url.split("?")[0],
        scopes=sync.scopes,
        routes=EHR_ROUTES,
        records=lambda summary: fhir_records(_blocking(loop, sync.resources()), mapper, summary),
        commit=commit,
        close=close,
        identity=mapper.identities.get,
    )


def _blocking(loop: asyncio.AbstractEventLoop, items: AsyncIterator[T]) -> Iterator[T]:
    """Iterate an async iterator from synchronous code on a private, non-running loop."""
    while True:
        try:
            yield loop.run_until_complete(anext(items))
        except StopAsyncIteration:
            return


@dataclass(frozen=True)
class Wearer:
    patient_id: str
    device_id: str
    time_zone: str | None


def wearer(args: argparse.Namespace, vendor: str, key: bytes) -> Wearer:
    """The patient pseudonym and device ref of a wearable import; real ids go no further.

    With ``--registry`` the device must be linked to the patient (``DeviceNotLinked``).
    """
    from connectors.exceptions import AdapterError, DeviceNotLinked
    from connectors.pseudonyms import device_ref, pseudonymize
    from connectors.wearables.devices import DeviceRegistry

    if args.patient is not None:
        if not PSEUDONYM.fullmatch(args.patient):
            raise AdapterError(
                "--patient must be a pseudonym (p_ + 32 hex); use --mrn/--mrn-system for an MRN"
            )
        patient_id = args.patient
    else:
        if not args.mrn_system:
            raise AdapterError("--mrn needs --mrn-system (the identifier system of the MRN)")
        patient_id = pseudonymize(args.mrn_system, args.mrn, key=key)
    ref = device_ref(vendor, args.device_user or patient_id, key=key)
    zone = getattr(args, "timezone", None)
    if args.registry is not None:
        if not args.registry.is_file():
            raise AdapterError("no device registry file", path=str(args.registry))
        device = DeviceRegistry(key=key, path=args.registry).get(patient_id, ref)
        if device.vendor != vendor:
            raise DeviceNotLinked(f"device {ref} is a {device.vendor} device, not {vendor}")
        zone = zone or device.time_zone
    return Wearer(patient_id, ref, zone)


def _fitbit_job(args: argparse.Namespace, key: bytes, _loop: asyncio.AbstractEventLoop) -> Job:
    from connectors.delivery import WEARABLE_ROUTES
    from connectors.exceptions import AdapterError
    from connectors.sources import fitbit_records, input_files
    from connectors.wearables.common import zone
    from connectors.wearables.fitbit import SOURCE
    from schemas.topics import Principal

    files = input_files(args.paths, (".json",))
    who = wearer(args, SOURCE, key)
    if who.time_zone is None:
        raise AdapterError("Fitbit times are local: give --timezone (IANA name) or a --registry")
    zone(who.time_zone)  # unknown zones fail here, not once per file
    return Job(
        label="fitbit",
        actor=Principal.CONNECTOR_WEARABLES.value,
        system=SOURCE,
        scopes=FITBIT_SCOPES,
        routes=WEARABLE_ROUTES,
        records=lambda summary: fitbit_records(
            files, patient_id=who.patient_id, device_id=who.device_id, tz=who.time_zone or "", summary=summary
        ),
    )


def _apple_health_job(args: argparse.Namespace, key: bytes, _loop: asyncio.AbstractEventLoop) -> Job:
    from connectors.delivery import WEARABLE_ROUTES
    from connectors.sources import InputMeter, apple_health_records, input_files
    from connectors.wearables.apple_health import QUANTITIES, SLEEP_TYPE, SOURCE
    from schemas.topics import Principal

    files = input_files(args.paths, (".xml",))
    who = wearer(args, SOURCE, key)
    meter = InputMeter(files)
    kinds = [*QUANTITIES, SLEEP_TYPE]
    return Job(
        label="apple-health",
        actor=Principal.CONNECTOR_WEARABLES.value,
        system=SOURCE,
        scopes=" ".join(re.sub(r"^HK\w+TypeIdentifier", "", k) for k in kinds),
        routes=WEARABLE_ROUTES,
        records=lambda summary: apple_health_records(
            files, patient_id=who.patient_id, device_id=who.device_id, summary=summary, meter=meter
        ),
        fraction=meter.fraction,
    )


def _openmhealth_job(args: argparse.Namespace, key: bytes, _loop: asyncio.AbstractEventLoop) -> Job:
    from connectors.delivery import WEARABLE_ROUTES
    from connectors.sources import input_files, openmhealth_records
    from connectors.wearables.openmhealth import SOURCE
    from schemas.topics import Principal

    files = input_files(args.paths, (".json",))
    who = wearer(args, SOURCE, key)
    return Job(
        label="openmhealth",
        actor=Principal.CONNECTOR_WEARABLES.value,
        system=SOURCE,
        scopes=OMH_SCOPES,
        routes=WEARABLE_ROUTES,
        records=lambda summary: openmhealth_records(
            files, patient_id=who.patient_id, device_id=who.device_id, summary=summary
        ),
    )


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


BUILDERS: dict[str, Callable[..., Job]] = {  # (args, pseudonym key, loop) -> Job
    "fhir": _fhir_job,
    "fhir-sync": _fhir_sync_job,
    "fitbit": _fitbit_job,
    "apple-health": _apple_health_job,
    "openmhealth": _openmhealth_job,
}
