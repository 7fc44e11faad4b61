"""The main consumer fetches a live trickle in batches; the item-9 watch does not wait for them."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer

from novamind.platform.settings import Settings, WorkerSettings
from schemas.topics import TopicName
from workers.runtime import clients


def test_the_main_consumer_waits_for_a_batch_but_the_safety_watch_does_not() -> None:
    settings = Settings()
    main = clients.main_consumer(settings)
    assert main["fetch.wait.max.ms"] == settings.worker.fetch_wait_ms == 100
    assert main["fetch.min.bytes"] == clients.FETCH_MIN_BYTES
    safety = clients.safety_consumer(settings, TopicName.PATIENT_REPORTS)
    # a fetch answers with the first record (librdkafka's fetch.min.bytes default is 1); the
    # long wait only spares an idle watch empty fetches
    assert "fetch.min.bytes" not in safety and safety["fetch.wait.max.ms"] == 500


def test_no_fetch_wait_means_no_minimum_either() -> None:
    settings = Settings().model_copy(update={"worker": WorkerSettings(fetch_wait_ms=0)})
    main = clients.main_consumer(settings)
    assert (main["fetch.wait.max.ms"], main["fetch.min.bytes"]) == (0, 1)


def test_consumers_that_drain_their_queue_fast_do_not_back_off_for_a_second() -> None:
    # librdkafka's default fetch.queue.backoff.ms (1000) stalled the small-prefetch main
    # consumer and the changelog restore whenever their queue was full
    settings = Settings()
    for config in (clients.main_consumer(settings), clients.restore_consumer(settings)):
        assert config["fetch.queue.backoff.ms"] == clients.FETCH_QUEUE_BACKOFF_MS <= 100
        Consumer({**config, "bootstrap.servers": "127.0.0.1:1"}).close()  # librdkafka knows it


def test_a_static_member_is_named_by_its_replica_id_and_only_the_main_consumer_is_one() -> None:
    worker = WorkerSettings(static_membership=True, replica_id="worker-2")
    settings = Settings().model_copy(update={"worker": worker})
    assert clients.main_consumer(settings)["group.instance.id"] == "worker-2"
    assert "group.instance.id" not in clients.safety_consumer(settings, TopicName.PATIENT_REPORTS)
    assert "group.instance.id" not in clients.main_consumer(Settings())


def test_static_membership_without_a_replica_id_is_refused() -> None:
    settings = Settings().model_copy(update={"worker": WorkerSettings(static_membership=True)})
    with pytest.raises(ValueError, match="static group membership needs a stable replica id"):
        clients.main_consumer(settings)
