"""Which asyncpg errors mean "the store is unavailable" rather than "this input is bad".

``outage.unavailable_on_outage`` turns them into the runtime's ``StoreUnavailable`` (pause
and retry, never dead-letter). The migration modules themselves (runner, roles, cli) do
not import the runtime, so a deploy job can run them alone.
"""

from __future__ import annotations

import asyncpg

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.QueryCanceledError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
)
"""Connection loss, timeouts, server restarts and conflicts that succeed when retried."""

NOT_MIGRATED_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.InsufficientPrivilegeError,
    asyncpg.UndefinedTableError,
    asyncpg.InvalidSchemaNameError,
)
"""The schema or a grant is missing: an operator must migrate. At start-up the worker stops
with the fix (``outage.probe_schema``); once consuming it pauses and retries."""
