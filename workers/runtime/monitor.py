"""What a replica tells operators: Prometheus metrics and ``pipeline-alerts`` for failing steps.

Metrics use registry topic names (without the environment prefix) so dashboards and alert
rules work in every environment. A failing step publishes one ``PipelineAlert`` (no PHI: codes
and counts only) and logs it; repeats of the same step are rate-limited.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog
from confluent_kafka import Producer

from novamind.platform import metrics
from schemas.codec import AvroCodec

log = structlog.get_logger(__name__)
REPEAT_AFTER_S = 60.0


class PipelineAlerts:
    """Publishes ``PipelineAlert`` records for failing steps, at most once a minute per step."""

    def __init__(
        self,
        producer: Producer,
        *,
        codec: AvroCodec,
        topic: str,
        component: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.producer = producer
        self.codec = codec
        self.topic = topic
        self.component = component
        self.clock = clock
        self._last: dict[str, float] = {}

    def raise_alert(self, step: str, severity: str, message: str, details: Mapping[str, str]) -> bool:
        """Log and publish; False when the same step alerted less than a minute ago."""
        log.error("pipeline_alert", step=step, severity=severity, message=message, **details)
        metrics.record_pipeline_alert(step)
        now = self.clock()
        if now - self._last.get(step, -REPEAT_AFTER_S) < REPEAT_AFTER_S:
            return False
        self._last[step] = now
        record = pipeline_alert(self.component, step, severity, message, details)
        value = self.codec.encode_dict("PipelineAlert", record, topic=self.topic)
        self.producer.produce(self.topic, key=self.component.encode(), value=value)
        self.producer.poll(0)
        return True


def pipeline_alert(
    component: str, step: str, severity: str, message: str, details: Mapping[str, str]
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_time": dt.datetime.now(dt.UTC),
        "schema_version": 2,
        "component": component,
        "step": step,
        "severity": severity,
        "message": message,
        "details": {k: str(v)[:200] for k, v in details.items()},
    }


def count_in(topics: Iterable[str]) -> None:
    counts: dict[str, int] = {}
    for topic in topics:
        counts[topic] = counts.get(topic, 0) + 1
    for topic, n in counts.items():
        metrics.record_events_in(topic, n)


def count_out(sent: Mapping[str, int]) -> None:
    for topic, n in sent.items():
        if n:
            metrics.record_events_out(topic, n)


def count_dead_letters(letters: Iterable[Mapping[str, Any]], unprefix: Callable[[str], str]) -> None:
    for letter in letters:
        metrics.record_dead_letter(unprefix(letter["source_topic"]), letter["error_class"])
