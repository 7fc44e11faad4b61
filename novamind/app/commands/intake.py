"""``novamind intake serve``: the patient-reporting HTTP intake, producing to Kafka.

Wiring: the real ``EventProducer`` (answers follow Kafka's ack), ``AvroCodec``, the
``FieldCipher`` of ``NOVAMIND_SECURITY__*`` for notes, the ``AuditLog`` (MongoDB, then the
``audit-events`` topic) and the authenticator ``NOVAMIND_AUTH__MODE`` chooses: JWT access tokens
of the identity provider (``jwt``), or the development token file
``NOVAMIND_INTAKE__TOKENS_FILE`` (``static``, the default).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

from novamind.platform.auth.exceptions import KeySetError
from novamind.platform.exceptions import UsageError
from novamind.platform.privacy.exceptions import KeyConfigurationError
from novamind.platform.settings import Settings
from schemas.topics import TopicName

if TYPE_CHECKING:
    from novamind.platform.auth.identity import Authenticator


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "intake",
        help="run the patient-reporting HTTP intake (symptom reports, PHQ-9, GAD-7)",
        description="Serve the intake API; answers only after Kafka acknowledged each event.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    serve = actions.add_parser("serve", help="listen for submissions (NOVAMIND_INTAKE__* settings)")
    serve.add_argument("--host", default=None, help="interface to bind (default: settings)")
    serve.add_argument("--port", type=int, default=None, help="TCP port (default: settings)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    # lazy: aiohttp, the intake app, JWT, pymongo and the Kafka producer take ~0.3 s to import
    import structlog
    from aiohttp import web

    from connectors.intake import HashedTokenStore, IntakeSettings, create_intake_app
    from connectors.intake.exceptions import TokenStoreError
    from connectors.intake.idempotency import MongoSubmissionLedger, prune_periodically
    from connectors.intake.ports import utc_now
    from novamind.platform.auth.tokens import JwtVerifier, patient_lookup
    from novamind.platform.mongo import database, mongo_client
    from novamind.platform.privacy.audit import AuditLog
    from novamind.platform.privacy.fieldcrypt import FieldCipher
    from novamind.platform.producer import EventProducer
    from schemas.codec import AvroCodec

    intake = IntakeSettings()
    intake = intake.model_copy(update={"topic": settings.kafka.topic(intake.topic)})
    if settings.auth.mode == "static" and intake.tokens_file is None:
        raise UsageError(
            "no token store: set NOVAMIND_AUTH__MODE=jwt (with NOVAMIND_AUTH__ISSUER, __AUDIENCE and "
            "__JWKS_URL), or NOVAMIND_INTAKE__TOKENS_FILE to a JSON file of sha256(token) -> pseudonym"
        )
    try:
        tokens: Authenticator
        if settings.auth.mode == "jwt":
            tokens = JwtVerifier.from_settings(settings.auth)
        else:
            assert intake.tokens_file is not None
            tokens = HashedTokenStore.from_file(intake.tokens_file)
            if settings.environment == "production":
                structlog.get_logger(__name__).warning(
                    "static_tokens_in_production", hint="set NOVAMIND_AUTH__MODE=jwt"
                )
        cipher = FieldCipher.from_settings(settings.security)
    except (TokenStoreError, KeySetError, KeyConfigurationError) as exc:
        raise UsageError(str(exc)) from exc
    producer = EventProducer(kafka=settings.kafka, client_id="intake")
    codec = AvroCodec.from_settings(settings)
    for record in ("SymptomReport", "AssessmentResult"):  # a registry problem shows now, not per request
        codec.prepare(record, topic=intake.topic)
    codec.prepare("AuditEvent", topic=settings.kafka.topic(TopicName.AUDIT_EVENTS))
    client = mongo_client(settings.mongo, app_name="novamind-intake")
    db = database(client, settings.mongo)
    if isinstance(tokens, JwtVerifier):
        try:
            tokens.patients.lookup = patient_lookup(settings.auth, settings.security, db)
        except KeySetError as exc:
            raise UsageError(str(exc)) from exc
    ledger = MongoSubmissionLedger(
        db=db, retention=intake.idempotency_retention(settings.worker.lateness_days)
    )
    audit = AuditLog(
        db=db,
        codec=codec,
        producer=producer,
        topic=settings.kafka.topic(TopicName.AUDIT_EVENTS),
    )
    app = create_intake_app(
        settings=intake,
        producer=producer,
        codec=codec,
        tokens=tokens,
        encryptor=cipher,
        audit=audit,
        lateness_days=settings.worker.lateness_days,
        ledger=ledger,
    )
    pruning: list[asyncio.Task[None]] = []

    async def start(_app: web.Application) -> None:
        await audit.ensure_indexes()
        await ledger.ensure_indexes()
        pruning.append(asyncio.create_task(prune_periodically(
            ledger, interval_s=intake.idempotency_prune_interval_s, clock=utc_now)))

    async def stop(_app: web.Application) -> None:
        for task in pruning:
            task.cancel()
        producer.flush(30.0)
        await client.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    web.run_app(
        app, host=args.host or intake.host, port=args.port or intake.port, access_log=None, print=None
    )
    return 0
