"""One retrying JSON request helper for the REST connectors (FHIR server, Fitbit Web API).

429 and 5xx responses and connection errors are retried with exponential backoff; a
``Retry-After`` header (seconds or HTTP-date) takes precedence over the computed delay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from connectors.exceptions import HttpStatusError, SyncError

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries: ``max_attempts`` tries, delays ``base * 2**n`` capped at ``cap``."""

    max_attempts: int = 5
    base: float = 0.5
    cap: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.cap)
        return min(self.base * 2**attempt, self.cap)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


async def request_json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    data: Mapping[str, str] | None = None,
    auth: aiohttp.BasicAuth | None = None,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Sleep = asyncio.sleep,
) -> Any:
    """Send one request, retrying 429/5xx/connection errors; return the decoded JSON body."""
    reason = "no attempt made"
    for attempt in range(policy.max_attempts):
        retry_after = None
        try:
            async with session.request(method, url, headers=headers, params=params, data=data,
                                       auth=auth) as resp:
                if resp.status == 429 or resp.status >= 500:
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                    reason = f"HTTP {resp.status}"
                elif resp.status >= 400:
                    raise HttpStatusError(resp.status, url)
                else:
                    return await resp.json(content_type=None)
        except (TimeoutError, aiohttp.ClientConnectionError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        except ValueError as exc:
            raise SyncError(f"response from {url} is not JSON") from exc
        if attempt + 1 < policy.max_attempts:
            await sleep(policy.delay(attempt, retry_after))
    raise SyncError(f"{method} {url} failed after {policy.max_attempts} attempts: {reason}")
