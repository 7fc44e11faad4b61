"""Thin Faust plumbing shared by the agents: messages in, deliveries out, state to tables."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from typing import Any, Generic, TypeVar

from faust.streams import Stream
from faust.types import EventT, TableT

from novamind.producer import DeliveryFailed, EventProducer
from schemas.codec import AvroCodec
from workers.pipeline.ingest import Inbound

T = TypeVar("T")


def inbound(events: Iterable[EventT]) -> list[Inbound]:
    """Raw messages of a Faust batch, with their source position and log time."""
    return [
        Inbound(
            e.message.key,
            e.message.value or b"",
            e.message.topic,
            e.message.partition,
            e.message.offset,
            int((e.message.timestamp or 0) * 1000),
        )
        for e in events
    ]


class Publisher:
    """Encodes records and produces them with the confluent-kafka producer of the worker.

    Outputs bypass Faust's producer: ``flush`` waits (off the event loop) until Kafka has
    acknowledged every record of the batch, and raises if any was refused, so the batch's
    offsets are acknowledged only once its outputs are safe.
    """

    def __init__(
        self, *, codec: AvroCodec, producer: EventProducer, topic_name: Callable[[str], str]
    ) -> None:
        self.codec = codec
        self.producer = producer
        self.topic_name = topic_name
        self._failed: list[str] = []

    def send(self, topic: str, record_name: str, key: bytes | None, record: dict[str, Any]) -> None:
        value = self.codec.encode_dict(record_name, record)
        self.producer.send(self.topic_name(topic), key=key or b"", value=value, on_delivery=self._report)

    def _report(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._failed.append(str(err))

    async def flush(self) -> None:
        loop = asyncio.get_running_loop()
        while await loop.run_in_executor(None, self.producer.flush, 1.0):
            pass  # still waiting for acknowledgements; the event loop stays free meanwhile
        failed, self._failed = self._failed, []
        if failed:
            raise DeliveryFailed(f"{len(failed)} outputs refused by Kafka: {failed[0]}")


class TableCache(MutableMapping[str, T], Generic[T]):
    """Live per-patient objects in front of a changelog-backed Faust table of dicts.

    Reads fall through to the table (recovered from its changelog after a rebalance);
    ``persist`` writes the touched keys back, each to its patient's partition.
    """

    def __init__(self, table: TableT[str, bytes], *, load: Any, dump: Any) -> None:
        self.table = table
        self._load = load
        self._dump = dump
        self._live: dict[str, T] = {}

    def __getitem__(self, key: str) -> T:
        try:
            return self._live[key]
        except KeyError:
            stored = self.table.get(key)
            if stored is None:
                raise
            value: T = self._load(stored)
            self._live[key] = value
            return value

    def __setitem__(self, key: str, value: T) -> None:
        self._live[key] = value

    def __delitem__(self, key: str) -> None:
        self._live.pop(key, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._live)

    def __len__(self) -> int:
        return len(self._live)

    def forget(self) -> None:
        """Drop the live objects (after a rebalance another replica may own them)."""
        self._live.clear()

    def persist(self, stream: Stream[Any], events: Sequence[EventT], touched: dict[str, int]) -> None:
        """Write touched keys to the table; the changelog partition is the patient's."""
        last_by_partition = {e.message.partition: e for e in events}
        # Faust takes the changelog partition from the stream's current event. Restore it
        # afterwards: take_events() reads it for the next message it buffers.
        current = stream.current_event
        try:
            for key, partition in touched.items():
                stream._set_current_event(last_by_partition[partition])
                self.table[key] = self._dump(self._live[key])
        finally:
            stream._set_current_event(current)
