"""Fixtures shared by connector tests: fixture paths, keys, a real local HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

FIXTURES = Path(__file__).parent / "fixtures"
PSEUDONYM_KEY = b"test-pseudonym-key-0123456789abc"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
async def http_server_factory() -> AsyncIterator[Callable[[web.Application], Awaitable[str]]]:
    """Start aiohttp apps on 127.0.0.1 (real sockets); returns the base URL."""
    servers: list[TestServer] = []

    async def start(app: web.Application) -> str:
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield start
    for server in servers:
        await server.close()


class RecordingSleep:
    """An ``asyncio.sleep`` stand-in that records requested delays and sleeps briefly."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        import asyncio

        self.delays.append(delay)
        await asyncio.sleep(0)
