"""A small real PostgreSQL store for the runtime's own tests.

``effects`` holds one row per event id (the idempotent effect), ``checkpoints`` the
highest stream sequence applied per consumer, and ``applied`` one row per event the
handler wrote (no unique key): it shows re-application and the order of writes. All
three change in one transaction per batch.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
from asyncpg.exceptions import (
    ConnectionDoesNotExistError,
    InterfaceError,
    OperatorInterventionError,
    PostgresConnectionError,
)

from fleet_events import TradeExecuted
from fleet_runtime.delivery import Batch
from fleet_runtime.errors import StoreUnavailable

SCHEMA = """
CREATE TABLE IF NOT EXISTS effects (
    event_id uuid PRIMARY KEY,
    seq bigint NOT NULL,
    amount numeric NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (name text PRIMARY KEY, seq bigint NOT NULL);
CREATE TABLE IF NOT EXISTS applied (
    id bigserial PRIMARY KEY,
    event_id uuid NOT NULL,
    seq bigint NOT NULL
);
"""

# Driver errors that mean "the store is not reachable right now", not "bad input".
_UNAVAILABLE = (
    PostgresConnectionError,
    OperatorInterventionError,
    ConnectionDoesNotExistError,
    InterfaceError,
    OSError,
    TimeoutError,
)

T = TypeVar("T")


class PoisonedEvent(RuntimeError):
    """The handler refuses a poison trade while the poison flag file exists."""


def amount_of(data: object) -> Decimal:
    """The amount an event contributes: a fill's quantity."""
    return data.quantity if isinstance(data, TradeExecuted) else Decimal(0)


class PgTestStore:
    """Applies batches to PostgreSQL idempotently, checkpoint in the same transaction."""

    def __init__(self, pool: asyncpg.Pool, poison_flag: Path | None = None) -> None:
        self._pool = pool
        self.poison_flag = poison_flag
        self.killer: str | None = None
        """A trade id on which the handler ends the process at once (a crash loop)."""

    @classmethod
    async def open(
        cls, dsn: str, poison_flag: Path | None = None, *, lazy: bool = False
    ) -> PgTestStore:
        """A small pool with short timeouts; creates the tables unless ``lazy``.

        ``lazy`` opens no connection until first use, so a worker can start while the
        database is down (the tables must exist already).
        """
        pool = await asyncpg.create_pool(
            dsn, min_size=0 if lazy else 1, max_size=2, command_timeout=5, timeout=3
        )
        if not lazy:
            await pool.execute(SCHEMA)
        return cls(pool, poison_flag)

    @staticmethod
    async def create_schema(dsn: str) -> None:
        """Create the tables on a connection of its own."""
        conn = await asyncpg.connect(dsn, timeout=3)
        try:
            await conn.execute(SCHEMA)
        finally:
            await conn.close()

    async def close(self) -> None:
        """Close the pool."""
        await self._pool.close()

    async def _guard(self, work: Callable[[], Awaitable[T]]) -> T:
        try:
            return await work()
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def probe(self) -> None:
        """Fail fast when the database does not answer."""
        await self._guard(lambda: self._pool.fetchval("SELECT 1"))

    async def handle(self, batch: Batch[Any]) -> None:
        """The worker's handler: apply the part of ``batch`` past the checkpoint."""
        if self.killer is not None:
            for d in batch:
                if getattr(d.event.data, "trade_id", None) == self.killer:
                    # As a segfault or the OOM killer would: no cleanup, no answer.
                    os._exit(137)
        await self._guard(lambda: self._write(batch, crash_before_commit=False))

    async def apply(self, batch: Batch[Any]) -> None:
        """Store contract: apply a batch."""
        await self.handle(batch)

    async def apply_and_crash(self, batch: Batch[Any]) -> None:
        """Store contract: write the effects, then fail before the commit."""
        await self._write(batch, crash_before_commit=True)

    async def _write(self, batch: Batch[Any], *, crash_before_commit: bool) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            done = await conn.fetchval(
                "SELECT seq FROM checkpoints WHERE name = $1 FOR UPDATE", batch.checkpoint
            )
            todo = batch.after(done or 0)
            if not todo:
                return
            self._check_poison(todo)
            ids = [d.event.id for d in todo]
            seqs = [d.stream_seq for d in todo]
            await conn.execute(
                "INSERT INTO effects (event_id, seq, amount) "
                "SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::numeric[]) "
                "ON CONFLICT (event_id) DO NOTHING",
                ids,
                seqs,
                [amount_of(d.event.data) for d in todo],
            )
            await conn.copy_records_to_table(
                "applied", records=zip(ids, seqs, strict=True), columns=["event_id", "seq"]
            )
            await conn.execute(
                "INSERT INTO checkpoints (name, seq) VALUES ($1, $2) "
                "ON CONFLICT (name) DO UPDATE SET seq = EXCLUDED.seq",
                batch.checkpoint,
                todo.last_seq,
            )
            if crash_before_commit:
                raise RuntimeError("crash before commit")

    def _check_poison(self, todo: Iterable[Any]) -> None:
        if self.poison_flag is None or not self.poison_flag.exists():
            return
        for d in todo:
            data = d.event.data
            if isinstance(data, TradeExecuted) and data.trade_id.startswith("poison"):
                raise PoisonedEvent(f"poison trade {data.trade_id} refused by the test handler")

    # -- what tests read --------------------------------------------------------------

    async def effects(self) -> Mapping[UUID, int]:
        """Store contract: how many effects each event id has."""
        rows = await self._pool.fetch("SELECT event_id, count(*) AS n FROM effects GROUP BY 1")
        return {r["event_id"]: r["n"] for r in rows}

    async def checkpoint(self, name: str) -> int | None:
        """Store contract: the stored position of ``name``."""
        seq: int | None = await self._pool.fetchval(
            "SELECT seq FROM checkpoints WHERE name = $1", name
        )
        return seq


async def read_totals(dsn: str) -> tuple[int, Decimal, int]:
    """(effects rows, sum of amounts, applied rows), on a connection of its own."""
    conn = await asyncpg.connect(dsn, timeout=3)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM effects) AS n, "
            "(SELECT coalesce(sum(amount), 0) FROM effects) AS total, "
            "(SELECT count(*) FROM applied) AS applied"
        )
        assert row is not None
        return int(row["n"]), Decimal(row["total"]), int(row["applied"])
    finally:
        await conn.close()


async def count_effects(dsn: str) -> int:
    """Rows in ``effects`` (0 when the table is not there yet or the store is down)."""
    try:
        conn = await asyncio.wait_for(asyncpg.connect(dsn, timeout=2), 3)
    except (*_UNAVAILABLE, asyncpg.PostgresError):
        return -1
    try:
        n: int = await conn.fetchval(
            "SELECT CASE WHEN to_regclass('effects') IS NULL THEN 0 "
            "ELSE (SELECT count(*) FROM effects) END"
        )
        return n
    finally:
        await conn.close()


async def applied_order(dsn: str) -> list[int]:
    """Stream sequences in the order the handler wrote them."""
    conn = await asyncpg.connect(dsn, timeout=3)
    try:
        return [r["seq"] for r in await conn.fetch("SELECT seq FROM applied ORDER BY id")]
    finally:
        await conn.close()


async def stored_checkpoint(dsn: str, name: str) -> int | None:
    """The checkpoint row of ``name``."""
    conn = await asyncpg.connect(dsn, timeout=3)
    try:
        seq: int | None = await conn.fetchval("SELECT seq FROM checkpoints WHERE name = $1", name)
        return seq
    finally:
        await conn.close()
