"""The naive baseline: what a user would first write with FastStream, one event per call.

A subscriber handling one message at a time, decoding it and writing it with one
statement per event (idempotent, so the comparison is fair), acked by FastStream.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from bson.decimal128 import Decimal128
from faststream.nats import JStream, NatsBroker
from nats.js.api import DeliverPolicy
from pydantic import BaseModel, ConfigDict
from pymongo import AsyncMongoClient

from fleet_events import MarketTick, TradeExecuted, event_class


class _BotData(BaseModel):
    model_config = ConfigDict(extra="allow")
    bot_id: str
    version: int


class _BotEvent(BaseModel):
    """Any bot event, as a user would model the envelope for one subscriber."""

    model_config = ConfigDict(extra="allow")
    type: str
    data: _BotData


async def _run(
    nats_url: str, stream: str, subject: str, n: int, model: type[Any], handle: Any
) -> float:
    broker = NatsBroker(nats_url, logger=None)
    done = asyncio.Event()
    count = 0

    async def on_event(event: Any) -> None:
        nonlocal count
        await handle(event)
        count += 1
        if count >= n:
            done.set()

    # FastStream validates the JSON body into the annotated pydantic model, as its users
    # write it: here the envelope class of the event type.
    on_event.__annotations__["event"] = model
    broker.subscriber(
        subject,
        stream=JStream(stream, declare=False),
        durable=f"naive-{uuid.uuid4().hex[:6]}",
        deliver_policy=DeliverPolicy.ALL,
    )(on_event)

    started = time.perf_counter()
    await broker.start()
    await asyncio.wait_for(done.wait(), 600)
    rate = count / (time.perf_counter() - started)
    await broker.stop()
    return rate


async def trades_insert_each(nats_url: str, dsn: str, n: int) -> float:
    """One INSERT … ON CONFLICT DO NOTHING per fill."""
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS naive_trades (trade_id text PRIMARY KEY, bot_id text, "
        "symbol text, side text, quantity numeric, price numeric, fee numeric, "
        "executed_at timestamptz)"
    )

    async def handle(event: Any) -> None:
        d = event.data
        await conn.execute(
            "INSERT INTO naive_trades VALUES ($1,$2,$3,$4,$5,$6,$7,$8) "
            "ON CONFLICT (trade_id) DO NOTHING",
            d.trade_id,
            d.bot_id,
            d.symbol,
            d.side.value,
            d.quantity,
            d.price,
            d.fee,
            d.executed_at,
        )

    try:
        return await _run(nats_url, "TRADES", "trade.>", n, event_class(TradeExecuted), handle)
    finally:
        await conn.execute("DROP TABLE naive_trades")
        await conn.close()


async def ticks_hset_each(nats_url: str, redis_url: str, n: int) -> float:
    """One HSET of the ticker per tick."""
    client = aioredis.from_url(redis_url)

    async def handle(event: Any) -> None:
        d = event.data
        await client.hset(
            f"naive:ticker:{d.symbol}",
            mapping={
                "price": str(d.price),
                "quantity": str(d.quantity),
                "time": d.timestamp.isoformat(),
            },
        )

    try:
        return await _run(nats_url, "MARKET", "market.tick.>", n, event_class(MarketTick), handle)
    finally:
        await client.aclose()


async def bots_upsert_each(nats_url: str, dsn: str, n: int) -> float:
    """One upsert of the bot's status and version per bot event."""
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS naive_bots (bot_id text PRIMARY KEY, status text, version int)"
    )

    async def handle(event: Any) -> None:
        d = event.data
        await conn.execute(
            "INSERT INTO naive_bots VALUES ($1,$2,$3) ON CONFLICT (bot_id) DO UPDATE "
            "SET status = EXCLUDED.status, version = EXCLUDED.version "
            "WHERE naive_bots.version < EXCLUDED.version",
            d.bot_id,
            event.type,
            d.version,
        )

    try:
        return await _run(nats_url, "BOTS", "bot.>", n, _BotEvent, handle)
    finally:
        await conn.execute("DROP TABLE naive_bots")
        await conn.close()


async def fills_upsert_each(nats_url: str, mongo_url: str, n: int) -> float:
    """Per fill: one upsert of its ``trading_events`` document, then, when that inserted
    it (a redelivered fill changes nothing), one update of its bot's document."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, tz_aware=True)
    db = client[f"naive_{uuid.uuid4().hex[:6]}"]

    async def handle(event: Any) -> None:
        d = event.data
        result = await db.trading_events.update_one(
            {"_id": f"fill:{d.trade_id}"},
            {
                "$setOnInsert": {
                    "event_id": str(event.id),
                    "event_type": event.type,
                    "timestamp": d.executed_at,
                    "user_id": d.user_id,
                    "bot_id": d.bot_id,
                    "trading_pair": d.symbol,
                    "order_id": d.order_id,
                    "trade_id": d.trade_id,
                    "side": d.side.value,
                    "quantity": Decimal128(d.quantity),
                    "price": Decimal128(d.price),
                    "fee": Decimal128(d.fee),
                    "fee_currency": d.fee_currency,
                }
            },
            upsert=True,
        )
        if result.upserted_id is None:
            return
        await db.bot_performance.update_one(
            {"_id": d.bot_id},
            {
                "$inc": {
                    "total_trades": 1,
                    "volume": Decimal128(d.quantity * d.price),
                    "total_fees": Decimal128(d.fee),
                },
                "$set": {"user_id": d.user_id, "last_trade_at": d.executed_at},
            },
            upsert=True,
        )

    try:
        return await _run(nats_url, "TRADES", "trade.>", n, event_class(TradeExecuted), handle)
    finally:
        await client.drop_database(db.name)
        await client.close()
