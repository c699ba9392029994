"""PostgreSQL adapter of trade-recorder: trades, orders and positions in schema ``trading``.

One transaction per batch: lock the checkpoint row, skip what it covers, COPY the fills
into a temporary table, insert the new ones (``ON CONFLICT (trade_id) DO NOTHING
RETURNING``), fold only those into positions (each key read ``FOR UPDATE`` and written
once), update orders, then advance the checkpoint and commit. A fill seen again under any
event id or stream sequence changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import asyncpg

from fleet_pgmigrate import (
    NOT_MIGRATED_ERRORS,
    TRANSIENT_ERRORS,
    Migration,
    ensure_login_role_at,
    migrate_at,
)
from fleet_runtime.delivery import Batch
from fleet_runtime.errors import StoreUnavailable
from trade_recorder import logic
from trade_recorder.logic import Fill, OrderOutcome, Position, PositionKey

SCHEMA = "trading"
ROLE = "trade_recorder"
MIGRATIONS = "trade_recorder.migrations"

if TYPE_CHECKING:
    Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]

_FILL_COLUMNS = (
    "trade_id",
    "order_id",
    "bot_id",
    "user_id",
    "symbol",
    "side",
    "price",
    "quantity",
    "fee",
    "fee_currency",
    "executed_at",
    "event_id",
    "stream_seq",
)

_CREATE_INCOMING = """
CREATE TEMP TABLE IF NOT EXISTS incoming_fills (
    trade_id text, order_id text, bot_id text, user_id text, symbol text, side text,
    price numeric, quantity numeric, fee numeric, fee_currency text,
    executed_at timestamptz, event_id uuid, stream_seq bigint
) ON COMMIT DELETE ROWS
"""

# DISTINCT ON keeps the first copy in stream order when one batch repeats a trade_id.
_INSERT_TRADES = """
INSERT INTO trading.trades (trade_id, order_id, bot_id, user_id, symbol, side, price,
    quantity, filled_quantity, fee, fee_currency, status, executed_at, event_id, stream_seq)
SELECT DISTINCT ON (trade_id) trade_id, order_id, bot_id, user_id, symbol, side, price,
    quantity, quantity, fee, fee_currency, 'FILLED', executed_at, event_id, stream_seq
FROM incoming_fills
ORDER BY trade_id, stream_seq
ON CONFLICT (trade_id) DO NOTHING
RETURNING trade_id
"""

_LOCK_POSITIONS = """
SELECT p.* FROM trading.positions p
JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(user_id, bot_id, symbol)
  ON p.user_id = k.user_id AND p.bot_id = k.bot_id AND p.symbol = k.symbol
WHERE p.is_open
FOR UPDATE OF p
"""

_UPDATE_POSITIONS = """
UPDATE trading.positions p SET
    side = u.side, quantity = u.quantity, average_entry_price = u.average_entry_price,
    max_quantity = u.max_quantity, realized_pnl = u.realized_pnl, fees = u.fees,
    fill_count = u.fill_count, is_open = u.is_open, opened_at = u.opened_at,
    closed_at = u.closed_at, last_trade_id = u.last_trade_id, updated_at = now()
FROM unnest($1::bigint[], $2::text[], $3::numeric[], $4::numeric[], $5::numeric[],
            $6::numeric[], $7::numeric[], $8::int[], $9::bool[], $10::timestamptz[],
            $11::timestamptz[], $12::text[])
  AS u(id, side, quantity, average_entry_price, max_quantity, realized_pnl, fees,
       fill_count, is_open, opened_at, closed_at, last_trade_id)
WHERE p.id = u.id
"""

# WITH ORDINALITY keeps the given order, so a key's closed rows are inserted before its
# open one and the partial unique index on open positions never sees two.
_INSERT_POSITIONS = """
INSERT INTO trading.positions (user_id, bot_id, symbol, side, quantity, average_entry_price,
    max_quantity, realized_pnl, fees, fill_count, is_open, opened_at, closed_at, last_trade_id)
SELECT user_id, bot_id, symbol, side, quantity, average_entry_price,
    max_quantity, realized_pnl, fees, fill_count, is_open, opened_at, closed_at, last_trade_id
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::numeric[], $6::numeric[],
            $7::numeric[], $8::numeric[], $9::numeric[], $10::int[], $11::bool[],
            $12::timestamptz[], $13::timestamptz[], $14::text[]) WITH ORDINALITY
  AS n(user_id, bot_id, symbol, side, quantity, average_entry_price, max_quantity,
       realized_pnl, fees, fill_count, is_open, opened_at, closed_at, last_trade_id, ord)
ORDER BY ord
"""

_ADD_ORDER_FILLS = """
INSERT INTO trading.orders (order_id, bot_id, user_id, symbol, filled_quantity, fill_count)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::numeric[], $6::int[])
ON CONFLICT (order_id) DO UPDATE SET
    filled_quantity = trading.orders.filled_quantity + EXCLUDED.filled_quantity,
    fill_count = trading.orders.fill_count + EXCLUDED.fill_count,
    updated_at = now()
"""

# The first outcome wins: a finished order is never reopened or re-finished.
_FINISH_ORDERS = """
INSERT INTO trading.orders (order_id, bot_id, user_id, symbol, status,
    reported_filled_quantity, average_price, failure_reason, finished_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                     $6::numeric[], $7::numeric[], $8::text[], $9::timestamptz[])
ON CONFLICT (order_id) DO UPDATE SET
    status = EXCLUDED.status,
    reported_filled_quantity = EXCLUDED.reported_filled_quantity,
    average_price = EXCLUDED.average_price,
    failure_reason = EXCLUDED.failure_reason,
    finished_at = EXCLUDED.finished_at,
    updated_at = now()
WHERE trading.orders.status = 'open'
"""


@dataclass(frozen=True)
class RecordResult:
    """What one batch changed."""

    fills_recorded: int = 0
    fills_repeated: int = 0
    orders_finished: int = 0
    positions_written: int = 0
    skipped: int = 0
    """Events at or below the stored checkpoint (applied by an earlier delivery)."""


class TradeStore(Protocol):
    """Where trade-recorder writes: one idempotent call per batch."""

    async def record(self, batch: Batch[Any]) -> RecordResult:
        """Apply the batch's events not yet covered by its checkpoint, atomically."""
        ...


@asynccontextmanager
async def translated_errors() -> AsyncIterator[None]:
    """Turn connection loss, timeouts and a missing schema or grant into StoreUnavailable.

    Those are not bad input: the runtime pauses and retries, nothing is dead-lettered.
    Other database errors propagate as they are (the runtime isolates the event).
    """
    try:
        yield
    except TRANSIENT_ERRORS as exc:
        raise StoreUnavailable(f"PostgreSQL: {type(exc).__name__}: {exc}") from exc
    except NOT_MIGRATED_ERRORS as exc:
        raise StoreUnavailable(
            f"PostgreSQL schema {SCHEMA} not usable by this role ({type(exc).__name__}: {exc}); "
            "run `trade-recorder migrate` with the owner DSN"
        ) from exc


class PostgresTradeStore:
    """``TradeStore`` on a small asyncpg pool (one batch at a time per consumer)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, dsn: str, *, command_timeout: float = 60.0) -> PostgresTradeStore:
        """Open the pool; an unreachable server raises StoreUnavailable."""
        async with translated_errors():
            pool = await asyncpg.create_pool(
                dsn, min_size=1, max_size=2, command_timeout=command_timeout
            )
        return cls(pool)

    async def close(self) -> None:
        """Close the pool."""
        await self._pool.close()

    async def probe(self) -> None:
        """Fail fast if the server, the schema or the grants are missing."""
        async with translated_errors(), self._pool.acquire() as conn:
            await conn.fetchval("SELECT count(*) FROM trading.checkpoints")

    async def record(self, batch: Batch[Any]) -> RecordResult:
        """Apply ``batch`` in one transaction (see module docstring)."""
        if not batch.deliveries:
            return RecordResult()
        async with translated_errors(), self._pool.acquire() as conn, conn.transaction():
            applied = await _lock_checkpoint(conn, batch.checkpoint)
            todo = batch.after(applied)
            result = RecordResult(skipped=len(batch) - len(todo))
            if todo.deliveries:
                split = logic.split_events((d.event, d.stream_seq) for d in todo.deliveries)
                result = await _write(conn, split, skipped=result.skipped)
            await conn.execute(
                "UPDATE trading.checkpoints SET stream_seq = $2, updated_at = now() "
                "WHERE name = $1 AND stream_seq < $2",
                batch.checkpoint,
                batch.last_seq,
            )
            return result

    async def checkpoint(self, name: str) -> int:
        """The stored checkpoint ``name`` (0 if none)."""
        async with translated_errors(), self._pool.acquire() as conn:
            seq = await conn.fetchval(
                "SELECT stream_seq FROM trading.checkpoints WHERE name = $1", name
            )
        return int(seq or 0)


async def _lock_checkpoint(conn: Conn, name: str) -> int:
    # The row lock serialises two instances that were handed the same consumer's batches.
    await conn.execute(
        "INSERT INTO trading.checkpoints (name, stream_seq) VALUES ($1, 0) "
        "ON CONFLICT (name) DO NOTHING",
        name,
    )
    seq = await conn.fetchval(
        "SELECT stream_seq FROM trading.checkpoints WHERE name = $1 FOR UPDATE", name
    )
    return int(seq)


async def _write(conn: Conn, split: logic.TradeBatch, *, skipped: int) -> RecordResult:
    new_fills = await _insert_fills(conn, split.fills)
    positions = await _update_positions(conn, new_fills)
    await _add_order_fills(conn, new_fills)
    finished = await _finish_orders(conn, logic.first_outcomes(split.outcomes))
    return RecordResult(
        fills_recorded=len(new_fills),
        fills_repeated=len(split.fills) - len(new_fills),
        orders_finished=finished,
        positions_written=positions,
        skipped=skipped,
    )


async def _insert_fills(conn: Conn, fills: Sequence[Fill]) -> list[Fill]:
    """Insert the fills; return those that were new, first copy only, in stream order."""
    if not fills:
        return []
    await conn.execute(_CREATE_INCOMING)
    await conn.copy_records_to_table(
        "incoming_fills",
        records=[
            (
                f.trade_id,
                f.order_id,
                f.bot_id,
                f.user_id,
                f.symbol,
                f.side.value,
                f.price,
                f.quantity,
                f.fee,
                f.fee_currency,
                f.executed_at,
                f.event_id,
                f.stream_seq,
            )
            for f in fills
        ],
        columns=_FILL_COLUMNS,
    )
    inserted = {r["trade_id"] for r in await conn.fetch(_INSERT_TRADES)}
    new: list[Fill] = []
    for fill in fills:
        if fill.trade_id in inserted:
            inserted.discard(fill.trade_id)
            new.append(fill)
    return new


def _position_from_row(row: asyncpg.Record) -> Position:
    return Position(
        id=row["id"],
        user_id=row["user_id"],
        bot_id=row["bot_id"],
        symbol=row["symbol"],
        side=row["side"],
        quantity=row["quantity"],
        average_entry_price=row["average_entry_price"],
        max_quantity=row["max_quantity"],
        realized_pnl=row["realized_pnl"],
        fees=row["fees"],
        fill_count=row["fill_count"],
        opened_at=row["opened_at"],
        closed_at=row["closed_at"],
        last_trade_id=row["last_trade_id"],
    )


async def _update_positions(conn: Conn, fills: Sequence[Fill]) -> int:
    """Fold the new fills into their positions: one read and one write per key."""
    if not fills:
        return 0
    by_key: dict[PositionKey, list[Fill]] = defaultdict(list)
    for fill in fills:
        by_key[fill.key].append(fill)
    keys = sorted(by_key)
    rows = await conn.fetch(
        _LOCK_POSITIONS, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]
    )
    current = {(r["user_id"], r["bot_id"], r["symbol"]): _position_from_row(r) for r in rows}
    updates: list[Position] = []
    inserts: list[Position] = []
    for key in keys:
        for position in logic.apply_fills(current.get(key), by_key[key]):
            (updates if position.id is not None else inserts).append(position)
    if updates:
        await conn.execute(
            _UPDATE_POSITIONS,
            [p.id for p in updates],
            *_position_columns(updates),
        )
    if inserts:
        await conn.execute(
            _INSERT_POSITIONS,
            [p.user_id for p in inserts],
            [p.bot_id for p in inserts],
            [p.symbol for p in inserts],
            *_position_columns(inserts),
        )
    return len(updates) + len(inserts)


def _position_columns(positions: Sequence[Position]) -> list[list[Any]]:
    return [
        [p.side for p in positions],
        [p.quantity for p in positions],
        [p.average_entry_price for p in positions],
        [p.max_quantity for p in positions],
        [p.realized_pnl for p in positions],
        [p.fees for p in positions],
        [p.fill_count for p in positions],
        [p.is_open for p in positions],
        [p.opened_at for p in positions],
        [p.closed_at for p in positions],
        [p.last_trade_id for p in positions],
    ]


async def _add_order_fills(conn: Conn, fills: Sequence[Fill]) -> None:
    if not fills:
        return
    orders: dict[str, tuple[Fill, Decimal, int]] = {}
    for fill in fills:
        first, quantity, count = orders.get(fill.order_id, (fill, Decimal(0), 0))
        orders[fill.order_id] = (first, quantity + fill.quantity, count + 1)
    values = list(orders.values())
    await conn.execute(
        _ADD_ORDER_FILLS,
        [f.order_id for f, _, _ in values],
        [f.bot_id for f, _, _ in values],
        [f.user_id for f, _, _ in values],
        [f.symbol for f, _, _ in values],
        [q for _, q, _ in values],
        [c for _, _, c in values],
    )


async def _finish_orders(conn: Conn, outcomes: Sequence[OrderOutcome]) -> int:
    if not outcomes:
        return 0
    status = await conn.execute(
        _FINISH_ORDERS,
        [o.order_id for o in outcomes],
        [o.bot_id for o in outcomes],
        [o.user_id for o in outcomes],
        [o.symbol for o in outcomes],
        [o.status for o in outcomes],
        [o.filled_quantity for o in outcomes],
        [o.average_price for o in outcomes],
        [o.reason for o in outcomes],
        [o.finished_at for o in outcomes],
    )
    return int(status.rsplit(" ", 1)[-1])


async def ensure_roles(owner_dsn: str, *, password: str | None = None) -> None:
    """Create the trade_recorder login role if the cluster lacks it (dev launcher, tests)."""
    await ensure_login_role_at(owner_dsn, ROLE, password=password)


async def run_migrations(owner_dsn: str) -> list[Migration]:
    """Apply the pending migrations of schema ``trading`` as the owner role."""
    return await migrate_at(owner_dsn, schema=SCHEMA, package=MIGRATIONS)
