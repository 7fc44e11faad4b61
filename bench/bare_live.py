"""The bare consume-and-decode cost of a live trickle: what any worker pays to read it.

Run by ``bench.bench_live`` as a process of its own beside the worker, so that its CPU is
read from /proc like the worker's: it reads ``topic`` from its end with the worker's fetch
settings (a fetch waits for ``fetch_wait_ms`` or 1 MB, reads committed records only) and its
loop (an asyncio loop consuming on an executor thread in ``LINGER_SLICE_S`` slices), decodes
every record as the worker does, and keeps nothing. It prints ``ready`` once it owns every
partition of the topic, and runs until terminated::

    python -m bench.bare_live <topic>
"""

from __future__ import annotations

import asyncio
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from confluent_kafka import Consumer, Message

from bench.bench_worker import decode_as_the_worker
from novamind.platform.kafka import consumer_config
from novamind.platform.settings import Settings
from schemas.codec import AvroCodec
from workers.runtime import clients
from workers.runtime.worker import LINGER_SLICE_S

WORKER_FETCH = ("isolation.level", "fetch.min.bytes", "fetch.wait.max.ms", "queued.max.messages.kbytes")
"""The worker's consumer settings that decide how a trickle is fetched, copied here."""


def bare_config(settings: Settings) -> dict[str, object]:
    """A consumer with the worker's fetch settings, in a group of its own, from the log end."""
    worker = clients.main_consumer(settings)
    return {
        **consumer_config(settings.kafka, group_id=f"bare-live-{time.time_ns()}", client_id="bare-live"),
        **{key: worker[key] for key in WORKER_FETCH},
        "auto.offset.reset": "latest",
        "enable.auto.commit": False,
    }


async def consume_forever(consumer: Consumer, codec: AvroCodec) -> None:
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(1) as executor:
        while True:
            batch: list[Message] = await loop.run_in_executor(
                executor, consumer.consume, 20_000, LINGER_SLICE_S
            )
            decode_as_the_worker(codec, [m for m in batch if m.error() is None])


def main() -> None:
    topic = sys.argv[1]
    consumer = Consumer(bare_config(Settings()))
    consumer.subscribe([topic])
    while not consumer.assignment():
        consumer.consume(1, 0.5)
    print("ready", flush=True)
    asyncio.run(consume_forever(consumer, AvroCodec()))


if __name__ == "__main__":
    main()
