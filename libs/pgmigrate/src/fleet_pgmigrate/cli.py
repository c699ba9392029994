"""The ``migrate`` subcommand every PostgreSQL worker's console script offers."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable

import asyncpg

from .runner import MigrationError, applied_versions, load_migrations, migrate


async def _run(dsn: str, schema: str, package: str, check: bool) -> int:
    try:
        conn = await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"error: cannot connect to PostgreSQL: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    try:
        if check:
            done = await applied_versions(conn, schema)
            pending = [m.file_name for m in load_migrations(package) if m.version not in done]
            print(f"schema {schema}: {len(done)} applied, {len(pending)} pending")
            for name in pending:
                print(f"  pending {name}")
            return 1 if pending else 0
        applied = await migrate(conn, schema=schema, package=package)
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        await conn.close()
    if not applied:
        print(f"schema {schema}: up to date")
    for migration in applied:
        print(f"schema {schema}: applied {migration.file_name}")
    return 0


def migrate_main(
    argv: list[str],
    *,
    program: str,
    schema: str,
    package: str,
    default_dsn: str | Callable[[], str | None] | None,
    dsn_setting: str = "the worker's OWNER_DSN",
) -> int:
    """Parse ``migrate [--dsn DSN] [--check]`` and run it; return the exit status."""
    parser = argparse.ArgumentParser(
        prog=f"{program} migrate",
        description=f"Apply pending migrations of PostgreSQL schema {schema} (as an owner role).",
    )
    parser.add_argument("--dsn", help=f"owner DSN (default: {dsn_setting})")
    parser.add_argument(
        "--check", action="store_true", help="only list pending migrations; exit 1 if any"
    )
    args = parser.parse_args(argv)
    dsn = args.dsn or (default_dsn() if callable(default_dsn) else default_dsn)
    if not dsn:
        print(f"error: no owner DSN: pass --dsn or set {dsn_setting}", file=sys.stderr)
        return 2
    return asyncio.run(_run(dsn, schema, package, args.check))
