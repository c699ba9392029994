"""The MongoDB adapter's frame: connection, indexes, and one transaction per batch.

Every batch is applied in one multi-document transaction that also advances its
checkpoint (``checkpoints`` collection, one document per stream and consumer): the
checkpoint is read first, events at or below it are skipped, the effects and the new
position commit together. A redelivered batch or a crash between commit and ack changes
nothing. The worker's three subscriptions share one lock, so their transactions never
conflict with each other; a conflict with another process is retried.

Driver errors are translated: an unreachable server or a timeout is ``StoreUnavailable``
(the runtime pauses and retries); anything else is raised as it is (retried by the
runtime, then dead-lettered).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError
from pymongo.uri_parser import parse_uri

from fleet_runtime.delivery import Batch
from fleet_runtime.errors import StoreUnavailable
from fleet_runtime.logs import get_logger

log = get_logger("analytics_projector.store")

Document = dict[str, Any]
Collection = AsyncCollection[Document]
T = TypeVar("T")

PRICE_HISTORY_EXPIRY_INDEX = "ttl_expire_at"
"""Candles expire at their own ``expire_at`` (``analytics_projector.retention``)."""
_OLD_PRICE_HISTORY_TTL = "ttl_timestamp"
TRADING_EVENTS_TTL_S = 90 * 24 * 3600
"""Raw trade events are kept 90 days after they happen."""

_TRANSIENT_TRIES = 5

INDEXES: Mapping[str, list[IndexModel]] = {
    "trading_events": [
        IndexModel([("timestamp", ASCENDING), ("user_id", ASCENDING)], name="timestamp_user"),
        IndexModel([("trading_pair", ASCENDING), ("timestamp", ASCENDING)], name="pair_timestamp"),
        IndexModel([("event_type", ASCENDING), ("timestamp", ASCENDING)], name="type_timestamp"),
        IndexModel(
            [("timestamp", ASCENDING)],
            name="ttl_timestamp",
            expireAfterSeconds=TRADING_EVENTS_TTL_S,
        ),
    ],
    "price_history": [
        IndexModel(
            [("symbol", ASCENDING), ("interval", ASCENDING), ("open_time", ASCENDING)],
            name="symbol_interval_open_time",
            unique=True,
        ),
        IndexModel([("symbol", ASCENDING), ("timestamp", ASCENDING)], name="symbol_timestamp"),
        IndexModel(
            [("expire_at", ASCENDING)], name=PRICE_HISTORY_EXPIRY_INDEX, expireAfterSeconds=0
        ),
    ],
    "bot_performance": [IndexModel([("user_id", ASCENDING)], name="user")],
    "bot_performance_daily": [
        IndexModel([("bot_id", ASCENDING), ("day", ASCENDING)], name="bot_day", unique=True),
        IndexModel([("user_id", ASCENDING), ("day", ASCENDING)], name="user_day"),
    ],
    "portfolio_snapshots": [
        IndexModel(
            [("user_id", ASCENDING), ("snapshot_date", ASCENDING)], name="user_date", unique=True
        ),
        IndexModel([("user_id", ASCENDING), ("snapshot_date", DESCENDING)], name="user_date_desc"),
    ],
    "bot_executions": [
        IndexModel([("bot_id", ASCENDING), ("start_time", ASCENDING)], name="bot_start"),
        IndexModel([("user_id", ASCENDING), ("start_time", ASCENDING)], name="user_start"),
    ],
    "portfolio_flows": [
        IndexModel([("user_id", ASCENDING), ("day", ASCENDING)], name="user_day", unique=True),
        IndexModel([("symbols_held", ASCENDING)], name="symbols_held"),
    ],
    "day_closes": [
        IndexModel([("symbol", ASCENDING), ("day", ASCENDING)], name="symbol_day", unique=True)
    ],
}
"""Every collection's indexes, created at start-up (creating an existing one is a no-op)."""


class Collections:
    """The worker's collections under a name prefix: none for the live read models, a
    shadow prefix for a replay building new ones beside them."""

    def __init__(self, database: AsyncDatabase[Document], prefix: str = "") -> None:
        self.database = database
        self.prefix = prefix
        self.trading_events = self.named("trading_events")
        self.price_history = self.named("price_history")
        self.bot_performance = self.named("bot_performance")
        self.bot_performance_daily = self.named("bot_performance_daily")
        self.portfolio_snapshots = self.named("portfolio_snapshots")
        self.bot_executions = self.named("bot_executions")
        self.portfolio_flows = self.named("portfolio_flows")
        self.day_closes = self.named("day_closes")
        self.checkpoints = self.named("checkpoints")

    def named(self, name: str) -> Collection:
        """Collection ``name`` under this prefix."""
        return self.database[self.prefix + name]


COLLECTIONS = (
    "trading_events",
    "price_history",
    "bot_performance",
    "bot_performance_daily",
    "portfolio_snapshots",
    "bot_executions",
    "portfolio_flows",
    "day_closes",
    "checkpoints",
)
"""Every collection the worker writes (the read models, their internal sums, checkpoints)."""

Db = Collections


def checkpoint_id(stream: str, checkpoint: str) -> str:
    """The ``checkpoints`` document of one consumer of one stream."""
    return f"{stream}/{checkpoint}"


def _unavailable(exc: PyMongoError) -> StoreUnavailable:
    return StoreUnavailable(f"MongoDB: {type(exc).__name__}: {exc}")


class MongoFrame:
    """The client, the database, the shared lock and the transactional batch."""

    def __init__(
        self,
        client: AsyncMongoClient[Document],
        database: str,
        user: tuple[str, str] | None = None,
        prefix: str = "",
    ) -> None:
        self.client = client
        self.user = user
        """(user name, authentication database) of the URL's credentials, if any."""
        self.db = Collections(client[database], prefix)
        self.lock = asyncio.Lock()
        self.crash_before_commit = False
        """Test hook: raise after the effects are written, before the commit."""

    @classmethod
    def open(
        cls, url: str, database: str, *, timeout_s: float = 5.0, prefix: str = ""
    ) -> MongoFrame:
        """A client for ``url`` (connects on first use)."""
        client: AsyncMongoClient[Document] = AsyncMongoClient(
            url,
            tz_aware=True,
            serverSelectionTimeoutMS=int(timeout_s * 1000),
            connectTimeoutMS=int(timeout_s * 1000),
            socketTimeoutMS=30_000,
            appname="analytics-projector",
        )
        parsed = parse_uri(url, validate=False)
        user = None
        if parsed.get("username"):
            source = parsed["options"].get("authsource") or parsed.get("database") or "admin"
            user = (str(parsed["username"]), str(source))
        return cls(client, database, user, prefix)

    async def close(self) -> None:
        """Release connections."""
        await self.client.close()

    async def probe(self) -> None:
        """Reach the server, create the indexes (idempotent), end stale sessions."""
        try:
            await self.client.admin.command("ping")
            await self.create_indexes()
            await self.end_stale_sessions()
        except ConnectionFailure as exc:
            raise _unavailable(exc) from None

    async def create_indexes(self) -> None:
        """Create every collection's indexes (creating an existing one is a no-op)."""
        # The single 30-day TTL of earlier versions would still expire wider candles.
        if _OLD_PRICE_HISTORY_TTL in await self.db.price_history.index_information():
            await self.db.price_history.drop_index(_OLD_PRICE_HISTORY_TTL)
        for collection, models in INDEXES.items():
            await self.db.named(collection).create_indexes(models)

    async def end_stale_sessions(self) -> None:
        """End the server sessions of this worker's MongoDB user.

        A transaction that a killed instance left open keeps its write locks until the
        server expires it (MongoDB's transactionLifetimeLimitSeconds, 60 s by default):
        every batch would meet a write conflict until then. Ending the user's sessions at
        start releases them at once. Another instance's transaction ended this way is
        aborted and retried by that instance (every batch is idempotent). Without the
        privilege (killAnySession), the worker waits for the server instead.
        """
        pattern = [] if self.user is None else [{"user": self.user[0], "db": self.user[1]}]
        try:
            await self.client.admin.command("killAllSessions", pattern)
        except OperationFailure as exc:
            log.warning("mongo_stale_sessions_kept", error=str(exc))

    async def checkpoint(self, stream: str, checkpoint: str) -> int | None:
        """The stored position of one consumer of one stream (None before its first batch)."""
        doc = await self.db.checkpoints.find_one({"_id": checkpoint_id(stream, checkpoint)})
        return None if doc is None else int(doc["stream_seq"])

    async def in_transaction(
        self,
        batch: Batch[Any],
        apply: Callable[[AsyncClientSession, Batch[Any]], Awaitable[T]],
    ) -> T | None:
        """Apply the part of ``batch`` past its checkpoint with ``apply``, then advance the
        checkpoint, in one transaction. None when the checkpoint covered the whole batch."""
        if not batch.deliveries:
            return None
        stream = batch.deliveries[0].stream
        cid = checkpoint_id(stream, batch.checkpoint)
        async with self.lock:
            for attempt in range(1, _TRANSIENT_TRIES + 1):
                try:
                    return await self._once(cid, batch, apply)
                except ConnectionFailure as exc:
                    raise _unavailable(exc) from None
                except OperationFailure as exc:
                    if not exc.has_error_label("TransientTransactionError"):
                        raise
                    log.warning("mongo_transaction_retried", attempt=attempt, error=str(exc))
                    if attempt == _TRANSIENT_TRIES:
                        raise _unavailable(exc) from None
        raise AssertionError("unreachable")

    async def _once(
        self,
        cid: str,
        batch: Batch[Any],
        apply: Callable[[AsyncClientSession, Batch[Any]], Awaitable[T]],
    ) -> T | None:
        async with self.client.start_session() as session, await session.start_transaction():
            stored = await self.db.checkpoints.find_one({"_id": cid}, session=session)
            applied = 0 if stored is None else int(stored["stream_seq"])
            todo = batch.after(applied)
            if not todo.deliveries:
                return None
            result = await apply(session, todo)
            if self.crash_before_commit:
                raise RuntimeError("crash before commit (test hook)")
            await self.db.checkpoints.update_one(
                {"_id": cid},
                {"$set": {"stream_seq": todo.last_seq}},
                upsert=True,
                session=session,
            )
            return result
