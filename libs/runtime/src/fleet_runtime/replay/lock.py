"""Who holds a replay: the text a store's replay lock records and a refused replay shows.

The lock itself lives in the store (a PostgreSQL advisory lock, a Redis key with a
lease): it must vanish with the process that held it, so a replay killed with ``kill -9``
never blocks the next one.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime

from fleet_runtime.logs import get_logger
from fleet_runtime.startup import describe

log = get_logger("fleet_runtime.replay")


def holder_name(worker: str) -> str:
    """``replay <worker> pid <pid> on <host> since <UTC time>``, at most 63 characters.

    63 is PostgreSQL's limit for ``application_name``, where the PostgreSQL adapter keeps it.
    """
    since = datetime.now(UTC).strftime("%H:%M:%SZ")
    host = socket.gethostname().split(".")[0][:16]
    return f"replay {worker} pid {os.getpid()} on {host} since {since}"[:63]


@asynccontextmanager
async def renewed(
    renew: Callable[[], Awaitable[object]],
    release: Callable[[], Awaitable[object]],
    *,
    every_s: float,
    lock: str,
) -> AsyncIterator[None]:
    """Keep a lease a replay has taken: ``renew()`` every ``every_s`` seconds while the block
    runs, then ``release()``.

    A store busy past its client's timeout must not end the replay with a traceback: a
    failed renewal is logged and tried again at the next tick (the lease outlives a few
    ticks), and a failed release is logged (the lease then runs out by itself).
    """

    async def renewing() -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await renew()
            except Exception as exc:
                log.warning("replay_lease_not_renewed", lock=lock, error=describe(exc))

    task = asyncio.create_task(renewing())
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        try:
            await release()
        except Exception as exc:
            log.warning("replay_lease_not_released", lock=lock, error=describe(exc))
