"""`fleet doctor`'s checks of a PostgreSQL worker's store: login, schema, migrations."""

from __future__ import annotations

from typing import Any

import asyncpg

from fleet_runtime.diagnosis import CheckResult
from fleet_runtime.startup import describe, server_of

from .errors import NOT_MIGRATED_ERRORS, TRANSIENT_ERRORS
from .outage import not_migrated, refused_login
from .runner import applied_versions, load_migrations

TIMEOUT_S = 5.0


async def diagnose_postgres(
    settings: Any, *, service: str, schema: str, package: str
) -> list[CheckResult]:
    """Log in as the worker's role, then compare the applied migrations with the package's."""
    server = server_of(settings, "postgres_dsn", "PostgreSQL")
    login = f"PostgreSQL {server.address} ({server.setting})"
    try:
        conn = await asyncpg.connect(settings.postgres_dsn.get_secret_value(), timeout=TIMEOUT_S)
    except TRANSIENT_ERRORS as exc:
        return [
            CheckResult.failed(
                login, describe(exc), f"start PostgreSQL or point {server.setting} at it"
            )
        ]
    except asyncpg.PostgresError as exc:
        refused = refused_login(exc, service)
        fix = (
            refused.fix if refused else None
        ) or f"see the PostgreSQL log; check {server.setting}"
        return [CheckResult.failed(login, describe(exc), fix)]
    results = [CheckResult.passed(login, "login accepted")]
    check = f"migrations of schema {schema} applied"
    try:
        done = await applied_versions(conn, schema)
        await conn.fetchval(f"SELECT count(*) FROM {schema}.checkpoints")  # noqa: S608
    except NOT_MIGRATED_ERRORS as exc:
        error = not_migrated(exc, schema, service)
        return [*results, CheckResult.failed(check, str(error), error.fix or "")]
    finally:
        await conn.close()
    pending = [m.file_name for m in load_migrations(package) if m.version not in done]
    if pending:
        error = not_migrated(Exception("pending: " + ", ".join(pending)), schema, service)
        return [
            *results,
            CheckResult.failed(check, ", ".join(pending) + " pending", error.fix or ""),
        ]
    return [*results, CheckResult.passed(check, f"{len(done)} applied")]
