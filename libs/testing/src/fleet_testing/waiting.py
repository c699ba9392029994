"""Waiting for a condition with a deadline, and sampling a probe for a fixed time.

Tests never sleep for a guess: they poll a real condition and fail with its last value.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

POLL_S = 0.05


async def _value(probe: Callable[[], T | Awaitable[T]]) -> T:
    result = probe()
    if inspect.isawaitable(result):
        return await result
    return result


async def wait_until(
    probe: Callable[[], object | Awaitable[object]],
    timeout: float,  # noqa: ASYNC109 - the deadline is part of the failure message
    what: str = "condition",
    poll_s: float = POLL_S,
) -> None:
    """Return as soon as ``probe()`` is truthy; fail with the last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        last = await _value(probe)
        if last:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        await asyncio.sleep(poll_s)


async def observe(
    probe: Callable[[], T | Awaitable[T]], duration: float, poll_s: float = 0.2
) -> list[T]:
    """Every value ``probe()`` returned while sampling it for ``duration`` seconds."""
    seen: list[T] = []
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        seen.append(await _value(probe))
        await asyncio.sleep(poll_s)
    return seen
