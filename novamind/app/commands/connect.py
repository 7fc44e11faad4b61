"""``novamind connect``: read vendor files (or a FHIR server) and produce contract events.

Subcommands: ``fhir`` (Bundles, directories, NDJSON bulk exports), ``fhir-sync`` (incremental
REST sync), ``fitbit``, ``apple-health`` and ``openmhealth``. Each parses its arguments and
calls the job of ``connectors.jobs`` (which audits and produces); rejected items are printed
on stderr, one line each, and the last stdout line is the JSON summary.

Exit status: 0 when every record sent was acknowledged, 1 when not (or the run failed midway),
128 + signal number after SIGTERM/SIGINT (the records already sent are flushed first), 2 for
a usage error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.exceptions import ConnectorError, JobArgumentError
from connectors.wearables import WearableFormat
from novamind.platform.exceptions import UsageError
from novamind.platform.settings import Settings

if TYPE_CHECKING:
    from connectors.jobs import JobResult

FLAGS = {"time_zone": "--timezone"}  # library argument -> option, where not just --name-with-dashes
OPTIONS = {"patient", "mrn", "mrn_system", "device_user", "registry", "base_url", "types", "time_zone"}


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

    for fmt, vendor, files_help in (
        (WearableFormat.FITBIT, "Fitbit Web API", "Fitbit Web API JSON responses (files or directories)"),
        (WearableFormat.APPLE_HEALTH, "Apple Health", "Apple Health export.xml files"),
        (WearableFormat.OPENMHEALTH, "Open mHealth", "Open mHealth JSON data points (files or directories)"),
    ):
        wear = kinds.add_parser(fmt, parents=[common], help=f"{vendor} data for one patient")
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
        if fmt is WearableFormat.FITBIT:
            wear.add_argument("--timezone", help="the user's IANA time zone (default: from --registry)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.metrics_port is not None:
        _serve_metrics(args.metrics_port)
    try:
        result = _run_job(args, settings)
    except JobArgumentError as exc:
        raise UsageError(exc.spelled(_option)) from exc
    except ConnectorError as exc:
        raise UsageError(str(exc)) from exc
    if result.error is not None:
        print(f"novamind connect {result.connector}: {result.error}", file=sys.stderr)
    for warning in result.warnings:
        print(f"novamind connect: {warning}", file=sys.stderr)
    print(json.dumps(result.as_dict(), default=str))
    if result.summary.interrupted is not None:
        return 128 + signal.Signals[result.summary.interrupted].value
    return 0 if result.complete else 1


def _run_job(args: argparse.Namespace, settings: Settings) -> JobResult:
    """Call the connector's library function with the parsed arguments."""
    # lazy: the FHIR models, aiohttp and the clients (~1 s), which other subcommands and --help skip
    from connectors import jobs

    reporting = jobs.Reporting(
        sys.stderr, prefix=f"novamind connect {args.connector}: ", progress=not args.no_progress
    )
    purpose, flush_timeout = args.purpose, args.flush_timeout
    if args.connector == "fhir":
        return jobs.run_fhir_files(
            args.paths,
            settings,
            source=args.source,
            as_of=args.as_of,
            purpose=purpose,
            flush_timeout=flush_timeout,
            reporting=reporting,
        )
    if args.connector == "fhir-sync":
        return jobs.run_fhir_sync(
            settings,
            base_url=args.base_url,
            token_url=args.token_url,
            client_id=args.client_id,
            client_secret_file=args.client_secret_file,
            state_dir=args.state_dir,
            types=[t.strip() for t in args.types.split(",")] if args.types else None,
            page_size=args.page_size,
            source=args.source,
            as_of=args.as_of,
            purpose=purpose,
            flush_timeout=flush_timeout,
            reporting=reporting,
        )
    return jobs.run_wearable(
        WearableFormat(args.connector),
        args.paths,
        settings,
        patient=args.patient,
        mrn=args.mrn,
        mrn_system=args.mrn_system,
        device_user=args.device_user,
        registry=args.registry,
        time_zone=getattr(args, "timezone", None),
        purpose=purpose,
        flush_timeout=flush_timeout,
        reporting=reporting,
    )


def _serve_metrics(port: int) -> None:
    # lazy: prometheus_client (~60 ms), needed for --metrics-port only
    from novamind.platform.metrics import MetricsError, start_http_exporter

    try:
        start_http_exporter(port)
    except MetricsError as exc:
        raise UsageError(str(exc)) from exc


def _option(name: str) -> str:
    """A library argument as the option that sets it (``base_url`` -> ``--base-url``)."""
    if name not in OPTIONS:
        return f"`{name}`"
    return FLAGS.get(name, "--" + name.replace("_", "-"))
