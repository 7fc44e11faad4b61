"""Blocking client calls with a deadline the caller enforces, not the library.

librdkafka's ``send_offsets_to_transaction`` can block past its own timeout when the group
coordinator goes away mid-call (a broker restart): the coordinator request's timeout is never
checked (librdkafka issue #5456, open; seen here as a worker stuck for good after a 3 s
broker outage). Such a call runs on its own daemon thread; when the deadline passes the
caller gets :class:`CallStuck` and replaces the client, and the thread is abandoned (a daemon
thread never holds up the process exit).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class CallStuck(Exception):
    """A client call did not return by its deadline; the client must be replaced."""

    def __init__(self, name: str, timeout_s: float) -> None:
        super().__init__(f"{name} did not return within {timeout_s:g}s")
        self.name = name
        self.timeout_s = timeout_s


async def call_with_deadline(call: Callable[[], T], timeout_s: float, *, name: str) -> T:
    """Run ``call`` on a fresh daemon thread; its result or exception, or :class:`CallStuck`."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.done():  # the waiter may have given up already
            outcome()

    def run() -> None:
        try:
            result = call()
        except BaseException as exc:  # handed to the waiter, never lost in the thread
            error = exc
            _post(loop, lambda: settle(lambda: future.set_exception(error)))
        else:
            _post(loop, lambda: settle(lambda: future.set_result(result)))

    threading.Thread(target=run, name=f"deadline-{name}", daemon=True).start()
    try:
        return await asyncio.wait_for(future, timeout_s)
    except TimeoutError:
        raise CallStuck(name, timeout_s) from None


def _post(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    with contextlib.suppress(RuntimeError):  # the loop closed while the call was stuck
        loop.call_soon_threadsafe(callback)
