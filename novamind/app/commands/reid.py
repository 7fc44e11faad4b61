"""``novamind reid lookup``: authorised, audited re-identification of one pseudonym."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from typing import Any

from novamind.platform.exceptions import UsageError
from novamind.platform.privacy.exceptions import (
    KeyConfigurationError,
    PseudonymNotFound,
    ReidentificationDenied,
)
from novamind.platform.settings import Settings

EXIT_DENIED = 3
EXIT_NOT_FOUND = 4


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "reid",
        help="re-identify a pseudonym (restricted, always audited)",
        description=(
            "Look up the source system and MRN behind a patient pseudonym. Only actors listed "
            "in the security settings may do so, for an allowed purpose; every attempt, "
            "allowed or denied, is written to the audit log and the audit-events topic."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    lookup = actions.add_parser("lookup", help="print the identifiers behind PSEUDONYM")
    lookup.add_argument("pseudonym", metavar="PSEUDONYM", help="p_ + 32 hex characters")
    lookup.add_argument("--actor", required=True, help="who asks (your principal)")
    lookup.add_argument("--purpose", required=True, help="why, e.g. TREATMENT or PATIENT_SAFETY")
    lookup.add_argument("--json", action="store_true", help="print a JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    # lazy: pymongo, the Kafka producer and the vault's cryptography take ~0.15 s to import
    from novamind.platform.mongo import database, mongo_client
    from novamind.platform.privacy.audit import open_audit_log
    from novamind.platform.privacy.fieldcrypt import FieldCipher
    from novamind.platform.privacy.reidentification import ReidentificationPolicy, ReidentificationStore
    from novamind.platform.producer import EventProducer

    try:
        cipher = FieldCipher.from_settings(settings.security)
    except KeyConfigurationError as exc:
        raise UsageError(str(exc)) from exc
    producer = EventProducer(kafka=settings.kafka, client_id=f"{settings.service_name}-reid")

    async def lookup() -> Any:
        async with open_audit_log(settings, producer=producer) as audit:
            client = mongo_client(settings.mongo, app_name=f"{settings.service_name}-reid")
            try:
                store = ReidentificationStore(
                    db=database(client, settings.mongo),
                    cipher=cipher,
                    audit=audit,
                    policy=ReidentificationPolicy.from_settings(settings.security),
                )
                return await store.lookup(
                    args.pseudonym,
                    actor=args.actor,
                    purpose=args.purpose,
                    details={"os_user": getpass.getuser(), "via": "cli"},
                )
            finally:
                await client.close()

    try:
        identity = asyncio.run(lookup())
    except ReidentificationDenied as exc:
        print(f"novamind reid: denied: {exc} (this attempt is audited)", file=sys.stderr)
        return EXIT_DENIED
    except PseudonymNotFound as exc:
        print(f"novamind reid: {exc} (this look-up is audited)", file=sys.stderr)
        return EXIT_NOT_FOUND
    finally:
        if producer.flush(15.0):
            print(
                "novamind reid: the audit event is stored in MongoDB but was not acknowledged "
                "by Kafka (audit-events)",
                file=sys.stderr,
            )
    if args.json:
        print(json.dumps({"pseudonym": args.pseudonym, "system": identity.system, "mrn": identity.mrn}))
    else:
        print(f"{args.pseudonym} system={identity.system} mrn={identity.mrn}")
    return 0
