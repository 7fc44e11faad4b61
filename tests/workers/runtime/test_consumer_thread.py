"""A batch lingering on the consumer's thread returns as soon as another call waits for it."""

from __future__ import annotations

import asyncio
import threading

from tests.workers.runtime.test_linger import WEARABLE, Record
from workers.runtime.consumer_thread import ConsumerThread
from workers.runtime.worker import linger

LINGER_S = 60.0  # far longer than the test: only a waiting call can end it


def test_a_call_queued_while_a_batch_lingers_ends_the_wait() -> None:
    thread = ConsumerThread()
    lingering = threading.Event()
    seen_wanted: list[bool] = []

    def consume(n: int, timeout_s: float) -> list[Record]:
        seen_wanted.append(thread.wanted())
        lingering.set()
        threading.Event().wait(timeout_s)  # a slice with no record of another topic
        return [Record(WEARABLE, f"p{len(seen_wanted)}".encode())]

    def gather() -> list[Record]:
        first = [Record(WEARABLE, b"p0")]
        options = {"wearable": WEARABLE, "max_batch": 10_000, "linger_s": LINGER_S}
        return linger(first, consume, interrupted=thread.wanted, **options)  # type: ignore[arg-type]

    async def main() -> tuple[list[Record], int]:
        batch = asyncio.ensure_future(thread.linger(gather))
        await asyncio.get_running_loop().run_in_executor(None, lingering.wait)
        answer = await thread.call(lambda x: x + 1, 41)  # e.g. a restore's committed offsets
        return await batch, answer

    try:
        batch, answer = asyncio.run(main())
    finally:
        thread.shutdown()
    assert answer == 42
    assert seen_wanted[0] is False  # the lingering call itself is not counted as waiting
    assert len(batch) == len(seen_wanted) + 1  # every slice's records are kept
    assert not thread.wanted()


def test_calls_run_in_order_and_are_counted_until_they_start() -> None:
    thread = ConsumerThread()
    release = threading.Event()
    order: list[str] = []

    async def main() -> list[bool]:
        blocker = asyncio.ensure_future(thread.call(release.wait))
        queued = [asyncio.ensure_future(thread.call(order.append, name)) for name in ("a", "b")]
        await asyncio.sleep(0)  # both are queued behind the blocker
        counted = [thread.wanted()]
        release.set()
        await asyncio.gather(blocker, *queued)
        return [*counted, thread.wanted()]

    try:
        counted = asyncio.run(main())
    finally:
        thread.shutdown()
    assert order == ["a", "b"]
    assert counted == [True, False]
