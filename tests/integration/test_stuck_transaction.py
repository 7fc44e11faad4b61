"""A transactional call that never returns (librdkafka #5456: ``send_offsets_to_transaction``
ignores its timeout when the group coordinator goes away, as in a broker restart) must not stall
the worker: it is given up, the producer replaced, the batch read again, nothing lost or doubled.

The worker runs in this process on the real broker and FerretDB; only the first transactional
producer is wrapped so that its first ``send_offsets_to_transaction`` blocks like the bug does.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from confluent_kafka import Producer

from novamind.platform.settings import Settings
from schemas.codec import AvroCodec
from tests.integration.checks import assert_twins_equal_replay, check_outputs, publish_cohort
from tests.integration.harness import free_port, isolated, read_topic, reader_codec, wait_caught_up
from workers import app
from workers.runtime import transactions

codec = AvroCodec()


class HangsOnFirstOffsets:
    """A transactional producer whose first ``send_offsets_to_transaction`` blocks until released."""

    def __init__(self, producer: Producer, release: threading.Event) -> None:
        self._producer = producer
        self._release = release
        self.offset_calls = 0

    def send_offsets_to_transaction(self, *args: Any) -> None:
        self.offset_calls += 1
        if self.offset_calls == 1:
            self._release.wait()
            return
        self._producer.send_offsets_to_transaction(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)


def test_a_stuck_offsets_call_replaces_the_producer_and_loses_nothing(
    settings: Settings, run_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = isolated(settings, f"stk-{run_id}", max_batch=1500)
    own_replica = scenario.worker.model_copy(update={"web_port": free_port(), "replica_id": "stuck-0"})
    scenario = scenario.model_copy(update={"worker": own_replica})
    cohort = publish_cohort(scenario, patients=3, days=10, seed=31)

    release = threading.Event()
    wrapped: list[HangsOnFirstOffsets] = []

    def producer(config: dict[str, Any]) -> Any:
        if "transactional.id" in config and not wrapped:
            wrapped.append(HangsOnFirstOffsets(Producer(config), release))
            return wrapped[0]
        return Producer(config)

    monkeypatch.setattr(transactions, "Producer", producer)
    monkeypatch.setattr(transactions, "SEND_OFFSETS_TIMEOUT_S", 1.0)
    monkeypatch.setattr(transactions, "STUCK_MARGIN_S", 1.0)

    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    runner = threading.Thread(target=loop.run_until_complete, args=(app.serve(scenario, stop),), daemon=True)
    runner.start()
    try:
        wait_caught_up(scenario, [], timeout_s=240)
    finally:
        loop.call_soon_threadsafe(stop.set)
        runner.join(90)
        release.set()
    assert not runner.is_alive()

    assert wrapped and wrapped[0].offset_calls == 1  # the stuck producer was dropped after one call
    check_outputs(scenario, cohort)
    assert assert_twins_equal_replay(scenario) == 3
    reader = reader_codec(scenario)
    alerts = [reader.decode_dict(m.value())[1] for m in read_topic(scenario, "pipeline-alerts")]
    stuck = [a for a in alerts if a["step"] == "checkpoint" and a["details"].get("call")]
    assert [a["details"]["call"] for a in stuck] == ["send_offsets_to_transaction"]
