"""Kafka client configurations of a worker replica (on top of :mod:`novamind.platform.kafka`)."""

from __future__ import annotations

import os
import socket
from typing import Any

from novamind.platform.kafka import consumer_config, producer_config
from novamind.platform.settings import STATIC_WITHOUT_REPLICA_ID, Settings
from schemas.topics import SAFETY_GROUP, WORKERS_GROUP

GROUP = WORKERS_GROUP  # the consumer group shared by all replicas (re-exported)
STATE_MESSAGE_MAX_BYTES = 16 * 1024 * 1024  # a patient's window state is one changelog record
FETCH_MIN_BYTES = 1 << 20  # a fetch answers at once only with this much; else after fetch_wait_ms
FETCH_QUEUE_BACKOFF_MS = 10
"""How long a partition's next fetch waits once the fetched queue is over its thresholds.
librdkafka's default (1000 ms) stalls a consumer that drains its queue faster than that, as the
main consumer (2 MB prefetch) and a changelog restore do: reading bench_live's 5,000-patient
changelog took 9.2-11.3 s with the default and 3.4 s with this (README, "Worker state")."""


def replica_id(settings: Settings) -> str:
    """A name for this replica (transactional id, client id): configured, else host and pid."""
    return settings.worker.replica_id or f"{socket.gethostname()}-{os.getpid()}"


def static_member_id(settings: Settings) -> str:
    """The ``group.instance.id`` of a static member: its configured replica id.

    Raises
    ------
    ValueError
        No replica id is configured (a host-and-pid name changes with every start).
    """
    if not settings.worker.replica_id:
        raise ValueError(STATIC_WITHOUT_REPLICA_ID)
    return settings.worker.replica_id


def group_id(settings: Settings, group: str = GROUP) -> str:
    return settings.kafka.topic(group)  # the prefix isolates environments and test runs


def main_consumer(settings: Settings) -> dict[str, Any]:
    """Source topics and twin inputs: manual commits, committed reads only, co-partitioned."""
    static = {"group.instance.id": static_member_id(settings)} if settings.worker.static_membership else {}
    return {
        **static,
        **consumer_config(
            settings.kafka, group_id=group_id(settings), client_id=f"worker-{replica_id(settings)}"
        ),
        "isolation.level": "read_committed",
        # Range assignment gives one replica partition p of every co-partitioned topic.
        "partition.assignment.strategy": "range",
        "session.timeout.ms": 15_000,
        "heartbeat.interval.ms": 3_000,
        "max.poll.interval.ms": 600_000,  # a long MongoDB outage backs off inside a batch
        # Small prefetch: the fetched queue is FIFO across partitions, so a deep biometric
        # prefetch would make twin inputs and reports wait behind it (and hold memory).
        "queued.max.messages.kbytes": 2_048,
        "queued.min.messages": 2_000,
        "fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS,
        # A live trickle is fetched every fetch_wait_ms, not per arriving record: one fetch
        # response per few events cost more CPU than folding them. A backlog fills
        # FETCH_MIN_BYTES at once and is not held back.
        "fetch.min.bytes": FETCH_MIN_BYTES if settings.worker.fetch_wait_ms else 1,
        "fetch.wait.max.ms": settings.worker.fetch_wait_ms,
    }


def safety_consumer(settings: Settings, source: str) -> dict[str, Any]:
    """The item-9 watch of one source topic (a consumer per topic, one group for all)."""
    return {
        **consumer_config(
            settings.kafka,
            group_id=group_id(settings, SAFETY_GROUP),
            client_id=f"safety-{source}-{replica_id(settings)}",
        ),
        "session.timeout.ms": 15_000,
        "heartbeat.interval.ms": 3_000,
        # A fetch answers as soon as one record is there (fetch.min.bytes 1), so a long wait
        # delays no alert; it only spares an idle watch the empty fetches of a short one.
        "fetch.wait.max.ms": 500,
    }


def restore_consumer(settings: Settings) -> dict[str, Any]:
    """Reads changelog partitions start to end; never joins or commits to a group."""
    return {
        **consumer_config(
            settings.kafka, group_id=group_id(settings), client_id=f"restore-{replica_id(settings)}"
        ),
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
        "fetch.message.max.bytes": STATE_MESSAGE_MAX_BYTES,
        "fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS,
    }


def offset_probe(settings: Settings) -> dict[str, Any]:
    """Asks for log ends: read-uncommitted, so past transactions whose markers are pending."""
    return {
        **consumer_config(
            settings.kafka, group_id=group_id(settings), client_id=f"probe-{replica_id(settings)}"
        ),
        "isolation.level": "read_uncommitted",
    }


def transactional_producer(settings: Settings) -> dict[str, Any]:
    """Outputs, state and source offsets of a batch commit together or not at all."""
    return {
        **producer_config(settings.kafka, client_id=f"worker-{replica_id(settings)}"),
        "transactional.id": f"{group_id(settings)}-{replica_id(settings)}",
        "transaction.timeout.ms": settings.worker.transaction_timeout_ms,
        "message.max.bytes": STATE_MESSAGE_MAX_BYTES,
    }


def output_producer(settings: Settings) -> dict[str, Any]:
    """Idempotent producer for what must not wait for a transaction (alerts, twin outputs)."""
    return {
        **producer_config(settings.kafka, client_id=f"worker-out-{replica_id(settings)}"),
        "linger.ms": 0,
    }
