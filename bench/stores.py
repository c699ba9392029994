"""Raw bulk-write rates of each store, driven the fastest way its Python client allows."""

from __future__ import annotations

import io
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from bson.decimal128 import Decimal128
from minio import Minio
from pymongo import AsyncMongoClient, InsertOne, UpdateOne

from analytics_projector.store import INDEXES


async def postgres_copy(dsn: str, rows: int) -> float:
    """COPY into a table shaped like trading.trades, 10k rows per COPY. Rows/s."""
    conn = await asyncpg.connect(dsn)
    table = f"bench_copy_{uuid.uuid4().hex[:8]}"
    await conn.execute(
        f"CREATE TABLE {table} (trade_id text PRIMARY KEY, bot_id text, symbol text, "
        "side text, quantity numeric, price numeric, fee numeric, executed_at timestamptz)"
    )
    data = [
        (
            f"t{i}",
            f"bot-{i % 100}",
            "BTCUSDT",
            "BUY",
            Decimal("1.5"),
            Decimal("100.25"),
            Decimal("0.01"),
            None,
        )
        for i in range(rows)
    ]
    started = time.perf_counter()
    for i in range(0, rows, 10_000):
        await conn.copy_records_to_table(table, records=data[i : i + 10_000])
    rate = rows / (time.perf_counter() - started)
    await conn.execute(f"DROP TABLE {table}")
    await conn.close()
    return rate


async def redis_pipeline(url: str, commands: int) -> float:
    """HSET pipelined 1000 per round trip. Commands/s."""
    client = aioredis.from_url(url)
    started = time.perf_counter()
    for i in range(0, commands, 1000):
        pipe = client.pipeline(transaction=False)
        for k in range(i, min(i + 1000, commands)):
            pipe.hset(f"bench:ticker:{k % 50}", mapping={"price": "100.25", "qty": "1.5"})
        await pipe.execute()
    rate = commands / (time.perf_counter() - started)
    await client.delete(*[f"bench:ticker:{k}" for k in range(50)])
    await client.aclose()
    return rate


async def mongo_bulk(url: str, docs: int) -> float:
    """insert_many of 1000-document chunks. Documents/s."""
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
    coll = client["bench"][f"c{uuid.uuid4().hex[:8]}"]
    started = time.perf_counter()
    for i in range(0, docs, 1000):
        await coll.insert_many(
            [{"_id": k, "bot_id": f"bot-{k % 100}", "pnl": "1.5"} for k in range(i, i + 1000)]
        )
    rate = docs / (time.perf_counter() - started)
    await coll.drop()
    await client.close()
    return rate


def _trading_event(k: int, at: datetime) -> dict[str, Any]:
    """A ``trading_events`` fill document as analytics-projector writes it."""
    bot = k % 100
    return {
        "_id": f"fill:bench-{k}",
        "event_id": str(uuid.UUID(int=k)),
        "event_type": "trade.executed",
        "stream_seq": k + 1,
        "timestamp": at + timedelta(milliseconds=k),
        "user_id": f"user-{bot % 10}",
        "bot_id": f"bot-{bot}",
        "trading_pair": "BTCUSDT",
        "order_id": f"o-{k}",
        "trade_id": f"bench-{k}",
        "side": "BUY" if k % 2 else "SELL",
        "quantity": Decimal128("1.5"),
        "price": Decimal128("1000.25"),
        "fee": Decimal128("1.50037500"),
        "fee_currency": "USDT",
        "realized_pnl": Decimal128("0"),
        "fold": ["0", "0", "1500.375"],
    }


async def mongo_bulk_upsert(url: str, docs: int, *, per_call: int = 500) -> float:
    """Unordered ``bulk_write`` of upserts (``$setOnInsert``), ``per_call`` per round trip,
    into a collection with the ``trading_events`` indexes of analytics-projector. Docs/s."""
    return await _mongo_trading_events(url, docs, per_call, upsert=True)


async def mongo_bulk_insert(url: str, docs: int, *, per_call: int = 500) -> float:
    """The same documents as ``mongo_bulk_upsert`` as plain unordered inserts (how the
    worker writes them, after one lookup of the batch's ids). Docs/s."""
    return await _mongo_trading_events(url, docs, per_call, upsert=False)


async def _mongo_trading_events(url: str, docs: int, per_call: int, *, upsert: bool) -> float:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=True)
    coll = client["bench"][f"trading_events_{uuid.uuid4().hex[:8]}"]
    await coll.create_indexes(INDEXES["trading_events"])
    at = datetime.now(UTC)
    data = [_trading_event(k, at) for k in range(docs)]
    started = time.perf_counter()
    for i in range(0, docs, per_call):
        chunk = data[i : i + per_call]
        ops: list[Any] = [
            UpdateOne({"_id": doc["_id"]}, {"$setOnInsert": doc}, upsert=True)
            if upsert
            else InsertOne(doc)
            for doc in chunk
        ]
        await coll.bulk_write(ops, ordered=False)
    rate = docs / (time.perf_counter() - started)
    await coll.drop()
    await client.close()
    return rate


def s3_puts(endpoint: str, access: str, secret: str, objects: int) -> float:
    """Small PUTs (4 KiB) one after another. Objects/s."""
    host = endpoint.split("://", 1)[-1]
    client = Minio(host, access_key=access, secret_key=secret, secure=False)
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    client.make_bucket(bucket)
    body = b"x" * 4096
    started = time.perf_counter()
    for i in range(objects):
        client.put_object(bucket, f"o/{i}", io.BytesIO(body), len(body))
    return objects / (time.perf_counter() - started)
