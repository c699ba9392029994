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
from fleet_runtime.shared_settings import variable_with_prefix
from fleet_runtime.startup import StartupRefused

from .errors import NOT_MIGRATED_ERRORS, TRANSIENT_ERRORS


def _setting(service: str, field: str = "postgres_dsn") -> str:
    return variable_with_prefix(service.replace("-", "_").upper() + "_", field)


def refused_login(exc: BaseException, service: str) -> StartupRefused | None:
    """The start-up error for a login PostgreSQL refused for good, or None if it is not one."""
    dsn = _setting(service)
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return StartupRefused(
            f"PostgreSQL refused the password of {service}'s role ({exc})",
            fix=f"put the role's password in {dsn}",
        )
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError) and "role" in str(exc):
        return StartupRefused(
            f"PostgreSQL has no such login role ({exc})",
            fix="create the roles once per cluster: psql -f deploy/postgres/roles.sql "
            f"(as a superuser; see its header), or correct the user in {dsn}",
        )
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return StartupRefused(
            f"PostgreSQL refused the login ({exc})",
            fix=f"allow the worker's host and role in pg_hba.conf, or correct {dsn}",
        )
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return StartupRefused(
            f"PostgreSQL has no such database ({exc})",
            fix=f"create it (deploy/postgres/roles.sql creates tradefleet) or correct {dsn}",
        )
    return None


def not_migrated(exc: BaseException, schema: str, service: str) -> StartupRefused:
    """The start-up error for a schema, table or grant that the migrations create."""
    return StartupRefused(
        f"PostgreSQL schema {schema} is not migrated for {service} ({type(exc).__name__}: {exc})",
        fix=f"run `{service} migrate` with {_setting(service, 'owner_dsn')} set to the "
        f"schema owner's DSN (or set {_setting(service, 'migrate_on_start')}=true)",
    )


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
    try:
        pool = await _create_pool(dsn, schema, service, command_timeout, init, search_path)
    except asyncpg.PostgresError as exc:
        refused = refused_login(exc, service)
        if refused is None:
            raise
        raise refused from None
    return pool


async def _create_pool(
    dsn: str,
    schema: str,
    service: str,
    command_timeout: float,
    init: Any,
    search_path: str | None,
) -> asyncpg.Pool:
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
    """Fail fast if the schema or the grants are missing (``StartupRefused``, with the fix).

    An unreachable server is ``StoreUnavailable``: start-up waits for it.
    """
    try:
        async with unavailable_on_outage(schema, service), pool.acquire() as conn:
            # The schema name is the service's own constant, never user input.
            await conn.fetchval(f"SELECT count(*) FROM {schema}.checkpoints")  # noqa: S608
    except StoreUnavailable as exc:
        if isinstance(exc.__cause__, NOT_MIGRATED_ERRORS):
            raise not_migrated(exc.__cause__, schema, service) from None
        raise
