"""A batch of wearable samples alone waits a little for more; anything else ends the wait."""

from __future__ import annotations

from collections.abc import Callable

from workers.runtime.worker import LINGER_SAMPLES_PER_PATIENT, linger

WEARABLE = "t.wearable-biometrics"
REPORTS = "t.patient-reports"


class Record:
    def __init__(self, topic: str, key: bytes | None = None) -> None:
        self._topic = topic
        self._key = key

    def topic(self) -> str:
        return self._topic

    def key(self) -> bytes | None:
        return self._key

    def error(self) -> None:
        return None


def consumer_factory(batches: list[list[str]]) -> tuple[Callable[..., object], list[tuple[int, float]]]:
    calls: list[tuple[int, float]] = []

    def consume(n: int, timeout_s: float) -> list[Record]:
        calls.append((n, timeout_s))
        return (
            [Record(t, f"p{len(calls)}-{i}".encode()) for i, t in enumerate(batches.pop(0))]
            if batches
            else []
        )

    return consume, calls


Calls = list[tuple[int, float]]


def run(first: list[str], batches: list[list[str]], **kwargs: object) -> tuple[list[str], Calls]:
    consume, calls = consumer_factory(batches)
    options = {"wearable": WEARABLE, "max_batch": 100, "linger_s": 0.3, "interrupted": lambda: False}
    options.update(kwargs)
    records = [Record(t, f"p0-{i}".encode()) for i, t in enumerate(first)]  # one sample per patient
    out = linger(records, consume, **options)  # type: ignore[arg-type]
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


def test_no_wait_once_the_patients_in_the_batch_have_several_samples_each() -> None:
    dense = [Record(WEARABLE, f"p{i % 3}".encode()) for i in range(3 * LINGER_SAMPLES_PER_PATIENT)]
    consume, calls = consumer_factory([[WEARABLE]])
    options = {"wearable": WEARABLE, "max_batch": 100, "linger_s": 0.3, "interrupted": lambda: False}
    out = linger(dense, consume, **options)  # type: ignore[arg-type]
    assert len(out) == len(dense) and calls == []  # a backlog's batch: waiting gains nothing
    sparse = dense[: 3 * LINGER_SAMPLES_PER_PATIENT - 1]
    linger(sparse, consume, **options)  # type: ignore[arg-type]
    assert calls  # one sample short of the density: it waits for more


def test_no_wait_for_an_empty_or_full_batch_a_rebalance_or_no_linger() -> None:
    assert run([], [[WEARABLE]])[1] == []
    assert run([WEARABLE] * 100, [[WEARABLE]])[1] == []
    assert run([WEARABLE], [[WEARABLE]], interrupted=lambda: True)[1] == []
    assert run([WEARABLE], [[WEARABLE]], linger_s=0.0)[1] == []
