"""``novamind audit query``: read the append-only audit log."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from typing import Any

from novamind.platform.settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="query the audit log (who accessed which patient's data, why, when)",
        description="Read audit events from the append-only MongoDB collection audit_log.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    query = actions.add_parser("query", help="print the events matching every given filter")
    query.add_argument("--patient", help="patient pseudonym (p_ + 32 hex characters)")
    query.add_argument("--actor", help="principal that acted")
    query.add_argument("--purpose", help="purpose of use, e.g. TREATMENT")
    query.add_argument(
        "--action",
        dest="audit_action",
        choices=["COLLECT", "ACCESS", "EXPORT", "REIDENTIFY"],
        help="kind of event",
    )
    query.add_argument("--outcome", choices=["ALLOWED", "DENIED"], help="allowed or denied")
    query.add_argument("--since", type=parse_time, help="from this time on (ISO 8601; UTC if naive)")
    query.add_argument("--until", type=parse_time, help="before this time (ISO 8601; exclusive)")
    query.add_argument("--limit", type=int, default=1000, help="at most this many events (1000)")
    query.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.set_defaults(handler=run)


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or date-time; naive values are UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def run(args: argparse.Namespace, settings: Settings) -> int:
    # lazy: the audit log loads pymongo, the Avro codec and the record models (~0.1 s)
    from novamind.platform.privacy.audit import AuditQuery, open_audit_log
    from schemas.models import AuditAction, AuditOutcome

    query = AuditQuery(
        patient_id=args.patient,
        actor=args.actor,
        purpose=args.purpose,
        action=AuditAction(args.audit_action) if args.audit_action else None,
        outcome=AuditOutcome(args.outcome) if args.outcome else None,
        since=args.since,
        until=args.until,
        limit=args.limit,
    )

    async def fetch() -> list[Any]:
        async with open_audit_log(settings) as log:
            return list(await log.query(query))

    for event in asyncio.run(fetch()):
        if args.json:
            print(event.model_dump_json())
            continue
        details = " ".join(f"{k}={v}" for k, v in sorted(event.details.items()))
        print(
            f"{event.event_time.isoformat()} {event.actor} {event.action} {event.outcome} "
            f"patient={event.patient_id or '-'} purpose={event.purpose} "
            f"resource={event.resource} {details}".rstrip()
        )
    return 0
