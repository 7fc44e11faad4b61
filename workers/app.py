"""Assemble and run one worker replica: ``novamind worker``.

A replica is the consumer loop (:mod:`workers.runtime.worker`), the item-9 watches
(:mod:`workers.runtime.safety`, a thread per topic that carries assessment results) and the web
views (aiohttp). SIGTERM or SIGINT
finish the current batch (its transaction commits), leave the group and close the producers.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import threading

import structlog
from aiohttp import web

from novamind.platform.mongo import database, mongo_client
from novamind.platform.privacy.audit import AuditLog
from novamind.platform.producer import EventProducer
from novamind.platform.settings import Settings
from schemas.codec import AvroCodec
from schemas.topics import SAFETY_TOPICS, WORKERS_GROUP, Principal, TopicName, declared_topics
from workers.runtime.access import ViewAccess
from workers.runtime.safety import SafetyWatch
from workers.runtime.web import build_web
from workers.runtime.worker import Worker
from workers.twin.store import TwinStore

log = structlog.get_logger(__name__)
# The loop allocates many short-lived objects per batch (records, dicts); with the default
# threshold (700) the collector ran many times a batch over every patient's state.
GC_THRESHOLDS = (50_000, 20, 100)


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    codec = AvroCodec.from_settings(settings.kafka)
    for spec in declared_topics():  # with a registry: every subject this replica writes, now
        if Principal.WORKERS in spec.writers:
            for record in spec.values:
                codec.prepare(record, topic=settings.kafka.topic(spec.name))
    client = mongo_client(settings.mongo, app_name=settings.kafka.topic(WORKERS_GROUP))
    db = database(client, settings.mongo)
    audit_producer = EventProducer(kafka=settings.kafka, client_id="worker-audit")
    audit_topic = settings.kafka.topic(TopicName.AUDIT_EVENTS)
    audit = AuditLog(db=db, codec=codec, producer=audit_producer, topic=audit_topic)
    worker = Worker(settings, store=TwinStore(db=db), codec=codec)
    safety_stop = threading.Event()
    safety_threads = [
        threading.Thread(
            target=SafetyWatch(settings, codec=codec, source=source).run,
            args=(safety_stop,),
            name=f"safety-{source}",
            daemon=True,
        )
        for source in SAFETY_TOPICS
    ]
    access = ViewAccess(settings, audit, db=db)
    runner = web.AppRunner(build_web(worker, audit_access=access), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.worker.web_host, settings.worker.web_port).start()
    for thread in safety_threads:
        thread.start()
    gc.collect()
    gc.freeze()  # what start-up built (modules, schemas, clients) is never scanned again
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        await worker.run(stop)
    finally:
        safety_stop.set()
        for thread in safety_threads:
            await asyncio.get_running_loop().run_in_executor(None, thread.join, 30)
        await runner.cleanup()
        audit_producer.flush(30)
        await client.close()


def run_worker(settings: Settings) -> int:
    """Run one replica until SIGTERM/SIGINT."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve(settings, stop)

    asyncio.run(main())
    return 0
