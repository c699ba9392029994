"""A stop during start-up ends the wait for a server even when a client library swallows
the cancel (redis-py turns a cancel inside its timed read into its own timeout error)."""

from __future__ import annotations

import asyncio

import pytest

from fleet_runtime.errors import StoreUnavailable
from fleet_runtime.startup import Server, wait_for

REDIS = Server("Redis", "redis://127.0.0.1:6379/0", "MARKET_INGEST_REDIS_URL")


async def _stop_while_waiting(result: str | None) -> int:
    """Cancel ``wait_for`` while its attempt runs; the attempt swallows the cancel and then
    fails with a retryable error (``result`` None) or returns ``result``. The number of
    attempts made once the wait ended."""
    attempts = 0
    inside = asyncio.Event()

    async def attempt() -> str:
        nonlocal attempts
        attempts += 1
        inside.set()
        try:
            await asyncio.Event().wait()  # a read that only a cancel ends
        except asyncio.CancelledError:
            if result is None:
                raise StoreUnavailable("redis: TimeoutError: Timeout reading") from None
            return result
        return "never set"

    task = asyncio.create_task(wait_for(REDIS, attempt, timeout_s=60, retry_on=(StoreUnavailable,)))
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    return attempts


async def test_a_swallowed_cancel_followed_by_a_retryable_error_stops_the_retries() -> None:
    assert await _stop_while_waiting(None) == 1


async def test_a_swallowed_cancel_followed_by_success_still_stops_the_start_up() -> None:
    assert await _stop_while_waiting("connected") == 1
