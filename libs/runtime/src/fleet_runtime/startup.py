"""Start-up: each server a worker needs is waited for, with capped backoff, up to a deadline.

Every failed attempt is one log line naming the server, its address (credentials
removed) and the setting that holds it, so an operator sees at once what to start or
which variable to fix. A server that does not answer within the worker's
``STARTUP_TIMEOUT_S`` ends the start-up with the same line (``StartupTimedOut``); an error
that waiting cannot fix (wrong password, missing role or schema) ends it at once
(``StartupRefused`` with the fix).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel

from fleet_runtime.errors import UserError
from fleet_runtime.logs import get_logger
from fleet_runtime.shared_settings import variable_in_use

log = get_logger("fleet_runtime.startup")

RETRY_FIRST_S = 0.25
RETRY_MAX_S = 5.0
T = TypeVar("T")

# The settings field that holds each store's address, and the server's name in messages.
STORE_FIELDS = {
    "postgres_dsn": "PostgreSQL",
    "redis_url": "Redis",
    "mongo_url": "MongoDB",
    "s3_endpoint": "S3",
}


class StartupRefused(UserError):
    """A start-up error that waiting cannot fix: the worker stops at once (exit 2)."""


class StartupTimedOut(Exception):
    """A server did not answer within the start-up timeout (already logged)."""

    def __init__(self, server: Server, error: str) -> None:
        super().__init__(f"{server.name} at {server.address} ({server.setting}): {error}")
        self.server = server


def redact(url: str) -> str:
    """``url`` (or a comma-separated list) without password or query (which may hold one)."""
    shown = []
    for raw in url.split(","):
        part = raw.strip()
        parts = urlsplit(part if "//" in part else f"//{part}")
        host = parts.netloc.rsplit("@", 1)[-1]
        user = parts.username
        netloc = f"{user}@{host}" if user else host
        shown.append(urlunsplit(parts._replace(netloc=netloc, query="", fragment="")).lstrip("/"))
    return ",".join(shown)


@dataclass(frozen=True)
class Server:
    """A server a worker depends on, as an operator would look for it."""

    name: str
    address: str
    setting: str

    def fields(self) -> dict[str, str]:
        """The log fields that say which server, where, and which variable says so."""
        return {"server": self.name, "address": self.address, "setting": self.setting}


def server_of(settings: BaseModel, field: str, name: str) -> Server:
    """The server whose address is settings ``field`` (a ``SecretStr`` or a plain string)."""
    value = getattr(settings, field)
    raw = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
    cls = type(settings)
    return Server(name, redact(raw), variable_in_use(cls, field))  # type: ignore[arg-type]


def store_server(settings: BaseModel) -> Server | None:
    """The store server of a worker's settings (the first store address field it has)."""
    for field, name in STORE_FIELDS.items():
        if field in type(settings).model_fields:
            return server_of(settings, field, name)
    return None


def shown_settings(settings: BaseModel) -> dict[str, str]:
    """Settings for a log line: secrets masked, credentials removed from every URL."""
    shown = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        text = str(value)
        shown[name] = redact(text) if "://" in text else text
    return shown


def startup_timeout(settings: BaseModel) -> float:
    """The worker's ``STARTUP_TIMEOUT_S`` (60 s for settings without one)."""
    return float(getattr(settings, "startup_timeout_s", 60.0))


def describe(exc: BaseException) -> str:
    """An exception as one short phrase (its class and message, no traceback)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def wait_for(
    server: Server,
    attempt: Callable[[], Awaitable[T]],
    *,
    timeout_s: float,
    retry_on: tuple[type[BaseException], ...],
) -> T:
    """Await ``attempt()`` until it succeeds, retrying ``retry_on`` errors with capped backoff.

    One ``waiting_for_server`` line per failed attempt; past ``timeout_s`` one
    ``server_unreachable`` line and ``StartupTimedOut``. Other errors propagate at once.
    """
    deadline = time.monotonic() + timeout_s
    delay = RETRY_FIRST_S
    number = 0
    while True:
        number += 1
        try:
            result = await attempt()
        except retry_on as exc:
            _raise_if_cancelled()
            error = describe(getattr(exc, "cause", exc))
            left = deadline - time.monotonic()
            if left <= 0:
                log.error(
                    "server_unreachable",
                    **server.fields(),
                    attempt=number,
                    waited_s=timeout_s,
                    error=error,
                    fix=f"start the server or point {server.setting} at a running one",
                )
                raise StartupTimedOut(server, error) from None
            wait = min(delay, left)
            log.warning(
                "waiting_for_server",
                **server.fields(),
                attempt=number,
                retry_in_s=round(wait, 2),
                error=error,
            )
            await asyncio.sleep(wait)
            delay = min(delay * 2, RETRY_MAX_S)
            continue
        _raise_if_cancelled()
        if number > 1:
            log.info("server_reached", **server.fields(), attempt=number)
        return result


def _raise_if_cancelled() -> None:
    """Raise ``CancelledError`` when this task was asked to stop (SIGTERM during start-up)
    even though the attempt did not end with it: a client library can turn a cancel that
    lands in its own timed read into its timeout error (redis-py's ``Timeout reading``,
    an expiring ``asyncio.timeout`` on Python 3.11), and the retry would then go on
    waiting for the server as if no stop had come. The task's pending cancel requests
    stay counted (``Task.cancelling``) when the exception is swallowed that way."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
