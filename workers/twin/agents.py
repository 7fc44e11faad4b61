"""The twin agent: apply each patient's ordered twin inputs, store twins, publish updates."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import cast

import faust
import structlog
from faust.streams import Stream
from faust.types import StreamT

from novamind.producer import EventProducer
from schemas.codec import AvroCodec
from workers.pipeline.faustio import Publisher, inbound
from workers.pipeline.twin import TwinEntry, TwinProcessor
from workers.twin.store import TwinStore
from workers.twin.twin import new_twin

log = structlog.get_logger(__name__)


def register(
    app: faust.App,
    *,
    codec: AvroCodec,
    store: TwinStore,
    topics: dict[str, faust.TopicT],
    producer: EventProducer,
    topic_name: Callable[[str], str],
    batch_size: int = 500,
    batch_within_s: float = 0.2,
) -> dict[str, TwinEntry]:
    cache: dict[str, TwinEntry] = {}
    processor = TwinProcessor(codec=codec)

    @app.agent(topics["twin-inputs"], name="update-twins")
    async def update_twins(stream: StreamT[bytes]) -> None:
        concrete = cast(Stream[bytes], stream)  # take_events() lives on the concrete stream
        publisher = Publisher(codec=codec, producer=producer, topic_name=topic_name)
        # Await nothing before iterating: Faust acks, without processing, any message that
        # arrives while no stream of the topic is being read.
        indexed = False
        async for events in concrete.take_events(batch_size, within=batch_within_s):
            started = time.perf_counter()
            if not indexed:
                await store.ensure_indexes()
                indexed = True
            messages = inbound(events)
            patients = {m.key.decode() for m in messages if m.key}
            loaded = await store.load(patients - cache.keys())
            # No await from here to process(): a rebalance may clear the cache meanwhile.
            batch = {p: cache.get(p) or loaded.get(p) or TwinEntry(new_twin(p)) for p in patients}
            cache.update(batch)
            result = processor.process(messages, batch)
            for alert in result.alerts:
                publisher.send("twin-alerts", "TwinAlert", alert["patient_id"].encode(), alert)
            for update in result.updates:
                publisher.send("twin-updates", "TwinUpdate", update["patient_id"].encode(), update)
            for letter in result.dead_letters:
                publisher.send("pipeline-deadletter", "DeadLetter", letter["original_key"], letter)
            await publisher.flush()
            saved = await store.save({p: batch[p] for p in result.changed}, now=dt.datetime.now(dt.UTC))
            log.info(
                "twin_batch",
                events=len(events),
                twins=saved,
                updates=len(result.updates),
                alerts=len(result.alerts),
                skipped=result.skipped,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )

    return cache
