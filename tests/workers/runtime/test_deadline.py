from __future__ import annotations

import asyncio
import threading
import time

import pytest

from workers.runtime.deadline import CallStuck, call_with_deadline


def test_returns_the_call_result() -> None:
    assert asyncio.run(call_with_deadline(lambda: 41 + 1, 5, name="sum")) == 42


def test_raises_the_call_exception() -> None:
    def fail() -> None:
        raise ValueError("broker said no")

    with pytest.raises(ValueError, match="broker said no"):
        asyncio.run(call_with_deadline(fail, 5, name="fail"))


def test_a_call_that_never_returns_is_reported_stuck_and_left_behind() -> None:
    release = threading.Event()
    started = time.monotonic()
    with pytest.raises(CallStuck) as caught:
        asyncio.run(call_with_deadline(release.wait, 0.2, name="send_offsets_to_transaction"))
    assert time.monotonic() - started < 5
    assert caught.value.name == "send_offsets_to_transaction"
    assert "send_offsets_to_transaction did not return within 0.2s" in str(caught.value)
    stuck = [t for t in threading.enumerate() if t.name == "deadline-send_offsets_to_transaction"]
    assert stuck and all(t.daemon for t in stuck)  # never holds up the process exit
    release.set()  # the late result finds its loop closed and is dropped quietly
    for thread in stuck:
        thread.join(5)
        assert not thread.is_alive()


def test_the_loop_keeps_running_while_a_call_blocks() -> None:
    async def scenario() -> list[str]:
        seen: list[str] = []

        async def ticker() -> None:
            for _ in range(3):
                await asyncio.sleep(0.01)
                seen.append("tick")

        release = threading.Event()
        task = asyncio.create_task(ticker())
        with pytest.raises(CallStuck):
            await call_with_deadline(release.wait, 0.3, name="wait")
        release.set()
        await task
        return seen

    assert asyncio.run(scenario()) == ["tick", "tick", "tick"]
