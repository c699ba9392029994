"""Raw bulk-write rates of each store, driven the fastest way its Python client allows."""

from __future__ import annotations

import io
import time
import uuid
from decimal import Decimal

import asyncpg
import redis.asyncio as aioredis
from minio import Minio
from pymongo import AsyncMongoClient


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
