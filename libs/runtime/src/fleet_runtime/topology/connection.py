"""Open a JetStream context for the topology commands, with a clear error when it is not there."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import nats
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.errors import ServiceUnavailableError

from fleet_runtime.errors import UserError

DEFAULT_URL = "nats://127.0.0.1:4222"
URL_ENV = "FLEET_NATS_URL"


class ServerUnreachable(UserError):
    """No NATS server with JetStream answered at the given URL."""


def default_url() -> str:
    """FLEET_NATS_URL, else the local default (read when called, never at import)."""
    return os.environ.get(URL_ENV) or DEFAULT_URL


async def _ignore(_: Exception) -> None:
    # Connection errors surface as one ServerUnreachable; nats-py's default callback would
    # log each failed attempt with a traceback first.
    return None


@asynccontextmanager
async def open_jetstream(
    url: str, *, request_timeout: float = 5.0
) -> AsyncIterator[JetStreamContext]:
    """Connect to `url`, check JetStream answers, yield its context, close on exit."""
    fix = f"start nats-server with -js, or point --server / {URL_ENV} at a running one"
    try:
        # nats-py retries a refused address inside connect() unless the attempts are capped
        # (0 means "no cap" there), so cap them and bound the whole call as well.
        nc = await asyncio.wait_for(
            nats.connect(
                url,
                connect_timeout=int(max(request_timeout, 1)),
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.1,
                error_cb=_ignore,
            ),
            timeout=request_timeout * 2,
        )
    except (OSError, NatsError, TimeoutError) as exc:
        reason = str(exc) or type(exc).__name__
        raise ServerUnreachable(f"cannot connect to NATS at {url}: {reason}", fix=fix) from None
    try:
        js = nc.jetstream(timeout=request_timeout)
        try:
            await js.account_info()
        except (NoRespondersError, ServiceUnavailableError, NatsTimeout) as exc:
            raise ServerUnreachable(
                f"NATS at {url} answers but JetStream does not ({type(exc).__name__})", fix=fix
            ) from None
        yield js
    finally:
        await nc.close()
