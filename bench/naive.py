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
from faststream.nats import JStream, NatsBroker
from nats.js.api import DeliverPolicy
from pydantic import BaseModel, ConfigDict

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
