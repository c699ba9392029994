"""A PostgreSQL worker's pool and how its errors reach the runtime.

Connection loss, timeouts and a missing schema or grant are not bad input: they become
the runtime's ``StoreUnavailable`` (the worker pauses and retries, nothing is
dead-lettered). Any other database error propagates as it is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from fleet_runtime.errors import StoreUnavailable

from .errors import NOT_MIGRATED_ERRORS, TRANSIENT_ERRORS


@asynccontextmanager
async def unavailable_on_outage(schema: str, service: str) -> AsyncIterator[None]:
    """Translate outage errors raised inside the block into ``StoreUnavailable``."""
    try:
        yield
    except TRANSIENT_ERRORS as exc:
        raise StoreUnavailable(f"PostgreSQL: {type(exc).__name__}: {exc}") from exc
    except NOT_MIGRATED_ERRORS as exc:
        raise StoreUnavailable(
            f"PostgreSQL schema {schema} not usable by this role ({type(exc).__name__}: "
            f"{exc}); run `{service} migrate` with the owner DSN"
        ) from exc


async def open_pool(
    dsn: str,
    *,
    schema: str,
    service: str,
    command_timeout: float = 60.0,
    init: Any = None,
    search_path: str | None = None,
) -> asyncpg.Pool:
    """A small pool (a worker applies one batch at a time per consumer).

    ``init`` runs on every new connection (asyncpg's pool hook). Statements name their
    tables without a schema and find them through ``search_path`` (default: ``schema``),
    so the same store code writes into a replay's shadow schema
    (``fleet_pgmigrate.shadow``).

    Every session plans each statement for its actual parameters
    (``plan_cache_mode = force_custom_plan``): asyncpg prepares a statement once per
    connection, and a generic plan chosen while the tables were small (sequential scans)
    would stay until the connection closes, so a batch's ``id = ANY(...)`` lookups would
    scan whole tables and batches would slow down as the tables grow.
    """
    async with unavailable_on_outage(schema, service):
        return await asyncpg.create_pool(
            dsn,
            min_size=1,
            max_size=2,
            command_timeout=command_timeout,
            init=init,
            server_settings={
                "plan_cache_mode": "force_custom_plan",
                "search_path": search_path or schema,
            },
        )


async def probe_schema(pool: asyncpg.Pool, schema: str, service: str) -> None:
    """Fail fast (as ``StoreUnavailable``) if the server, the schema or the grants are missing."""
    async with unavailable_on_outage(schema, service), pool.acquire() as conn:
        # The schema name is the service's own constant, never user input.
        await conn.fetchval(f"SELECT count(*) FROM {schema}.checkpoints")  # noqa: S608
