"""``novamind dataset export``: a de-identified, quality-gated, time-split training dataset.

Reads the last revision of every patient-day from ``patient-daily-features`` and the twins'
age band and sex from MongoDB, then writes ``train.avro``, ``validation.avro``, ``test.avro``
and ``manifest.json`` into a new directory (see ``novamind.app.datasets``). Every attempt that
read patient data is audited: an EXPORT event, ALLOWED with the counts, or DENIED with the
reason when the quality gate or the split refuses.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

from novamind.app.datasets.exceptions import DatasetError
from novamind.platform.exceptions import UsageError
from novamind.platform.privacy.exceptions import AuditError
from novamind.platform.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dataset",
        help="export a de-identified training dataset",
        description="Build de-identified training datasets from the daily features and twins.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    export = actions.add_parser(
        "export",
        help="write train/validation/test Avro files and a manifest to a new directory",
        description=(
            "Quality gate: days marked below the quality standards are never exported; the "
            "export is refused, naming them, when their share of the days with data exceeds "
            "1 - --min-passing-share. Split: by real date for all patients, train < "
            "validation-from <= validation < test-from <= test, dropping --gap-days after each "
            "boundary. Pseudonyms are re-keyed with a random per-export key that is not stored; "
            "each patient's dates are shifted by a random number of days."
        ),
    )
    export.add_argument("-o", "--output", type=Path, required=True, help="directory to create")
    export.add_argument("--actor", default=None, help="who exports (default: your OS user name)")
    export.add_argument("--purpose", default="RESEARCH", help="purpose of use for the audit log (RESEARCH)")
    export.add_argument("--train-share", type=float, default=0.7, help="share of the date span (0.7)")
    export.add_argument("--validation-share", type=float, default=0.15, help="share of the date span (0.15)")
    export.add_argument(
        "--validation-from", type=_date, help="first validation day (real date; with --test-from)"
    )
    export.add_argument("--test-from", type=_date, help="first test day (real date)")
    export.add_argument("--gap-days", type=int, default=7, help="days dropped after each boundary (7)")
    export.add_argument("--max-shift-days", type=int, default=365, help="largest date shift (365)")
    export.add_argument(
        "--shift-whole-weeks", action="store_true", help="shift by whole weeks (keeps weekdays)"
    )
    export.add_argument(
        "--min-passing-share",
        type=float,
        default=1.0,
        help="refuse below this share of days meeting the quality standards (1.0); failing days are dropped",
    )
    parser.set_defaults(handler=run)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def run(args: argparse.Namespace, settings: Settings) -> int:
    # lazy: the export's readers and writers (pymongo, fastavro, the twin state codec) take ~1 s
    import structlog
    from confluent_kafka import KafkaException
    from pymongo.errors import PyMongoError

    from novamind.app.datasets.export import ExportParameters
    from novamind.app.datasets.job import audited_export
    from novamind.app.datasets.sources import read_features
    from novamind.platform.privacy.audit import Purpose, os_user
    from novamind.platform.producer import EventProducer

    try:
        purpose = Purpose(args.purpose.upper())
    except ValueError as exc:
        raise UsageError(f"unknown purpose {args.purpose!r}; one of {', '.join(Purpose)}") from exc
    if args.output.exists():
        raise UsageError(f"{args.output} already exists; exports never overwrite")
    try:
        parameters = ExportParameters(
            train_share=args.train_share,
            validation_share=args.validation_share,
            validation_from=args.validation_from,
            test_from=args.test_from,
            gap_days=args.gap_days,
            max_shift_days=args.max_shift_days,
            shift_whole_weeks=args.shift_whole_weeks,
            min_passing_share=args.min_passing_share,
        )
    except DatasetError as exc:
        raise UsageError(str(exc)) from exc
    export_id = uuid.uuid4().hex
    staging = args.output.parent / f".{args.output.name}.{export_id}.partial"
    producer = EventProducer(kafka=settings.kafka, client_id=f"{settings.service_name}-dataset-export")
    log = structlog.get_logger(__name__)
    try:
        features = read_features(settings)
        manifest = asyncio.run(
            audited_export(
                settings,
                features,
                parameters,
                producer=producer,
                export_id=export_id,
                staging=staging,
                actor=args.actor or os_user(),
                purpose=purpose,
            )
        )
        staging.rename(args.output)
    except (DatasetError, AuditError) as exc:
        log.warning("dataset_export_refused", export_id=export_id, reason=type(exc).__name__)
        raise UsageError(str(exc)) from exc
    except (KafkaException, PyMongoError) as exc:
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise UsageError(f"Kafka or MongoDB unavailable, nothing exported: {detail}") from exc
    except OSError as exc:
        raise UsageError(f"could not write the export to {args.output}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if producer.flush(15.0):
            print(
                "novamind dataset: the audit event is stored in MongoDB but was not acknowledged "
                "by Kafka (audit-events)",
                file=sys.stderr,
            )
    rows = {name: entry["rows"] for name, entry in manifest["files"].items()}
    log.info("dataset_exported", export_id=export_id, subjects=manifest["counts"]["subjects"], **rows)
    print(
        f"export {export_id} -> {args.output}: "
        + ", ".join(
            f"{name} {n} rows ({manifest['files'][name]['subjects']} subjects)" for name, n in rows.items()
        )
        + f"; {manifest['quality']['days_failing_dropped']} failing days dropped; manifest.json"
    )
    return 0

