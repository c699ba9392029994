"""The PostgreSQL replay target: build into ``<schema>_replay``, swap tables in one transaction.

The shadow schema gets the service's own migrations (schema name substituted), so it has
the same tables, indexes, constraints, identity columns and grants as live. The store
adapter writes into it through ``search_path``. The swap, in one transaction:

1. ``LOCK TABLE <schema>.checkpoints IN ACCESS EXCLUSIVE MODE``: waits for the live
   worker's batch in flight (its first statement locks its checkpoint row) and holds the
   next one before it touches anything; then every live table, the same way, so readers
   wait for the swap instead of seeing a half state.
2. Read the live checkpoints ``L``; let the engine apply the stream into the shadow up to
   ``L`` (``catch_up``); write the position reached into every shadow checkpoint row.
3. Move each live table into ``<schema>_old_<UTC stamp>`` and each shadow table into
   ``<schema>``, ask the engine whether the replay was interrupted
   (``catch_up.before_commit()``: it raises if so, and the transaction rolls back), then
   commit. The held live transaction resumes on the new tables (the
   server resolves the table name again once it gets the lock).
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from fleet_runtime.binding import Subscription
from fleet_runtime.errors import ConfigError
from fleet_runtime.replay import (
    CatchUp,
    Comparison,
    ReplayLocked,
    SwapBehind,
    SwapResult,
    TableCompare,
)

from .runner import load_migrations

_LOCK_CLASS = 0x0F1EE7
_SWAP_LOCK_TIMEOUT = "5s"
_READER_LOCK_TIMEOUT = "200ms"
_LIVE_WAIT_S = 15.0

_HOLDER = """
SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::int::oid
  AND l.objid = $2::int::oid AND l.objsubid = 2
"""

# Identity ids and now()-stamped columns differ between any two builds of the same
# stream; every other column must match.
_COMPARED_COLUMNS = """
SELECT column_name FROM information_schema.columns
WHERE table_schema = $1 AND table_name = $2 AND is_identity = 'NO'
  AND coalesce(column_default, '') NOT LIKE '%now()%'
ORDER BY ordinal_position
"""

_TABLES = """
SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> 'schema_migrations'
ORDER BY tablename
"""


def _ident(name: str) -> str:
    """A quoted identifier (names come from the catalog and the service's constants)."""
    return '"' + name.replace('"', '""') + '"'


@dataclass
class PostgresReplayTarget:
    """``fleet_runtime.replay.ReplayTarget`` for a worker that owns one PostgreSQL schema."""

    owner_dsn: str
    schema: str
    migrations: str
    """The package holding the service's ``NNNN_name.sql`` migrations."""
    open_store: Callable[[str, str], Awaitable[Any]]
    """``open_store(dsn, schema)``: the service's store adapter on that schema."""
    bind: Callable[[Any], Sequence[Subscription]]
    """The service's ``handlers.subscriptions``."""
    refusal: str | None = None
    """Why a partial rebuild of this schema would be wrong (None: allowed)."""

    def __post_init__(self) -> None:
        self.shadow = f"{self.schema}_replay"
        self._store: Any = None

    @property
    def description(self) -> str:
        """Where the live state lives."""
        return f"PostgreSQL schema {self.schema}"

    def partial_refusal(self) -> str | None:
        """Why a partial rebuild would be wrong, or None."""
        return self.refusal

    async def _connect(self, application_name: str = "fleet replay") -> asyncpg.Connection:
        try:
            return await asyncpg.connect(
                self.owner_dsn, server_settings={"application_name": application_name}
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise ConfigError(
                f"cannot connect to PostgreSQL with the owner DSN: {type(exc).__name__}: {exc}",
                fix="set the worker's OWNER_DSN to a reachable DSN of the schema owner role",
            ) from None

    @asynccontextmanager
    async def lock(self, holder: str) -> AsyncIterator[None]:
        """A session advisory lock: the server drops it when the replay's connection dies."""
        conn = await self._connect(holder)
        key = zlib.crc32(self.schema.encode()) & 0x7FFFFFFF
        try:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", _LOCK_CLASS, key):
                other = await conn.fetchval(_HOLDER, _LOCK_CLASS, key)
                raise ReplayLocked(
                    f"another replay of {self.description} is running ({other or 'unknown'})",
                    fix="wait for it to finish, or stop that process; a killed one frees the lock",
                )
            yield
        finally:
            await conn.close()

    async def prepare(self) -> str | None:
        """Drop a leftover shadow, create the shadow from the migrations, open the store."""
        conn = await self._connect()
        try:
            live = [r[0] for r in await conn.fetch(_TABLES, self.schema)]
            if not live:
                raise ConfigError(
                    f"{self.description} has no tables",
                    fix="run the worker's migrations (`<worker> migrate`) first",
                )
            leftover = await conn.fetchval(
                "SELECT count(*) FROM pg_namespace WHERE nspname = $1", self.shadow
            )
            async with conn.transaction():
                await conn.execute(f"DROP SCHEMA IF EXISTS {_ident(self.shadow)} CASCADE")
                await conn.execute(f"CREATE SCHEMA {_ident(self.shadow)}")
                await conn.execute(
                    f"CREATE TABLE {_ident(self.shadow)}.schema_migrations "
                    f"(LIKE {_ident(self.schema)}.schema_migrations)"
                )
                for migration in load_migrations(self.migrations):
                    await conn.execute(self._into_shadow(migration.sql))
            built = [r[0] for r in await conn.fetch(_TABLES, self.shadow)]
            if built != live:
                raise ConfigError(
                    f"{self.description} has tables {live}, its migrations build {built}",
                    fix="run the worker's pending migrations before replaying",
                )
        finally:
            await conn.close()
        self._store = await self.open_store(self.owner_dsn, self.shadow)
        if leftover:
            return f"removed the shadow schema {self.shadow} left by an interrupted replay"
        return None

    def _into_shadow(self, sql: str) -> str:
        """A migration's text aimed at the shadow schema."""
        sql = re.sub(rf"\b{re.escape(self.schema)}\.", f"{self.shadow}.", sql)
        return re.sub(rf"\bSCHEMA\s+{re.escape(self.schema)}\b", f"SCHEMA {self.shadow}", sql)

    def subscriptions(self) -> Sequence[Subscription]:
        """The worker's subscriptions bound to the shadow store."""
        return self.bind(self._store)

    async def compare(self, catch_up: CatchUp) -> Comparison:
        """Row counts and checksums of every table, live against shadow, at one position."""
        conn = await self._connect()
        try:
            shadow_at = await catch_up(0)
            deadline = time.monotonic() + _LIVE_WAIT_S
            while await self._live_position(conn) < shadow_at and time.monotonic() < deadline:
                await conn.execute("SELECT pg_sleep(0.05)")
            async with conn.transaction():
                # SHARE: the live worker cannot commit (its checkpoint write waits) while
                # readers carry on.
                await conn.execute(f"LOCK TABLE {self._live('checkpoints')} IN SHARE MODE")
                live_at = await self._live_position(conn)
                shadow_at = await catch_up(live_at)
                # The checkpoints are the positions compared above (a partitioned worker's
                # rows are named per partition, the shadow's after the replay's durable).
                names = [t for t in await self._tables(conn) if t != "checkpoints"]
                tables = [await self._compare_table(conn, t) for t in names]
            return Comparison(live_at, shadow_at, tables)
        finally:
            await conn.close()

    async def _compare_table(self, conn: asyncpg.Connection, table: str) -> TableCompare:
        columns = [r[0] for r in await conn.fetch(_COMPARED_COLUMNS, self.schema, table)]
        row = "ROW(" + ", ".join(_ident(c) for c in columns) + ")::text"
        sums: list[Any] = []
        for schema in (self.schema, self.shadow):
            sums.append(
                await conn.fetchrow(
                    f"SELECT count(*), coalesce(sum(('x' || left(md5({row}), 15))::bit(60)"  # noqa: S608
                    f"::bigint), 0)::text FROM {_ident(schema)}.{_ident(table)}"
                )
            )
        return TableCompare(table, sums[0][0], sums[1][0], sums[0][1], sums[1][1])

    async def _tables(self, conn: asyncpg.Connection) -> list[str]:
        return [r[0] for r in await conn.fetch(_TABLES, self.shadow)]

    def _live(self, table: str) -> str:
        return f"{_ident(self.schema)}.{_ident(table)}"

    async def _live_position(self, conn: asyncpg.Connection) -> int:
        # Checkpoints are a service's own table; the query names only the schema constant.
        seq = await conn.fetchval(
            f"SELECT max(stream_seq) FROM {self._live('checkpoints')}"  # noqa: S608
        )
        return int(seq or 0)

    async def swap(self, catch_up: CatchUp, *, keep_old: bool) -> SwapResult:
        """Make the shadow live in one transaction (see the module docstring)."""
        conn = await self._connect()
        old = f"{self.schema}_old_{datetime.now(UTC):%Y%m%d%H%M%S}"
        try:
            tables = await self._tables(conn)
            others = [self._live(t) for t in tables if t != "checkpoints"]
            try:
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL lock_timeout = '{_SWAP_LOCK_TIMEOUT}'")
                    started = time.monotonic()
                    await conn.execute(
                        f"LOCK TABLE {self._live('checkpoints')} IN ACCESS EXCLUSIVE MODE"
                    )
                    # A reader that holds one of these and waits for checkpoints (held here)
                    # is a deadlock that PostgreSQL breaks after deadlock_timeout (1 s) by
                    # failing one side, possibly the reader: give up well before that and
                    # let the engine retry, so readers never see an error.
                    await conn.execute(f"SET LOCAL lock_timeout = '{_READER_LOCK_TIMEOUT}'")
                    await conn.execute(f"LOCK TABLE {', '.join(others)} IN ACCESS EXCLUSIVE MODE")
                    names = [
                        r[0]
                        for r in await conn.fetch(f"SELECT name FROM {self._live('checkpoints')}")  # noqa: S608
                    ]
                    live_at = await self._live_position(conn)
                    position = await catch_up(live_at)
                    await conn.execute(
                        f"INSERT INTO {_ident(self.shadow)}.checkpoints AS c (name, stream_seq) "
                        "SELECT unnest($1::text[]), $2 ON CONFLICT (name) DO UPDATE "
                        "SET stream_seq = EXCLUDED.stream_seq, updated_at = now()",
                        names,
                        position,
                    )
                    await conn.execute(
                        f"UPDATE {_ident(self.shadow)}.checkpoints SET stream_seq = $1",  # noqa: S608
                        position,
                    )
                    await conn.execute(f"CREATE SCHEMA {_ident(old)}")
                    for table in tables:
                        await conn.execute(
                            f"ALTER TABLE {self._live(table)} SET SCHEMA {_ident(old)}"
                        )
                    for table in tables:
                        await conn.execute(
                            f"ALTER TABLE {_ident(self.shadow)}.{_ident(table)} "
                            f"SET SCHEMA {_ident(self.schema)}"
                        )
                    # Leaving the block sends COMMIT with no await before it: a signal
                    # handled up to here rolls everything back.
                    catch_up.before_commit()
                pause = time.monotonic() - started
            except (asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError) as exc:
                # A reader's long transaction holds a live table (and, for a deadlock,
                # waited on one this swap holds): roll back and let the engine retry.
                raise SwapBehind(f"live tables held by others: {exc}") from None
            await self.close()
            await conn.execute(f"DROP SCHEMA IF EXISTS {_ident(self.shadow)} CASCADE")
            if not keep_old:
                keep_old = not await self._drop_replaced(conn, old)
        finally:
            await conn.close()
        return SwapResult(position, live_at, pause, tables, old if keep_old else None)

    async def _drop_replaced(self, conn: asyncpg.Connection, old: str) -> bool:
        """Drop the replaced tables; False if readers still hold them (kept for --drop-old)."""
        try:
            async with conn.transaction():
                # A reader still in a transaction on the old tables would hold the drop
                # (and everyone queued behind it) for as long as it runs.
                await conn.execute(f"SET LOCAL lock_timeout = '{_SWAP_LOCK_TIMEOUT}'")
                await conn.execute(f"DROP SCHEMA {_ident(old)} CASCADE")
        except asyncpg.LockNotAvailableError:
            return False
        return True

    async def discard(self) -> None:
        """Drop the shadow schema."""
        await self.close()
        conn = await self._connect()
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {_ident(self.shadow)} CASCADE")
        finally:
            await conn.close()

    async def drop_old(self) -> list[str]:
        """Drop every ``<schema>_old_*`` schema kept by ``--keep-old``."""
        conn = await self._connect()
        try:
            old = [
                r[0]
                for r in await conn.fetch(
                    "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1 ORDER BY nspname",
                    f"{self.schema}\\_old\\_%",
                )
            ]
            for name in old:
                await conn.execute(f"DROP SCHEMA {_ident(name)} CASCADE")
            return old
        finally:
            await conn.close()

    async def close(self) -> None:
        """Close the shadow store's pool."""
        if self._store is not None:
            store, self._store = self._store, None
            await store.close()
