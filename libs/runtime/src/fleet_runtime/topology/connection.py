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
from fleet_runtime.natsauth import NatsAuth, cli_auth

DEFAULT_URL = "nats://127.0.0.1:4222"
URL_ENV = "FLEET_NATS_URL"


class ServerUnreachable(UserError):
    """No NATS server with JetStream answered at the given URL."""


def default_url() -> str:
    """FLEET_NATS_URL, else the local default (read when called, never at import)."""
    return os.environ.get(URL_ENV) or DEFAULT_URL


class PermissionDenied(UserError):
    """NATS refused a publish or subscription of the command's user."""


@asynccontextmanager
async def open_jetstream(
    url: str,
    *,
    request_timeout: float = 5.0,
    user: str = "admin",
    auth: NatsAuth | None = None,
) -> AsyncIterator[JetStreamContext]:
    """Connect to `url`, check JetStream answers, yield its context, close on exit.

    The client presents ``auth``, else the credentials of ``user`` from ``FLEET_NATS_CREDS``
    (``fleet_runtime.natsauth.cli_auth``). A request the server refuses (it drops it, so
    the client only sees a timeout) ends as ``PermissionDenied`` naming the permission.
    """
    from fleet_runtime.natsconnect import denied_permission, permission_fix  # noqa: PLC0415

    auth = auth or cli_auth(user)
    denied: list[str] = []

    async def on_error(exc: Exception) -> None:
        # Connection errors surface as one ServerUnreachable; nats-py's default callback
        # would log each failed attempt with a traceback first.
        found = denied_permission(exc)
        if found is not None:
            denied.append(found)

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
                error_cb=on_error,
                **auth.options,
            ),
            timeout=request_timeout * 2,
        )
    except (OSError, NatsError, TimeoutError) as exc:
        reason = str(exc) or type(exc).__name__
        if "authoriz" in reason.lower() or "authentic" in reason.lower():
            raise ServerUnreachable(
                f"NATS at {url} refused the credentials of {auth.user}: {reason}",
                fix=permission_fix(auth),
            ) from None
        raise ServerUnreachable(f"cannot connect to NATS at {url}: {reason}", fix=fix) from None

    def refused() -> PermissionDenied:
        return PermissionDenied(
            f"NATS refused {denied[-1]} to the credentials of {auth.user}",
            fix=permission_fix(auth),
        )

    try:
        js = nc.jetstream(timeout=request_timeout)
        try:
            await js.account_info()
        except (NoRespondersError, ServiceUnavailableError, NatsTimeout) as exc:
            if denied:
                raise refused() from None
            raise ServerUnreachable(
                f"NATS at {url} answers but JetStream does not ({type(exc).__name__})", fix=fix
            ) from None
        try:
            yield js
        except NatsTimeout:
            if denied:
                raise refused() from None
            raise
    finally:
        await nc.close()
