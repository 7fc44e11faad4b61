"""Run a connector job: read, map, audit, produce, flush, and say exactly what is safe.

Each ``run_*`` function builds one job on a private event loop, runs it with
:func:`run_job` and returns a :class:`JobResult`. A job that cannot start (a bad argument,
a missing key, an unreadable input, MongoDB down) raises a ``ConnectorError`` before
anything is sent; once it runs, failures end up in ``JobResult.error`` instead.

:func:`run_job`, in order:

1. opens the extraction audit (a COLLECT event per patient, stored before their first record);
2. sends every record with ``connectors.delivery.deliver`` until the input ends or SIGTERM or
   SIGINT asks it to stop (the records already sent are flushed either way);
3. counts what Kafka did not acknowledge, audit events included;
4. commits the job (patient index, sync cursor) only when everything was acknowledged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

from connectors.delivery import Delivery, ImportSummary, Progress, Rejected, StopFlag, deliver
from connectors.exceptions import ConnectorError, JobArgumentError
from connectors.jobs.audit import ExtractionAudit
from connectors.jobs.fhir import EHR_SOURCE, fhir_files_job, fhir_sync_job
from connectors.jobs.keys import field_cipher, pseudonym_key
from connectors.jobs.model import Job, JobResult, Reporting
from connectors.jobs.wearables import WearableFormat, WearerIds, wearable_job
from novamind.platform.privacy.audit import Purpose
from novamind.platform.privacy.exceptions import AuditError
from novamind.platform.producer import EventProducer
from novamind.platform.settings import Settings
from schemas.codec import AvroCodec
from schemas.topics import TopicName

FLUSH_TIMEOUT_S = 60.0


def run_fhir_files(
    paths: Sequence[str | Path],
    settings: Settings,
    *,
    source: str = EHR_SOURCE,
    as_of: dt.date | None = None,
    purpose: str = Purpose.TREATMENT,
    flush_timeout: float = FLUSH_TIMEOUT_S,
    reporting: Reporting | None = None,
) -> JobResult:
    """Import FHIR R4 Bundles, resources or NDJSON bulk exports (files or directories) to
    ``ehr-clinical-events``. ``as_of`` dates the age bands (default: today, UTC)."""
    check_purpose(purpose)
    key = pseudonym_key(settings)
    cipher = field_cipher(settings)
    return _run(
        lambda loop: fhir_files_job(
            paths, settings, loop, key=key, cipher=cipher, source=source, as_of=as_of
        ),
        settings,
        purpose=purpose,
        flush_timeout=flush_timeout,
        reporting=reporting,
    )


def run_fhir_sync(
    settings: Settings,
    *,
    base_url: str,
    token_url: str,
    client_id: str,
    client_secret_file: Path,
    state_dir: Path,
    types: Sequence[str] | None = None,
    page_size: int = 200,
    source: str = EHR_SOURCE,
    as_of: dt.date | None = None,
    purpose: str = Purpose.TREATMENT,
    flush_timeout: float = FLUSH_TIMEOUT_S,
    reporting: Reporting | None = None,
) -> JobResult:
    """Sync a FHIR server's resources changed since the cursor in ``state_dir`` (all mapped
    types unless ``types``); the cursor advances only when Kafka acknowledged everything."""
    check_purpose(purpose)
    key = pseudonym_key(settings)
    cipher = field_cipher(settings)
    return _run(
        lambda loop: fhir_sync_job(
            settings,
            loop,
            base_url=base_url,
            token_url=token_url,
            client_id=client_id,
            client_secret_file=client_secret_file,
            state_dir=state_dir,
            key=key,
            cipher=cipher,
            types=types,
            page_size=page_size,
            source=source,
            as_of=as_of,
        ),
        settings,
        purpose=purpose,
        flush_timeout=flush_timeout,
        reporting=reporting,
    )


def run_wearable(
    fmt: WearableFormat,
    paths: Sequence[str | Path],
    settings: Settings,
    *,
    patient: str | None = None,
    mrn: str | None = None,
    mrn_system: str | None = None,
    device_user: str | None = None,
    registry: Path | None = None,
    time_zone: str | None = None,
    purpose: str = Purpose.TREATMENT,
    flush_timeout: float = FLUSH_TIMEOUT_S,
    reporting: Reporting | None = None,
) -> JobResult:
    """Import one patient's wearable files (Fitbit Web API responses, Apple Health
    ``export.xml``, Open mHealth data points) to ``wearable-biometrics``. Fitbit times are
    local, so Fitbit needs ``time_zone`` (an IANA name) or a ``registry`` that has it."""
    check_purpose(purpose)
    key = pseudonym_key(settings)
    ids = WearerIds(patient, mrn, mrn_system, device_user, registry)
    return _run(
        lambda _loop: wearable_job(fmt, paths, key, ids, time_zone=time_zone),
        settings,
        purpose=purpose,
        flush_timeout=flush_timeout,
        reporting=reporting,
    )


def check_purpose(purpose: str) -> None:
    """``JobArgumentError`` unless ``purpose`` is a purpose of use the audit knows."""
    if purpose not in {p.value for p in Purpose}:
        raise JobArgumentError(f"unknown purpose {purpose!r}; one of {', '.join(Purpose)}")


def _run(
    build: Callable[[asyncio.AbstractEventLoop], Job],
    settings: Settings,
    *,
    purpose: str,
    flush_timeout: float,
    reporting: Reporting | None,
) -> JobResult:
    """Build the job on a private event loop, run it, close it (its warning goes in the result)."""
    loop = asyncio.new_event_loop()
    try:
        job = build(loop)
        warning = None
        try:
            result = run_job(
                job, settings, loop, purpose=purpose, flush_timeout=flush_timeout, reporting=reporting
            )
        finally:
            if job.close is not None:
                warning = job.close()
        return result if warning is None else dataclasses.replace(result, warnings=(warning,))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def run_job(
    job: Job,
    settings: Settings,
    loop: asyncio.AbstractEventLoop,
    *,
    purpose: str = Purpose.TREATMENT,
    flush_timeout: float = FLUSH_TIMEOUT_S,
    reporting: Reporting | None = None,
) -> JobResult:
    """Send the job's records with the idempotent producer, audited; see the module docstring.

    ``StoreUnavailable`` when the audit log does not answer (nothing is sent then).
    """
    producer = EventProducer(kafka=settings.kafka, client_id=f"connect-{job.label}")
    audit = ExtractionAudit.open(settings, loop=loop, producer=producer, job=job, purpose=purpose)
    summary = ImportSummary()
    progress = None
    if reporting is not None:
        if reporting.progress:
            progress = Progress(job.label, summary, stream=reporting.stream, fraction=job.fraction)
        summary.on_reject = _rejection_notes(reporting, progress)
    delivery = Delivery(
        producer=producer,
        codec=AvroCodec.from_settings(settings),
        topic_name=settings.kafka.topic,
        routes=job.routes,
        summary=summary,
        on_patient=audit,
        connector=job.label,
    )
    error = None
    try:
        with StopFlag().installed() as stop:
            deliver(job.records(summary), delivery, stop=stop, progress=progress, flush_timeout=flush_timeout)
    except (ConnectorError, AuditError) as exc:
        error = str(exc)
    finally:
        audit.close()
        producer.discard_unsent()  # counted as unacknowledged; a rerun sends them again
    audit_topic = settings.kafka.topic(TopicName.AUDIT_EVENTS)
    audit_unacknowledged = producer.stats.produced[audit_topic] - producer.stats.acknowledged[audit_topic]
    if error is None and audit_unacknowledged:
        error = f"{audit_unacknowledged} audit events not acknowledged by Kafka"
    if summary.complete and error is None and job.commit is not None:
        try:
            job.commit()
        except (ConnectorError, OSError) as exc:  # safe on Kafka, read again next time
            error = f"not committed: {exc}"
    return JobResult(
        connector=job.label, summary=summary, audited=audit.recorded, free_text=job.free_text, error=error
    )


def _rejection_notes(reporting: Reporting, progress: Progress | None) -> Callable[[Rejected], None]:
    def note(item: Rejected) -> None:
        text = f"{reporting.prefix}{item.line()}"
        if progress is not None:
            progress.note(text)  # without tearing the progress line
        else:
            reporting.stream.write(text + "\n")

    return note
