"""The PostgreSQL role backups run as: it reads every table and can write none."""

from __future__ import annotations

from typing import Any

import asyncpg

READER_ROLE = "backup_runner"


async def ensure_reader_role(admin_dsn: str, role: str = READER_ROLE) -> None:
    """Create ``role`` (LOGIN, member of pg_read_all_data) if it is not there.

    pg_read_all_data (PostgreSQL 14+) grants SELECT on every table and USAGE on every
    schema, present and future, and nothing else: a backup cannot change what it copies.
    Roles are cluster-wide, so one call covers every database of the server.
    """
    conn: Any = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
        if not exists:
            await conn.execute(f'CREATE ROLE "{role}" LOGIN')
        await conn.execute(f'GRANT pg_read_all_data TO "{role}"')
    finally:
        await conn.close()
