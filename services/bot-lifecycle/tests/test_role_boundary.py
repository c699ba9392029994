"""Least privilege: each worker's role writes its own schema and nothing else.

Both services' migrations run here (as the owner) because the claim is about the pair.
"""

from __future__ import annotations

import asyncpg
import pytest

from bot_lifecycle import store as lifecycle
from fleet_pgmigrate import dsn_with
from trade_recorder import store as trading


@pytest.fixture
async def both_schemas(postgres_database: str) -> str:
    for service in (lifecycle, trading):
        await service.ensure_roles(postgres_database)
        await service.run_migrations(postgres_database)
    return postgres_database


async def run_as(dsn: str, role: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn_with(dsn, user=role))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


BOT_ROW = (
    "INSERT INTO lifecycle.users (id) VALUES ('u'); "
    "INSERT INTO lifecycle.bots (id, user_id, name, type, config, status, version, "
    "created_at, updated_at) VALUES ('b', 'u', 'n', 't', '{}', 'created', 1, now(), now())"
)
CHECKPOINT_ROW = "INSERT INTO trading.checkpoints (name, stream_seq) VALUES ('x', 1)"


async def test_each_role_writes_its_own_schema(both_schemas: str) -> None:
    await run_as(both_schemas, lifecycle.ROLE, BOT_ROW)
    await run_as(both_schemas, trading.ROLE, CHECKPOINT_ROW)


@pytest.mark.parametrize(
    ("role", "sql"),
    [
        (trading.ROLE, BOT_ROW),
        (trading.ROLE, "UPDATE lifecycle.bots SET name = 'x'"),
        (trading.ROLE, "SELECT * FROM lifecycle.audit_log"),
        (lifecycle.ROLE, CHECKPOINT_ROW),
        (lifecycle.ROLE, "DELETE FROM trading.trades"),
        (lifecycle.ROLE, "UPDATE lifecycle.audit_log SET version = 0"),
        (lifecycle.ROLE, "CREATE TABLE lifecycle.extra (x int)"),
        (trading.ROLE, "DROP TABLE trading.trades"),
    ],
)
async def test_a_role_cannot_touch_the_other_schema_or_change_its_own(
    both_schemas: str, role: str, sql: str
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await run_as(both_schemas, role, sql)
