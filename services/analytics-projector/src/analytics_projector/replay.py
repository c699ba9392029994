"""Rebuild analytics-projector's MongoDB read models from their three streams (`fleet replay`).

``MongoReplayTarget`` is the store's shadow/swap adapter for the runtime's replay engine.
The engine feeds TRADES, MARKET candles and BOTS through the worker's own handlers into
shadow collections (``replay_shadow__<name>``, indexes built first) beside the live ones.
The swap:
1. pauses the live worker's three durables on the NATS server and waits until the worker
   has acked (so committed) everything it was handed: its checkpoints ``L`` stop moving;
2. catches the shadow up to ``L`` on every stream;
3. renames each shadow collection over its live one (``renameCollection`` with
   ``dropTarget``: one collection at a time, each switch atomic), checkpoints included;
4. resumes the durables. The live worker continues after ``L``: nothing it acked is
   missing from the new state, and what the shadow applied beyond ``L`` is at or below the
   new checkpoints, so it is skipped when delivered again.
Readers see each collection old or new; for the few milliseconds of step 3 two
collections may come from different builds (MongoDB renames one collection at a time).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any

import bson
from nats.js.client import JetStreamContext
from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from analytics_projector.handlers import DURABLE, subscriptions
from analytics_projector.retention import Retention
from analytics_projector.settings import AnalyticsProjectorSettings
from analytics_projector.store import MongoAnalyticsStore
from analytics_projector.store.client import COLLECTIONS, checkpoint_id
from fleet_events import BOTS_STREAM, MARKET_STREAM, TRADES_STREAM
from fleet_runtime.binding import Subscription
from fleet_runtime.replay import (
    CatchUp,
    Comparison,
    ReplayLocked,
    SwapBehind,
    SwapResult,
    TableCompare,
)
from fleet_runtime.replay.lock import renewed
from fleet_runtime.worker import worker_nats

SHADOW = "replay_shadow__"
KEPT = "replaced_"
STREAMS = (TRADES_STREAM, MARKET_STREAM, BOTS_STREAM)
_LOCK = "replay_lock"
_LEASE_S = 15.0
_DRAIN_WAIT_S = 30.0
_PAUSE_S = 600
"""The live durables' pause is lifted at the end of the swap; this bounds it if the
replay process dies in the middle."""
_CARRIED_OVER = ("price_history", "day_closes")
_BATCH_SIZE = 20_000
"""Events per shadow transaction. Each transaction writes every bot's performance
documents once more; on secantusdb, where a fill's audit document with its indexes costs
about 0.6 ms, batches of 10,000 applied 1.4x faster than the live worker's 2,000 and
1.2x faster than 5,000 in one measurement (10,000 fills, same server). MongoDB bounds a
transaction's lifetime (60 s by default), not its size; 20,000 fills are seconds there."""


class MongoReplayTarget:
    """``fleet_runtime.replay.ReplayTarget`` for analytics-projector's database."""

    def __init__(self, settings: AnalyticsProjectorSettings) -> None:
        self._settings = settings
        url = settings.mongo_url.get_secret_value()
        retention = Retention(settings.price_history_1m_days, settings.price_history_wider_days)

        def store(prefix: str) -> MongoAnalyticsStore:
            return MongoAnalyticsStore.open(
                url,
                settings.mongo_database,
                timeout_s=settings.mongo_timeout_s,
                retention=retention,
                prefix=prefix,
            )

        self.live = store("")
        self.shadow = store(SHADOW)
        self.description = f"MongoDB database {settings.mongo_database}"
        self.keeps_history_of = frozenset({MARKET_STREAM})
        """Streams whose events past retention the shadow keeps from live (see prepare)."""
        self.replay_batch_size = _BATCH_SIZE

    def partial_refusal(self) -> str | None:
        """Every figure folds a bot's fills from its first one: nothing is partial."""
        return "bot performance, runs and snapshots fold every fill and bot event from the first"

    @asynccontextmanager
    async def lock(self, holder: str) -> AsyncIterator[None]:
        """A lease document the holder renews: a killed replay frees it within the lease."""
        locks = self.live.frame.db.database[_LOCK]
        token = f"{holder} #{uuid.uuid4().hex[:8]}"
        now = datetime.now(UTC)
        lease = {"holder": token, "expires_at": now + timedelta(seconds=_LEASE_S)}
        try:
            await locks.insert_one({"_id": "replay", **lease})
        except DuplicateKeyError:
            taken = await locks.find_one_and_update(
                {"_id": "replay", "expires_at": {"$lt": now}}, {"$set": lease}
            )
            if taken is None:
                other = await locks.find_one({"_id": "replay"})
                raise ReplayLocked(
                    f"another replay of {self.description} is running "
                    f"({other['holder'] if other else 'unknown'})",
                    fix="wait for it to finish, or stop that process; a killed one frees the "
                    f"lock within {_LEASE_S:.0f} s",
                ) from None

        async def renew() -> None:
            until = datetime.now(UTC) + timedelta(seconds=_LEASE_S)
            await locks.update_one(
                {"_id": "replay", "holder": token}, {"$set": {"expires_at": until}}
            )

        async def release() -> None:
            await locks.delete_one({"_id": "replay", "holder": token})

        async with renewed(renew, release, every_s=_LEASE_S / 3, lock=f"{_LOCK} replay"):
            yield

    async def prepare(self) -> str | None:
        """Drop what an interrupted replay left, create the shadow's indexes, and copy the
        live candles into it.

        MARKET keeps hours of candles, ``price_history`` weeks to a year: the candles the
        stream no longer holds are carried over from live (the replay then writes the
        stream's own candles over them, by the same natural key), so a rebuild never
        shortens the warm tier of market history.
        """
        database = self.live.frame.db.database
        if any(n.startswith(SHADOW) for n in await database.list_collection_names()):
            # A replay killed in a transaction left it open, holding its locks until the
            # server expires it: end it first (the live worker retries what this ends).
            await self.live.frame.end_stale_sessions()
        removed = await self._drop_prefixed(SHADOW)
        await self.shadow.frame.create_indexes()
        for name in _CARRIED_OVER:
            await self._copy(name, "", SHADOW)
        if removed:
            return f"removed {len(removed)} collections left by an interrupted replay"
        return None

    def subscriptions(self) -> Sequence[Subscription]:
        """The live worker's handlers, writing into the shadow collections."""
        return subscriptions(self.shadow)

    async def compare(self, catch_up: CatchUp) -> Comparison:
        """Hold the live worker, bring the shadow to its positions, compare every collection."""
        async with self._live_held() as live_at:
            reached = await catch_up.streams(live_at)
            tables = [
                TableCompare(name, *await self._digest(name, "", SHADOW)) for name in COLLECTIONS
            ]
        return Comparison(sum(live_at.values()), sum(reached.values()), tables)

    async def swap(self, catch_up: CatchUp, *, keep_old: bool) -> SwapResult:
        """Hold the live worker, catch up to its checkpoints, rename every shadow collection."""
        async with self._live_held() as live_at:
            started = time.monotonic()
            reached = await catch_up.streams(live_at)
            checkpoints = self.shadow.frame.db.checkpoints
            for stream, seq in reached.items():
                await checkpoints.update_one(
                    {"_id": checkpoint_id(stream, DURABLE)},
                    {"$max": {"stream_seq": seq}},
                    upsert=True,
                )
            kept = None
            if keep_old:
                kept = f"{KEPT}{datetime.now(UTC):%Y%m%d%H%M%S}__"
                await self._copy_live(kept)
            # The first rename makes the swap irreversible: from here a signal no longer
            # stops it, so the collections never stay half renamed.
            catch_up.before_commit()
            await self._rename_shadow()
            pause = time.monotonic() - started
        return SwapResult(
            reached[TRADES_STREAM], live_at[TRADES_STREAM], pause, list(COLLECTIONS), kept
        )

    @asynccontextmanager
    async def _catalog_client(self) -> AsyncIterator[AsyncMongoClient[dict[str, object]]]:
        """A client without socket timeout for renames and drops.

        MongoDB renames and drops a collection by metadata, but a MongoDB-wire server may
        move or delete it document by document: secantusdb does, one commit per document
        and index entry, and takes minutes on a large collection when it syncs each
        commit (docs/replay.md has the figures).
        """
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
            self._settings.mongo_url.get_secret_value(),
            socketTimeoutMS=None,
            appname=f"{DURABLE}-replay",
        )
        try:
            yield client
        finally:
            await client.close()

    async def _rename_shadow(self) -> None:
        """Rename every shadow collection over its live one, checkpoints last."""
        database = self._settings.mongo_database
        async with self._catalog_client() as client:
            for name in COLLECTIONS:
                await client.admin.command(
                    "renameCollection",
                    f"{database}.{SHADOW}{name}",
                    to=f"{database}.{name}",
                    dropTarget=True,
                )

    async def discard(self) -> None:
        """Drop this replay's shadow collections."""
        await self._drop_prefixed(SHADOW)

    async def drop_old(self) -> list[str]:
        """Drop the collections kept by ``--keep-old``."""
        return await self._drop_prefixed(KEPT)

    async def close(self) -> None:
        """Release connections."""
        await self.live.close()
        await self.shadow.close()

    @asynccontextmanager
    async def _live_held(self) -> AsyncIterator[dict[str, int]]:
        """Pause the live durables until the worker holds nothing; yield its checkpoints."""
        nc = await worker_nats(self._settings, f"{DURABLE}-replay-swap", user=DURABLE)
        js = nc.jetstream()
        until = (datetime.now(UTC) + timedelta(seconds=_PAUSE_S)).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            for stream in STREAMS:
                await js.pause_consumer(stream, DURABLE, until)
            await _wait_acked(js)
            positions = {}
            for stream in STREAMS:
                positions[stream] = await self.live.checkpoint(stream, DURABLE) or 0
            yield positions
        finally:
            for stream in STREAMS:
                with suppress(Exception):
                    await js.resume_consumer(stream, DURABLE)
            await nc.drain()

    async def _digest(self, name: str, live: str, shadow: str) -> tuple[int, int, str, str]:
        database = self.live.frame.db.database
        counts, digests = [], []
        for prefix in (live, shadow):
            h = hashlib.sha256()
            n = 0
            async for doc in database[prefix + name].find().sort("_id", 1):
                h.update(bson.encode(canonical(doc)))
                n += 1
            counts.append(n)
            digests.append(h.hexdigest()[:16])
        return counts[0], counts[1], digests[0], digests[1]

    async def _copy_live(self, prefix: str) -> None:
        for name in COLLECTIONS:
            await self._copy(name, "", prefix)

    async def _copy(self, name: str, source: str, target: str) -> None:
        database = self.live.frame.db.database
        batch: list[dict[str, object]] = []
        async for doc in database[source + name].find():
            batch.append(doc)
            if len(batch) >= 1000:
                await database[target + name].insert_many(batch)
                batch = []
        if batch:
            await database[target + name].insert_many(batch)

    async def _drop_prefixed(self, prefix: str) -> list[str]:
        async with self._catalog_client() as client:
            database = client[self._settings.mongo_database]
            names = sorted(
                n for n in await database.list_collection_names() if n.startswith(prefix)
            )
            for name in names:
                await database.drop_collection(name)
        return names


def canonical(value: Any) -> Any:
    """``value`` with every document's fields in name order (arrays keep theirs).

    How the three streams interleave decides which write creates a document, and so the
    order of its fields; two documents with the same fields and values are the same state.
    """
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


async def _wait_acked(js: JetStreamContext) -> None:
    """Until the paused durables have nothing delivered and unacked (bounded)."""
    deadline = time.monotonic() + _DRAIN_WAIT_S
    while True:
        held = 0
        for stream in STREAMS:
            info = await js.consumer_info(stream, DURABLE)
            held += info.num_ack_pending or 0
        if not held:
            return
        if time.monotonic() > deadline:
            raise SwapBehind(f"the live worker still holds {held} unacked events")
        # The server does not announce acks: poll the consumers.
        await asyncio.sleep(0.05)


async def open_replay_target(settings: object) -> MongoReplayTarget:
    """``WorkerSpec.replay`` factory: the adapter for the worker's own settings."""
    assert isinstance(settings, AnalyticsProjectorSettings)
    return MongoReplayTarget(settings)
