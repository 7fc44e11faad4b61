"""Publish a simulated cohort straight to the source topics, as fast as possible or at a rate."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from connectors.delivery import SOURCE_ROUTES, Delivery, Encoder, Producer
from schemas.topics import TopicName


def publish(
    deliveries: Iterable[dict[str, Any]],
    *,
    producer: Producer,
    codec: Encoder,
    topic_name: Callable[[str], str] = str,
    rate_per_s: float | None = None,
) -> dict[str, Any]:
    """Send every delivery in arrival order; garbage stays garbage (sent raw, unkeyed).

    Returns sent and acknowledged (``produced``) per registry topic, records the contract
    could not carry (``rejected``, by error), what Kafka did not acknowledge, and the time.
    """
    delivery = Delivery(producer=producer, codec=codec, topic_name=topic_name, routes=SOURCE_ROUTES)
    started = time.monotonic()
    for n, item in enumerate(deliveries, start=1):
        record = item["record"]
        if item["record_type"] == "RAW":
            delivery.send_bytes(TopicName.WEARABLE_BIOMETRICS, b"", record["raw"])
        else:
            delivery.send(record["patient_id"], item["record_type"], record)
        if rate_per_s:
            ahead = n / rate_per_s - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    summary = delivery.finish()
    return {
        "sent": dict(summary.sent),
        "produced": dict(summary.acknowledged),
        "rejected": dict(delivery.encode_errors),
        "unacknowledged": summary.unacknowledged,
        "seconds": round(time.monotonic() - started, 2),
    }
