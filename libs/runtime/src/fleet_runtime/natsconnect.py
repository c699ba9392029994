"""The worker's NATS connection: waited for at start, reconnected forever, logged in one line.

nats-py reports connection errors through an error callback whose default logs a full
traceback on every attempt. Here every report is a structured line instead: at start-up
one per attempt (``fleet_runtime.startup``), once connected one per outage.
"""

from __future__ import annotations

import contextlib
import re
import weakref
from typing import Any

from nats.aio.client import Client as NATS
from nats.errors import (
    AuthorizationError,
    InvalidUserCredentialsError,
    NoServersError,
    SecureConnFailedError,
    SecureConnRequiredError,
    SecureConnWantedError,
)

from fleet_runtime.logs import get_logger
from fleet_runtime.natsauth import NatsAuth
from fleet_runtime.startup import Server, StartupRefused, describe, redact, wait_for

log = get_logger("fleet_runtime.nats")

# Errors of a connect attempt that a retry cannot fix.
_PERMANENT = (
    AuthorizationError,
    InvalidUserCredentialsError,
    SecureConnRequiredError,
    SecureConnWantedError,
    SecureConnFailedError,
)


class _AttemptFailed(Exception):
    """Ends one connect attempt (nats-py would otherwise retry inside ``connect``)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(describe(cause))
        self.cause = cause


_DENIED = re.compile(r"permissions violation for (\w+) to \"?([^\"']+)", re.IGNORECASE)
# Each client's callbacks, so start-up can tell a request that timed out because the
# server refused it (``permission_denials``).
_CALLBACKS: weakref.WeakKeyDictionary[NATS, _Callbacks] = weakref.WeakKeyDictionary()


def denied_permission(exc: BaseException) -> str | None:
    """``"publish to SUBJECT"`` when ``exc`` is the server's permissions violation, else None.

    nats-py hands the server's error text over lowercased, so the subject is lowercase.
    """
    found = _DENIED.search(str(exc))
    if found is None:
        return None
    action = found.group(1).lower()
    return f"{'subscribe' if action.startswith('subscr') else action} to {found.group(2).strip()}"


def permission_denials(nc: NATS) -> list[str]:
    """The permissions the server refused this client so far (newest last)."""
    callbacks = _CALLBACKS.get(nc)
    return list(callbacks.denied) if callbacks is not None else []


def permission_fix(auth: NatsAuth | None) -> str:
    """What to change when NATS refuses a permission to ``auth``'s user."""
    if auth is None or auth.anonymous:
        return "set the client's NATS_CREDS to its own seed from `fleet security generate`"
    if auth.setting.endswith("TLS_CERT"):
        return (
            f"set {auth.setting} to {auth.user}'s own client certificate (subject "
            f"CN={auth.user}), or regenerate the server's users "
            "(`fleet security generate --tls-map`)"
        )
    return (
        f"set {auth.setting} to {auth.user}'s own seed file from `fleet security generate` "
        "(generate again after a streams.yaml change)"
    )


def _is_auth_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, _PERMANENT) or "authorization" in text or "authentication" in text


class _Callbacks:
    """nats-py's callbacks, reporting through structlog without tracebacks."""

    def __init__(self, server: Server, auth: NatsAuth | None) -> None:
        self.server = server
        self.auth = auth
        self.denied: list[str] = []
        self.connected = False
        self.client: NATS | None = None
        self._outage_reported = False

    def closing(self) -> bool:
        """Whether the connection is being closed on purpose (drain, close)."""
        return self.client is not None and (self.client.is_closed or self.client.is_draining)

    async def error(self, exc: Exception) -> None:
        denied = denied_permission(exc)
        if denied is not None:
            # The server refused one publish or subscription (the connection stays up).
            self.denied = [*self.denied[-9:], denied]
            log.error(
                "nats_permission_denied",
                **self.server.fields(),
                user=self.auth.user if self.auth else None,
                permission=denied,
                creds_setting=self.auth.setting if self.auth else None,
                fix=permission_fix(self.auth),
            )
            return
        if not self.connected:
            # Raised inside nats-py's connect loop: ends this attempt; ``wait_for`` retries.
            raise _AttemptFailed(exc)
        if isinstance(exc, OSError | NoServersError) or "connect" in str(exc).lower():
            level = log.debug if self._outage_reported else log.warning
            self._outage_reported = True
            level("nats_reconnect_failed", **self.server.fields(), error=describe(exc))
            return
        log.warning("nats_error", **self.server.fields(), error=describe(exc))

    async def disconnected(self) -> None:
        if self.connected and not self.closing():
            log.warning("nats_disconnected", **self.server.fields())

    async def reconnected(self) -> None:
        self._outage_reported = False
        log.info("nats_reconnected", **self.server.fields())


async def connect_nats(
    url: str,
    name: str,
    *,
    server: Server | None = None,
    timeout_s: float = 60.0,
    auth: NatsAuth | None = None,
) -> NATS:
    """Connect to NATS, waiting for it up to ``timeout_s``; then reconnect forever.

    ``server`` names the setting that holds ``url`` in the log lines. A refused
    authentication is a ``StartupRefused`` at once; an unreachable server past the
    timeout is ``StartupTimedOut``. ``auth`` holds the user's credentials, inbox and TLS
    (``fleet_runtime.natsauth``); a permission the server refuses later is logged in one
    line naming it and the setting to fix.
    """
    where = server or Server("NATS", redact(url), "the NATS URL")
    servers = [u.strip() for u in url.split(",") if u.strip()]
    callbacks = _Callbacks(where, auth)
    options: dict[str, Any] = {
        "servers": servers,
        "name": name,
        "connect_timeout": 5,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        "allow_reconnect": True,
        "pending_size": 64 * 1024 * 1024,
        "error_cb": callbacks.error,
        "disconnected_cb": callbacks.disconnected,
        "reconnected_cb": callbacks.reconnected,
        **(auth.options if auth else {}),
    }

    async def attempt() -> NATS:
        nc = NATS()
        try:
            await nc.connect(**options)
        except _AttemptFailed as failed:
            with contextlib.suppress(Exception):
                await nc.close()
            if _is_auth_error(failed.cause):
                raise StartupRefused(
                    f"NATS at {where.address} refused the connection: {describe(failed.cause)}",
                    fix=f"put the right user and password (or token) in {where.setting}"
                    if auth is None or auth.anonymous
                    else f"set {auth.setting} to {auth.user}'s current seed file "
                    "(`fleet security generate`; its key must be in the server's config)",
                ) from None
            raise
        callbacks.connected = True
        callbacks.client = nc
        _CALLBACKS[nc] = callbacks
        return nc

    return await wait_for(where, attempt, timeout_s=timeout_s, retry_on=(_AttemptFailed, OSError))
