"""Pipeline alerts: logged every time, published at most once a minute per step, no PHI."""

from __future__ import annotations

from typing import Any

from schemas.codec import AvroCodec
from workers.runtime.monitor import PipelineAlerts


class RecordingProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    def produce(self, topic: str, *, key: bytes, value: bytes) -> None:
        self.sent.append((topic, key, value))

    def poll(self, _timeout: float) -> int:
        return 0


def test_alerts_are_published_once_a_minute_per_step() -> None:
    now = [1000.0]
    producer: Any = RecordingProducer()
    codec = AvroCodec()
    alerts = PipelineAlerts(
        producer, codec=codec, topic="t.pipeline-alerts", component="worker-1", clock=lambda: now[0]
    )
    assert alerts.raise_alert("twin_store", "CRITICAL", "MongoDB writes are failing", {"attempt": "1"})
    assert not alerts.raise_alert("twin_store", "CRITICAL", "MongoDB writes are failing", {"attempt": "2"})
    assert alerts.raise_alert("checkpoint", "WARNING", "transaction rolled back", {"error": "X"})
    now[0] += 61
    assert alerts.raise_alert("twin_store", "CRITICAL", "MongoDB writes are failing", {"attempt": "9"})
    assert [(t, k) for t, k, _ in producer.sent] == [
        ("t.pipeline-alerts", b"worker-1"),
        ("t.pipeline-alerts", b"worker-1"),
        ("t.pipeline-alerts", b"worker-1"),
    ]
    name, record = codec.decode_dict(producer.sent[0][2])
    assert name == "PipelineAlert"
    assert (record["component"], record["step"], record["severity"]) == ("worker-1", "twin_store", "CRITICAL")
    assert record["details"] == {"attempt": "1"}
