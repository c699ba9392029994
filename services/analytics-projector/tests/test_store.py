"""MongoAnalyticsStore on the real MongoDB-wire server: idempotence, order, snapshots, runs."""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from bson.decimal128 import Decimal128

from analytics_projector.store import (
    PRICE_HISTORY_EXPIRY_INDEX,
    TRADING_EVENTS_TTL_S,
    MongoAnalyticsStore,
    Retention,
)
from fleet_events import Event, Side
from fleet_runtime.delivery import Batch
from fleet_runtime.errors import StoreUnavailable
from fleet_testing.batches import Sequencer
from fleet_testing.contract import StoreContract
from fleet_testing.servers import MongoServer

from .conftest import T0, candle, completed, created, fill, fresh_store, started, stopped

DURABLE = "analytics-projector"
DAY = timedelta(days=1)


class ContractAdapter:
    """The contract suite's hooks around the store's trade path."""

    def __init__(self, store: MongoAnalyticsStore) -> None:
        self.store = store

    async def apply(self, batch: Batch[Any]) -> None:
        await self.store.record_trades(batch)

    async def apply_and_crash(self, batch: Batch[Any]) -> None:
        self.store.frame.crash_before_commit = True
        try:
            await self.store.record_trades(batch)
        finally:
            self.store.frame.crash_before_commit = False

    async def effects(self) -> Mapping[UUID, int]:
        counts: dict[UUID, int] = {}
        async for doc in self.store.frame.db.trading_events.find({}, {"event_id": 1}):
            key = UUID(doc["event_id"])
            counts[key] = counts.get(key, 0) + 1
        return counts

    async def checkpoint(self, name: str) -> int | None:
        return await self.store.checkpoint("CONTRACT", name)


class TestMongoAnalyticsStoreContract(StoreContract):
    @pytest.fixture
    async def contract_store(self, store: MongoAnalyticsStore) -> ContractAdapter:
        return ContractAdapter(store)


async def dump(store: MongoAnalyticsStore) -> dict[str, list[dict[str, Any]]]:
    """Every document of every collection, by collection, sorted by id."""
    db = store.frame.db.database
    out: dict[str, list[dict[str, Any]]] = {}
    for name in sorted(await db.list_collection_names()):
        out[name] = sorted([doc async for doc in db[name].find()], key=lambda d: str(d["_id"]))
    return out


def scenario() -> dict[str, list[Event[Any]]]:
    """Three streams' events over three days: two users, three bots, two symbols."""
    rng = random.Random(7)
    bots = {"bot-a": "user-1", "bot-b": "user-1", "bot-c": "user-2"}
    trades: list[Event[Any]] = []
    for n in range(240):
        bot = rng.choice(sorted(bots))
        trades.append(
            fill(
                f"t{n}",
                side=rng.choice([Side.BUY, Side.SELL]),
                quantity=Decimal(rng.randint(1, 400)) / 100,
                price=Decimal(rng.randint(9000, 11000)) / 100,
                fee=Decimal(rng.randint(0, 50)) / 1000,
                bot_id=bot,
                user_id=bots[bot],
                symbol=rng.choice(["BTC", "ETH"]),
                at=T0 + timedelta(minutes=17 * n),
            )
        )
        if n % 9 == 0:
            trades.append(completed(f"o-t{n}", bot_id=bot))
        if n % 10 == 3:  # the same fill again under a new event id
            d = trades[-1].data if n % 9 else trades[-2].data
            trades.append(
                fill(
                    d.trade_id,
                    side=d.side,
                    quantity=d.quantity,
                    price=d.price,
                    fee=d.fee,
                    bot_id=d.bot_id,
                    user_id=d.user_id,
                    symbol=d.symbol,
                    at=d.executed_at,
                )
            )
    market = [
        candle(symbol, T0 + timedelta(minutes=37 * k), Decimal(9500 + 13 * k) / 100)
        for k in range(120)
        for symbol in ("BTC", "ETH")
    ] + [candle("BTC", T0 + timedelta(hours=h), "100", interval="1h") for h in range(30)]
    lifecycle = [
        created("bot-a", "alpha"),
        created("bot-b", "beta"),
        started("bot-a", 2, T0 + timedelta(hours=5)),
        stopped("bot-a", 3, T0 + timedelta(hours=20)),
        started("bot-a", 4, T0 + timedelta(hours=30), deployment="d2"),
        started("bot-b", 2, T0 - timedelta(hours=1)),
        # bot-c trades before (and without) its creation arriving: created last.
        created("bot-c", "gamma", user_id="user-2"),
    ]
    return {"TRADES": trades, "MARKET": market, "BOTS": lifecycle}


async def feed(
    store: MongoAnalyticsStore,
    streams: Mapping[str, Sequence[Event[Any]]],
    order: Sequence[str],
    rng: random.Random,
) -> None:
    """Apply each stream in stream order, in random batch sizes, interleaving streams as
    ``order`` says (a stream named twice continues where it stopped)."""
    sequencers = {name: Sequencer(name, DURABLE) for name in streams}
    position = dict.fromkeys(streams, 0)
    apply = {
        "TRADES": store.record_trades,
        "MARKET": store.record_candles,
        "BOTS": store.record_bots,
    }
    for name in order:
        events = streams[name]
        end = len(events) if order.count(name) == 1 else position[name] + len(events) // 2
        while position[name] < min(end, len(events)):
            size = rng.randint(1, 60)
            chunk = events[position[name] : position[name] + size]
            position[name] += len(chunk)
            await apply[name](sequencers[name].batch(chunk))
    for name, events in streams.items():
        while position[name] < len(events):
            chunk = events[position[name] : position[name] + 40]
            position[name] += len(chunk)
            await apply[name](sequencers[name].batch(chunk))


@pytest.fixture
async def second_store(mongo_server: MongoServer) -> AsyncIterator[MongoAnalyticsStore]:
    async with fresh_store(mongo_server.url) as opened:
        yield opened


async def test_the_read_models_do_not_depend_on_how_the_streams_interleave(
    store: MongoAnalyticsStore, second_store: MongoAnalyticsStore
) -> None:
    streams = scenario()
    await feed(store, streams, ["BOTS", "MARKET", "TRADES"], random.Random(1))
    await feed(second_store, streams, ["TRADES", "MARKET", "TRADES", "BOTS"], random.Random(2))
    first, second = await dump(store), await dump(second_store)
    assert first == second
    # The scenario reaches every read model.
    for name in (
        "bot_performance",
        "bot_performance_daily",
        "portfolio_snapshots",
        "bot_executions",
        "price_history",
        "trading_events",
    ):
        assert first[name], name
    bots = {d["_id"]: d for d in first["bot_performance"]}
    assert bots["bot-c"]["name"] == "gamma"  # trades first, the name filled in later
    assert bots["bot-c"]["user_id"] == "user-2"
    assert {d["_id"] for d in first["bot_executions"]} == {"bot-a:2", "bot-a:4", "bot-b:2"}
    runs = {d["_id"]: d for d in first["bot_executions"]}
    assert runs["bot-a:2"]["status"] == "stopped"
    assert runs["bot-a:2"]["duration"] == Decimal128("54000")
    # A run counts exactly the bot's distinct fills executed inside its window.
    a_fills = {
        e.data.trade_id: e.data.executed_at
        for e in streams["TRADES"]
        if e.type == "trade.executed" and e.data.bot_id == "bot-a"
    }
    window = [
        t for t in a_fills.values() if T0 + timedelta(hours=5) <= t < T0 + timedelta(hours=20)
    ]
    assert runs["bot-a:2"]["metrics"]["trades"] == len(window) > 0


async def test_a_fill_counts_once_under_any_event_id_and_any_batch(
    store: MongoAnalyticsStore,
) -> None:
    trades = Sequencer("TRADES", DURABLE)
    first = [fill("t1", quantity="2", price="100", fee="0.1"), fill("t2", side=Side.SELL)]
    await store.record_trades(trades.batch(first))
    again = [
        fill("t1", quantity="2", price="100", fee="0.1"),
        fill("t2", side=Side.SELL),
        fill("t3", side=Side.SELL, price="90"),
    ]
    result = await store.record_trades(trades.batch(again))
    assert result is not None
    assert (result.fills, result.repeated) == (1, 2)
    doc = await store.frame.db.bot_performance.find_one({"_id": "bot-1"})
    assert doc is not None
    assert doc["total_trades"] == 3
    assert doc["fees"] == Decimal128("0.1")
    # Long 2 @100, sell 1 @100 (0), sell 1 @90 (-10).
    assert doc["realized_pnl"] == Decimal128("-10")
    assert doc["open_positions"] == 0
    assert await store.frame.db.trading_events.count_documents({}) == 3


async def test_a_late_fill_updates_the_snapshot_of_its_day_and_every_later_one(
    store: MongoAnalyticsStore,
) -> None:
    trades, market = Sequencer("TRADES", DURABLE), Sequencer("MARKET", DURABLE)
    await store.record_trades(trades.batch([fill("t1", quantity="1", price="100")]))
    closes = [
        candle("BTCUSDT", T0 + k * DAY + timedelta(hours=3), str(110 + 10 * k)) for k in range(3)
    ]
    # A 1m candle earlier in the day does not set the day's close.
    closes.append(candle("BTCUSDT", T0 + DAY, "999"))
    await store.record_candles(market.batch(closes))

    async def pnl() -> list[tuple[Decimal, Decimal]]:
        docs = store.frame.db.portfolio_snapshots.find({"user_id": "user-1"}).sort("snapshot_date")
        return [(d["total_value"].to_decimal(), d["total_pnl"].to_decimal()) async for d in docs]

    assert await pnl() == [(110, 10), (120, 20), (130, 30)]
    late = fill("t0", side=Side.SELL, quantity="0.5", price="115", at=T0 + DAY)
    await store.record_trades(trades.batch([late]))
    assert await pnl() == [(110, 10), (60, Decimal("17.5")), (65, Decimal("22.5"))]
    [day2] = [
        d
        async for d in store.frame.db.portfolio_snapshots.find(
            {"_id": f"{(T0 + DAY).date()}|user-1"}
        )
    ]
    assert day2["performance_metrics"]["trades"] == 1
    assert day2["performance_metrics"]["day_pnl"] == Decimal128("7.5")
    [asset] = day2["asset_allocation"]
    assert (asset["symbol"], asset["price_source"], asset["weight"]) == (
        "BTCUSDT",
        "candle",
        Decimal128("1.0000000000"),
    )


async def test_without_a_candle_the_latest_fill_prices_the_holding(
    store: MongoAnalyticsStore,
) -> None:
    trades = Sequencer("TRADES", DURABLE)
    await store.record_trades(
        trades.batch(
            [fill("t1", price="100", at=T0), fill("t2", price="104", at=T0 - timedelta(hours=1))]
        )
    )
    doc = await store.frame.db.portfolio_snapshots.find_one({"user_id": "user-1"})
    assert doc is not None
    [asset] = doc["asset_allocation"]
    assert (asset["price"], asset["price_source"]) == (Decimal128("100"), "fill")
    assert doc["total_value"] == Decimal128("200")
    assert doc["total_pnl"] == Decimal128("-4")


async def test_indexes_with_their_ttls_and_unique_keys(store: MongoAnalyticsStore) -> None:
    db = store.frame.db
    # An earlier version's single 30-day TTL on price_history is dropped at start.
    await db.price_history.create_index("timestamp", name="ttl_timestamp", expireAfterSeconds=60)
    await store.probe()  # a second start creates nothing new and fails on nothing
    ttl = {
        f"{coll}.{name}": spec["expireAfterSeconds"]
        for coll in ("price_history", "trading_events")
        for name, spec in (await db.named(coll).index_information()).items()
        if "expireAfterSeconds" in spec
    }
    assert ttl == {
        f"price_history.{PRICE_HISTORY_EXPIRY_INDEX}": 0,
        "trading_events.ttl_timestamp": TRADING_EVENTS_TTL_S,
    }
    assert TRADING_EVENTS_TTL_S == 90 * 86400
    unique = {
        (coll, name)
        for coll in ("price_history", "bot_performance_daily", "portfolio_snapshots")
        for name, spec in (await db.named(coll).index_information()).items()
        if spec.get("unique")
    }
    assert unique == {
        ("price_history", "symbol_interval_open_time"),
        ("bot_performance_daily", "bot_day"),
        ("portfolio_snapshots", "user_date"),
    }


async def test_an_unreachable_server_is_store_unavailable() -> None:
    store = MongoAnalyticsStore.open(
        "mongodb://127.0.0.1:9/?directConnection=true", "x", timeout_s=0.5
    )
    try:
        with pytest.raises(StoreUnavailable):
            await store.probe()
        with pytest.raises(StoreUnavailable):
            await store.record_trades(Sequencer("TRADES", DURABLE).batch([fill("t1")]))
    finally:
        await store.close()


async def test_a_transaction_left_open_by_a_killed_process_does_not_block_a_new_start(
    store: MongoAnalyticsStore, mongo_server: MongoServer
) -> None:
    trades = Sequencer("TRADES", DURABLE)
    await store.record_trades(trades.batch([fill("t1")]))
    # A process that dies inside a transaction holding the checkpoint document's lock.
    code = f"""
import asyncio, os
from pymongo import AsyncMongoClient
async def main():
    client = AsyncMongoClient({mongo_server.url!r})
    session = client.start_session()
    await session.start_transaction()
    await client[{store.frame.db.database.name!r}].checkpoints.update_one(
        {{"_id": "TRADES/{DURABLE}"}}, {{"$set": {{"stream_seq": 99}}}}, session=session
    )
    os._exit(9)
asyncio.run(main())
"""
    died = await asyncio.create_subprocess_exec(sys.executable, "-c", code)
    assert await asyncio.wait_for(died.wait(), 60) == 9
    await store.probe()  # what a restarted worker does first
    result = await store.record_trades(trades.batch([fill("t2")]))
    assert result is not None
    assert result.fills == 1
    assert await store.checkpoint("TRADES", DURABLE) == 2


@pytest.mark.parametrize(
    ("retention", "minute_days", "wider_days"),
    [(None, 30, 365), (Retention(minute_days=7, wider_days=30), 7, 30)],
)
async def test_each_candle_expires_after_its_intervals_retention(
    mongo_server: MongoServer, retention: Retention | None, minute_days: int, wider_days: int
) -> None:
    async with fresh_store(mongo_server.url, retention) as store:
        market = Sequencer("MARKET", DURABLE)
        await store.record_candles(
            market.batch(
                [
                    candle("BTC", T0, "1"),
                    candle("BTC", T0, "1", interval="1h"),
                    candle("ETH", T0 + timedelta(minutes=1), "2"),
                ]
            )
        )
        expiry = {
            (d["symbol"], d["interval"]): d["expire_at"] - d["open_time"]
            async for d in store.frame.db.price_history.find()
        }
    assert expiry == {
        ("BTC", "1m"): timedelta(days=minute_days),
        ("BTC", "1h"): timedelta(days=wider_days),
        ("ETH", "1m"): timedelta(days=minute_days),
    }
