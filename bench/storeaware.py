"""The store-aware limit: the rows a PostgreSQL worker writes, by the fastest raw bulk path.

The same events the worker drains are decoded and turned into rows, already in COPY's
text format, before the clock starts (no NATS, no decoding, no fold, no client-side
encoding); then the rows go into a freshly migrated copy of the worker's schema (same
tables, same indexes) in transactions of ``CHUNK`` events: COPY into an unindexed
temporary table, then one INSERT ... SELECT (upsert where the worker upserts) per table. What is left between this rate and the worker's is the worker's own
cost: consuming, decoding, folding and the smaller transactions of its batches.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from bench.workloads import Workload
from fleet_events import BotCreated, BotDeployed, BotStarted, BotStopped, decode

CHUNK = 10_000
"""Events per transaction (the raw store write's COPY size)."""

_TRADES_STAGE = """
CREATE TEMP TABLE stage_trades (
    trade_id text, order_id text, bot_id text, user_id text, symbol text, side text,
    price text, quantity text, fee text, fee_currency text, executed_at timestamptz,
    event_id uuid, stream_seq bigint)
"""

_TRADES = """
INSERT INTO trading.trades (trade_id, order_id, bot_id, user_id, symbol, side, price,
    quantity, filled_quantity, fee, fee_currency, status, executed_at, event_id, stream_seq)
SELECT trade_id, order_id, bot_id, user_id, symbol, side, price::numeric, quantity::numeric,
    quantity::numeric, fee::numeric, fee_currency, 'FILLED', executed_at, event_id, stream_seq
FROM stage_trades
ON CONFLICT (trade_id) DO NOTHING
"""

_ORDERS = """
INSERT INTO trading.orders (order_id, bot_id, user_id, symbol, filled_quantity, fill_count)
SELECT order_id, min(bot_id), min(user_id), min(symbol), sum(quantity::numeric), count(*)
FROM stage_trades GROUP BY order_id
ON CONFLICT (order_id) DO UPDATE SET
    filled_quantity = orders.filled_quantity + EXCLUDED.filled_quantity,
    fill_count = orders.fill_count + EXCLUDED.fill_count, updated_at = now()
"""

# One write per position key and chunk, as the worker writes each key once per batch.
_POSITIONS = """
INSERT INTO trading.positions (user_id, bot_id, symbol, side, quantity,
    average_entry_price, max_quantity, fill_count, opened_at, last_trade_id)
SELECT user_id, bot_id, symbol, 'LONG', sum(quantity::numeric), max(price::numeric),
    sum(quantity::numeric), count(*), min(executed_at), max(trade_id)
FROM stage_trades GROUP BY user_id, bot_id, symbol
ON CONFLICT (user_id, bot_id, symbol) WHERE is_open DO UPDATE SET
    quantity = EXCLUDED.quantity, average_entry_price = EXCLUDED.average_entry_price,
    max_quantity = EXCLUDED.max_quantity, fill_count = positions.fill_count + EXCLUDED.fill_count,
    last_trade_id = EXCLUDED.last_trade_id, updated_at = now()
"""

_CHECKPOINT = """
INSERT INTO {schema}.checkpoints AS c (name, stream_seq) VALUES ('bench', $1)
ON CONFLICT (name) DO UPDATE SET stream_seq = EXCLUDED.stream_seq, updated_at = now()
"""


async def _migrated(owner_dsn: str, database: str, migrate: Any, roles: Any) -> str:
    """A fresh database on the same server with the worker's schema migrated; its DSN."""
    conn = await asyncpg.connect(owner_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
        await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    dsn = owner_dsn.rsplit("/", 1)[0] + f"/{database}"
    await roles(dsn)
    await migrate(dsn)
    return dsn


def _copy_text(rows: Sequence[Sequence[Any]]) -> bytes:
    """Rows in COPY's text format (the benchmark's values hold no tabs or backslashes)."""
    out = []
    for row in rows:
        out.append(
            "\t".join(
                "\\N" if v is None else v.isoformat() if isinstance(v, datetime) else str(v)
                for v in row
            )
        )
    return ("\n".join(out) + "\n").encode()


async def _copy(conn: asyncpg.Connection, table: str, data: bytes) -> None:
    await conn.copy_to_table(table, source=io.BytesIO(data), format="text")


def _events(workload: Workload, n: int) -> list[tuple[Any, int]]:
    return [(decode(data), seq) for seq, (_, data, _) in enumerate(workload.messages[:n], 1)]


async def trades_limit(owner_dsn: str, workload: Workload, n: int) -> float:
    """trade-recorder's rows (trades, orders, positions, checkpoint) for ``n`` fills. Fills/s."""
    from trade_recorder.executions import Execution  # noqa: PLC0415
    from trade_recorder.store import (  # noqa: PLC0415
        ensure_roles,
        fill_record,
        run_migrations,
    )

    dsn = await _migrated(owner_dsn, "store_aware_trading", run_migrations, ensure_roles)
    rows = [fill_record(Execution.of(event), seq) for event, seq in _events(workload, n)]
    chunks = [
        (_copy_text(rows[i : i + CHUNK]), rows[min(i + CHUNK, len(rows)) - 1][-1])
        for i in range(0, len(rows), CHUNK)
    ]
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(_TRADES_STAGE)
        started = time.perf_counter()
        for data, last_seq in chunks:
            async with conn.transaction():
                await conn.execute("TRUNCATE stage_trades")
                await _copy(conn, "stage_trades", data)
                await conn.execute(_TRADES)
                await conn.execute(_ORDERS)
                await conn.execute(_POSITIONS)
                await conn.execute(_CHECKPOINT.format(schema="trading"), last_seq)
        rate = len(rows) / (time.perf_counter() - started)
    finally:
        await conn.close()
    return rate


_BOTS_STAGE = {
    "stage_audit": (
        "event_id uuid, event_type text, bot_id text, user_id text, version int, "
        "new_values text, occurred_at timestamptz, stream_seq bigint"
    ),
    "stage_bots": (
        "id text, user_id text, name text, type text, config text, status text, "
        "version int, tags text, max_position_size text, current_deployment_id text, "
        "created_at timestamptz, updated_at timestamptz"
    ),
    "stage_deployments": (
        "id text, bot_id text, bot_version int, runtime text, status text, "
        "deployed_at timestamptz, started_at timestamptz, stopped_at timestamptz, "
        "stop_reason text, updated_at timestamptz"
    ),
}

_BOTS = """
INSERT INTO lifecycle.users (id) SELECT DISTINCT user_id FROM stage_bots
ON CONFLICT (id) DO NOTHING;
INSERT INTO lifecycle.bots (id, user_id, name, type, config, status, version, tags,
    max_position_size, current_deployment_id, created_at, updated_at)
SELECT id, user_id, name, type, config::jsonb, status, version,
    ARRAY(SELECT jsonb_array_elements_text(tags::jsonb)), max_position_size::numeric,
    current_deployment_id, created_at, updated_at
FROM stage_bots
ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, version = EXCLUDED.version,
    current_deployment_id = EXCLUDED.current_deployment_id, updated_at = EXCLUDED.updated_at;
INSERT INTO lifecycle.bot_deployments (id, bot_id, bot_version, runtime, status,
    deployed_at, started_at, stopped_at, stop_reason, updated_at)
SELECT id, bot_id, bot_version, runtime, status, deployed_at, started_at, stopped_at,
    stop_reason, updated_at
FROM stage_deployments
ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, started_at = EXCLUDED.started_at,
    stopped_at = EXCLUDED.stopped_at, stop_reason = EXCLUDED.stop_reason,
    updated_at = EXCLUDED.updated_at;
INSERT INTO lifecycle.audit_log (event_id, event_type, bot_id, user_id, version,
    new_values, occurred_at, stream_seq)
SELECT event_id, event_type, bot_id, user_id, version, new_values::jsonb, occurred_at,
    stream_seq
FROM stage_audit
ON CONFLICT (event_id) DO NOTHING;
"""


def _bot_rows(
    chunk: list[tuple[Any, int]],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Audit rows per event; each bot and deployment in its state at the chunk's end."""
    audit: list[tuple[Any, ...]] = []
    bots: dict[str, list[Any]] = {}
    deployments: dict[str, list[Any]] = {}
    users: dict[str, str] = {}
    for event, seq in chunk:
        d = event.data
        at: datetime = event.time
        if isinstance(d, BotCreated):
            users[d.bot_id] = d.user_id
        user = users.get(d.bot_id, "unknown")
        audit.append((event.id, event.type, d.bot_id, user, d.version, "{}", at, seq))
        if isinstance(d, BotCreated):
            bots[d.bot_id] = [
                d.bot_id,
                d.user_id,
                d.name,
                d.type,
                '{"grid": 10}',
                "created",
                d.version,
                '["bench"]',
                str(d.max_position_size),
                None,
                at,
                at,
            ]
            continue
        bot = bots.get(d.bot_id)
        if bot is None:
            continue
        bot[6], bot[11] = d.version, at
        if isinstance(d, BotDeployed):
            bot[5], bot[9] = "deployed", d.deployment_id
            deployments[d.deployment_id] = [
                d.deployment_id, d.bot_id, d.version, d.runtime, "deployed", at, None, None,
                None, at,
            ]  # fmt: skip
        elif isinstance(d, BotStarted | BotStopped) and d.deployment_id in deployments:
            dep = deployments[d.deployment_id]
            if isinstance(d, BotStarted):
                bot[5], dep[4], dep[6] = "running", "running", at
            else:
                bot[5], dep[4], dep[7], dep[8] = "stopped", "stopped", at, d.reason
            dep[9] = at
    return audit, [tuple(b) for b in bots.values()], [tuple(x) for x in deployments.values()]


async def bots_limit(owner_dsn: str, workload: Workload, n: int) -> float:
    """bot-lifecycle's rows (users, bots, deployments, audit, checkpoint) for ``n`` events.

    Events/s. A chunk holds whole bots (the workload has 4 events a bot, in order).
    """
    from bot_lifecycle.store import ensure_roles, run_migrations  # noqa: PLC0415

    dsn = await _migrated(owner_dsn, "store_aware_lifecycle", run_migrations, ensure_roles)
    events = _events(workload, n)
    chunks = []
    for i in range(0, len(events), CHUNK):
        audit, bots, deployments = _bot_rows(events[i : i + CHUNK])
        encoded = (_copy_text(audit), _copy_text(bots), _copy_text(deployments))
        chunks.append((*encoded, audit[-1][-1]))
    conn = await asyncpg.connect(dsn)
    try:
        for table, cols in _BOTS_STAGE.items():
            await conn.execute(f"CREATE TEMP TABLE {table} ({cols})")
        started = time.perf_counter()
        for audit, bots, deployments, last_seq in chunks:
            async with conn.transaction():
                await conn.execute("TRUNCATE stage_audit, stage_bots, stage_deployments")
                await _copy(conn, "stage_audit", audit)
                await _copy(conn, "stage_bots", bots)
                await _copy(conn, "stage_deployments", deployments)
                await conn.execute(_BOTS)
                await conn.execute(_CHECKPOINT.format(schema="lifecycle"), last_seq)
        rate = len(events) / (time.perf_counter() - started)
    finally:
        await conn.close()
    return rate
