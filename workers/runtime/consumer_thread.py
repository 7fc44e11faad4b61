"""The one thread that calls the main consumer, and who is waiting for it.

A trickle's batch lingers on this thread for up to ``wearable_linger_s`` in one call
(:func:`workers.runtime.worker.linger`), so its 100 ms slices wake neither the event loop nor
a future. A call queued meanwhile (a background restore asking for committed offsets) must
not wait that long: :meth:`ConsumerThread.wanted` tells the lingering call to return.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class ConsumerThread:
    """Runs calls on one thread, in order; counts the calls waiting for it."""

    def __init__(self, name: str = "kafka") -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._queued: deque[Callable[..., Any]] = deque()

    async def call(self, call: Callable[..., Any], *args: Any) -> Any:
        """``call(*args)`` on the thread; until it starts, :meth:`wanted` is true."""
        self._queued.append(call)

        def run() -> Any:
            self._queued.popleft()  # calls start in the order they were queued
            return call(*args)

        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    async def linger(self, call: Callable[[], Any]) -> Any:
        """``call()`` on the thread, not counted as waiting: a long call that returns early
        when :meth:`wanted` turns true."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def wanted(self) -> bool:
        """True while another call waits for the thread."""
        return bool(self._queued)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)
