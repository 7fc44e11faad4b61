"""A batch of wearable samples alone waits a little for more; anything else ends the wait."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from workers.runtime.worker import linger

WEARABLE = "t.wearable-biometrics"
REPORTS = "t.patient-reports"


class Record:
    def __init__(self, topic: str) -> None:
        self._topic = topic

    def topic(self) -> str:
        return self._topic

    def error(self) -> None:
        return None


def consumer_factory(batches: list[list[str]]) -> tuple[Callable[..., object], list[tuple[int, float]]]:
    calls: list[tuple[int, float]] = []

    async def consume(n: int, timeout_s: float) -> list[Record]:
        calls.append((n, timeout_s))
        return [Record(t) for t in batches.pop(0)] if batches else []

    return consume, calls


Calls = list[tuple[int, float]]


def run(first: list[str], batches: list[list[str]], **kwargs: object) -> tuple[list[str], Calls]:
    consume, calls = consumer_factory(batches)
    options = {"wearable": WEARABLE, "max_batch": 100, "linger_s": 0.3, "interrupted": lambda: False}
    options.update(kwargs)
    out = asyncio.run(linger([Record(t) for t in first], consume, **options))  # type: ignore[arg-type]
    return [m.topic() for m in out], calls


def test_wearable_samples_wait_for_more_until_the_linger_ends() -> None:
    topics, calls = run([WEARABLE], [[WEARABLE, WEARABLE], [], [WEARABLE]])
    assert topics == [WEARABLE] * 4
    assert calls[0] == (99, 0.1)
    assert len(calls) >= 4  # an empty slice does not end the wait; the deadline does


def test_a_report_ends_the_wait_at_once() -> None:
    topics, calls = run([WEARABLE, REPORTS], [[WEARABLE]])
    assert topics == [WEARABLE, REPORTS]
    assert calls == []


def test_a_report_arriving_while_lingering_ends_the_wait() -> None:
    topics, calls = run([WEARABLE], [[REPORTS], [WEARABLE]])
    assert topics == [WEARABLE, REPORTS]
    assert len(calls) == 1


def test_no_wait_for_an_empty_or_full_batch_a_rebalance_or_no_linger() -> None:
    assert run([], [[WEARABLE]])[1] == []
    assert run([WEARABLE] * 100, [[WEARABLE]])[1] == []
    assert run([WEARABLE], [[WEARABLE]], interrupted=lambda: True)[1] == []
    assert run([WEARABLE], [[WEARABLE]], linger_s=0.0)[1] == []
