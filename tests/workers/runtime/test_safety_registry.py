"""The item-9 watch during a registry outage: the batch is read again, no report is skipped."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest

from novamind.platform.settings import KafkaSettings, Settings
from schemas.assessments import score_items
from schemas.codec import AvroCodec
from schemas.exceptions import RegistryError
from schemas.models import AssessmentResult, Instrument
from schemas.registry import InMemoryRegistry
from schemas.topics import TopicName
from workers.runtime.safety import SafetyWatch

PATIENT = "p_" + "9a" * 16


class FlakyRegistry(InMemoryRegistry):
    """Fails the first ``outages`` schema look-ups, as an unreachable registry does."""

    def __init__(self, outages: int) -> None:
        super().__init__()
        self.outages = outages

    def get_schema(self, schema_id: int) -> str:
        if self.outages:
            self.outages -= 1
            raise RegistryError("GET /schemas/ids/1: <urlopen error [Errno 111] Connection refused>")
        return super().get_schema(schema_id)


class Msg:
    def __init__(self, value: bytes, offset: int) -> None:
        self._value, self._offset = value, offset

    def error(self) -> None:
        return None

    def key(self) -> bytes:
        return PATIENT.encode()

    def value(self) -> bytes:
        return self._value

    def topic(self) -> str:
        return "patient-reports"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, 0)


class ReplayingConsumer:
    """Hands out the log from the position; ``seek`` moves the position back; stops at the end."""

    def __init__(self, log: list[Msg], stop: threading.Event) -> None:
        self.log, self.stop, self.position, self.seeks, self.commits = log, stop, 0, [], 0

    def subscribe(self, topics: list[str]) -> None:
        pass

    def consume(self, n: int, timeout: float) -> list[Msg]:
        batch = self.log[self.position : self.position + n]
        self.position += len(batch)
        if not batch:
            self.stop.set()
        return batch

    def poll(self, timeout: float) -> Msg | None:
        batch = self.consume(1, timeout)
        return batch[0] if batch else None

    def seek(self, tp: Any) -> None:
        self.seeks.append(tp.offset)
        self.position = tp.offset

    def commit(self, asynchronous: bool) -> None:
        self.commits += 1

    def close(self) -> None:
        pass


class Outputs:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, topic: str, name: str, key: bytes, record: dict[str, Any]) -> None:
        self.sent.append(record)

    def flush(self) -> None:
        pass


def _phq9(event_id: str) -> AssessmentResult:
    at = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
    scored = score_items("PHQ9", [1] * 9)
    return AssessmentResult(
        event_id=event_id, patient_id=PATIENT, event_time=at, received_time=at, source="test",
        submission_id=event_id, instrument=Instrument.PHQ9, item_responses=[1] * 9,
        total=scored.total, band=scored.band, item9_positive=scored.item9_positive,
    )


def test_a_registry_outage_delays_the_alerts_and_loses_none(monkeypatch) -> None:
    monkeypatch.setattr("workers.runtime.safety.REGISTRY_RETRY_S", 0.0)
    registry = FlakyRegistry(outages=2)
    writer = AvroCodec(framing="confluent", registry=registry)
    log = [Msg(writer.encode(_phq9(f"r{i}")), offset=i) for i in range(3)]
    stop = threading.Event()
    settings = Settings(environment="test", kafka=KafkaSettings(bootstrap_servers="127.0.0.1:9"))
    watch = SafetyWatch(settings, codec=AvroCodec(registry=registry))  # a reader with an empty cache
    watch.consumer = ReplayingConsumer(log, stop)  # type: ignore[assignment]
    watch.outputs = Outputs()  # type: ignore[assignment]
    watch.run(stop)
    assert watch.consumer.seeks == [0, 0]  # read again after each failed look-up
    assert sorted(a["trigger_event_id"] for a in watch.outputs.sent) == ["r0", "r1", "r2"]
    assert watch.alerts_sent == 3


def test_a_watch_per_topic_that_carries_assessment_results() -> None:
    settings = Settings(environment="test", kafka=KafkaSettings(bootstrap_servers="127.0.0.1:9"))
    watch = SafetyWatch(settings, codec=AvroCodec(), source=TopicName.EHR_CLINICAL_EVENTS)
    assert watch.topic == "ehr-clinical-events"
    with pytest.raises(ValueError, match="carries no assessment results"):
        SafetyWatch(settings, codec=AvroCodec(), source=TopicName.WEARABLE_BIOMETRICS)
