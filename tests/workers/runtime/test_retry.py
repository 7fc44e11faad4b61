"""Which Kafka errors the worker waits out rather than crashing on."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError

from workers.runtime.worker import worth_retrying


@pytest.mark.parametrize(
    "code",
    [
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError.NOT_COORDINATOR,  # a restarted broker's group coordinator, before it has loaded
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    ],
)
def test_a_broker_coming_back_is_waited_out(code: int) -> None:
    assert worth_retrying(KafkaError(code))


@pytest.mark.parametrize("code", [KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.UNKNOWN_TOPIC_OR_PART])
def test_a_request_that_is_wrong_is_not_retried(code: int) -> None:
    assert not worth_retrying(KafkaError(code))
