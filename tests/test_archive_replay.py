"""`fleet replay WORKER --from-archive` rebuilds past stream retention from backup-runner's
archive in S3 and then the stream, on real NATS, PostgreSQL, Redis and SeaweedFS.

The streams here forget their oldest messages (a small ``max_msgs`` with ``discard: old``)
while the live worker keeps up; stream backups archive them before they go. The rebuilt
store must equal an independent computation from every event ever published.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from nats.js.client import JetStreamContext
from redis.asyncio import Redis

from backup_runner.app import object_store
from backup_runner.archive_chain import segment_key
from backup_runner.runner import BackupRequest, BackupRunner
from backup_runner.settings import BackupRunnerSettings
from fleet_events import Event, MarketTick, Side, TradeCompleted, TradeExecuted, new_event
from fleet_pgmigrate import dsn_with
from fleet_runtime.publisher import EventPublisher
from fleet_testing import Fleet
from fleet_testing.replaying import run_fleet
from fleet_testing.servers import S3Server
from fleet_testing.topologies import StreamsFile
from fleet_testing.waiting import wait_until
from fleet_testing.workerprocs import settings_env, start_worker, stream_loaded
from trade_recorder.logic import Fill, apply_fills, fill_from_event
from trade_recorder.store import ROLE, ensure_roles, run_migrations

ROOT = Path(__file__).resolve().parents[1]
KEEP = 1000  # messages a test stream keeps
SEGMENT = 500
T0 = datetime(2026, 3, 2, tzinfo=UTC)
VOLATILE = {b"updated_at", b"gen"}


def archive_settings(fleet: Fleet, s3: S3Server, **values: Any) -> BackupRunnerSettings:
    env = s3.env()
    return BackupRunnerSettings(
        nats_url=fleet.nats.url,
        s3_endpoint=s3.endpoint,
        s3_access_key=env["FLEET_S3_ACCESS_KEY"],
        s3_secret_key=env["FLEET_S3_SECRET_KEY"],
        s3_region=env["FLEET_S3_REGION"],
        s3_bucket=f"archive-{uuid.uuid4().hex[:10]}",
        segment_max_messages=SEGMENT,
        **values,
    )


async def archive(settings: BackupRunnerSettings, js: JetStreamContext, stream: str) -> None:
    request = BackupRequest(f"s-{uuid.uuid4().hex[:10]}", "stream", stream, "test")
    done = await BackupRunner(settings, object_store(settings), js).run(request)
    assert done.manifest.gaps == []


async def publish(js: JetStreamContext, events: list[Event[Any]]) -> int:
    acks = await EventPublisher(js).publish_many(events)
    return int(acks[-1].seq)


# -- trade-recorder (PostgreSQL) ------------------------------------------------------------


def trade_events(total: int) -> tuple[list[Event[Any]], list[Event[Any]]]:
    """(distinct fills, what is published): every 10th fill re-sent under a new id, and a
    completion after each order's 3 fills."""
    fills: list[Event[Any]] = []
    published: list[Event[Any]] = []
    for n in range(total):
        payload = TradeExecuted(
            trade_id=f"t{n}",
            order_id=f"o{n // 3}",
            bot_id=f"bot-{(n // 3) % 4}",
            user_id="user-1",
            symbol=("BTC", "ETH")[n % 2],
            side=Side.BUY if (n * 7) % 5 < 3 else Side.SELL,
            quantity=Decimal(1 + n % 17) / 100,
            price=Decimal(20_000 + (n * 37) % 500) / 10,
            fee=Decimal(n % 9) / 1000,
            fee_currency="USDT",
            executed_at=T0 + timedelta(seconds=n),
        )
        fills.append(new_event(payload, source="test"))
        published.append(fills[-1])
        if n % 10 == 9:
            published.append(new_event(payload, source="test"))
        if n % 3 == 2:
            done = TradeCompleted(
                order_id=payload.order_id,
                bot_id=payload.bot_id,
                user_id=payload.user_id,
                symbol=payload.symbol,
                filled_quantity=payload.quantity,
                average_price=payload.price,
            )
            published.append(new_event(done, source="test"))
    return fills, published


async def check_books(db: asyncpg.Connection, fills: list[Event[Any]]) -> None:
    """Trades, orders and positions equal a computation from ``fills`` in publish order."""
    unique = [fill_from_event(e, n) for n, e in enumerate(fills)]
    row = await db.fetchrow(
        "SELECT count(*) AS n, count(DISTINCT trade_id) AS u, sum(quantity) AS q, "
        "sum(fee) AS f FROM trading.trades"
    )
    assert (row["n"], row["u"]) == (len(fills), len(fills))
    assert row["q"] == sum((f.quantity for f in unique), Decimal(0))
    assert row["f"] == sum((f.fee for f in unique), Decimal(0))
    orders = await db.fetchrow(
        "SELECT count(*) AS n, count(*) FILTER (WHERE status = 'completed') AS done, "
        "sum(fill_count) AS fills FROM trading.orders"
    )
    assert tuple(orders.values()) == (len(fills) // 3, len(fills) // 3, len(fills))
    by_key: dict[tuple[str, str, str], list[Fill]] = defaultdict(list)
    for fill in unique:
        by_key[fill.key].append(fill)
    expected = [
        (*key, p.side, p.quantity, p.average_entry_price, p.realized_pnl, p.fees, p.is_open)
        for key in sorted(by_key)
        for p in apply_fills(None, by_key[key])
    ]
    stored = await db.fetch(
        "SELECT user_id, bot_id, symbol, side, quantity, average_entry_price, "
        "realized_pnl, fees, is_open FROM trading.positions ORDER BY user_id, bot_id, symbol, id"
    )
    assert [tuple(r.values()) for r in stored] == expected


@pytest.mark.slow
async def test_trade_recorder_rebuilds_past_retention_from_archive_and_stream(
    isolated_fleet: Fleet, s3_server: S3Server, postgres_database: str, tmp_path: Path
) -> None:
    streams = (
        StreamsFile(ROOT / "streams.yaml")
        .set_stream("TRADES", max_msgs=KEEP, discard="old")
        .write(tmp_path / "streams.yaml")
    )
    await ensure_roles(postgres_database)
    await run_migrations(postgres_database)
    fills, published = trade_events(1500)  # 2,150 messages: the first 1,150 expire
    settings = archive_settings(isolated_fleet, s3_server)
    env = {
        **os.environ,
        **settings_env(settings),
        **isolated_fleet.nats.env(),  # FLEET_NATS_CREDS: the worker connects as itself
        "TRADE_RECORDER_NATS_URL": isolated_fleet.nats.url,
        "TRADE_RECORDER_POSTGRES_DSN": dsn_with(postgres_database, user=ROLE),
        "TRADE_RECORDER_OWNER_DSN": postgres_database,
        "TRADE_RECORDER_STREAMS_FILE": str(streams),
        "TRADE_RECORDER_LOG_LEVEL": "WARNING",
    }
    nc, js = await stream_loaded(isolated_fleet.nats.url, streams, published[:1000])
    db = await asyncpg.connect(postgres_database)
    worker = start_worker("trade-recorder", env, tmp_path / "worker.log")

    async def applied(seq: int) -> bool:
        return bool(await db.fetchval("SELECT max(stream_seq) FROM trading.checkpoints") == seq)

    try:
        await wait_until(lambda: applied(1000), 90, "first part applied")
        await archive(settings, js, "TRADES")  # 1-1000
        second = await publish(js, published[1000:1800])
        await wait_until(lambda: applied(second), 90, "second part applied")
        await archive(settings, js, "TRADES")  # 1001-1800
        last = await publish(js, published[1800:])
        await wait_until(lambda: applied(last), 90, "everything applied")
        info = await js.stream_info("TRADES")
        assert (info.state.first_seq, info.state.last_seq) == (last - KEEP + 1, len(published))
        assert info.state.first_seq > 1000, "the first archived fills are gone from the stream"
        await check_books(db, fills)
        await db.execute("DELETE FROM trading.trades WHERE trade_id LIKE 't1%'")

        refused = await run_fleet(["replay", "trade-recorder", "--yes"], env)
        assert refused.code == 2, refused.err
        assert f"no longer holds sequences 1..{info.state.first_seq - 1}" in refused.err
        assert "--from-archive" in refused.err

        rebuilt = await run_fleet(["replay", "trade-recorder", "--from-archive", "--yes"], env)
        assert rebuilt.code == 0, rebuilt.err + rebuilt.out
        assert f"applied {len(published):,} events" in rebuilt.out, rebuilt.out
        assert "from the archive: 1,800 events (TRADES 1-1,800)" in rebuilt.out, rebuilt.out
        await check_books(db, fills)

        # One segment gone from the bucket: the rebuild is refused, naming the hole.
        store = object_store(settings)
        middle = segment_key("TRADES", 501, 1000)
        saved = b"".join(store.get_chunks(middle))
        store.delete(middle)
        holed = await run_fleet(["replay", "trade-recorder", "--from-archive", "--yes"], env)
        assert holed.code == 2, holed.err
        assert "TRADES 501-1000 missing from the archive" in holed.err, holed.err
        assert "Traceback" not in holed.err
        await check_books(db, fills)
        store.put_bytes(middle, saved)

        # Retention removed the archive's start (no PostgreSQL backup holds it back): the
        # rebuild from the first event is refused, naming the earliest sequence left.
        pruned = await run_fleet(
            ["backup", "prune"], {**env, "BACKUP_RUNNER_ARCHIVE_KEEP_DAYS": "0"}
        )
        assert pruned.code == 0, pruned.err
        assert "prune  TRADES 1-1500 (3 segments)" in pruned.out, pruned.out
        gone = await run_fleet(["replay", "trade-recorder", "--from-archive", "--yes"], env)
        assert gone.code == 2, gone.err
        assert (
            "retention pruned it through sequence 1500, its earliest available sequence is "
            f"1501 (the stream starts at {info.state.first_seq})"
        ) in gone.err, gone.err
        assert "Traceback" not in gone.err
        await check_books(db, fills)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        await nc.close()
        await db.close()


# -- market-ingest (Redis) ------------------------------------------------------------------


def ticks(total: int) -> list[Event[Any]]:
    """Ticks over three symbols with prices that walk, one second apart."""
    out = []
    for n in range(total):
        out.append(
            new_event(
                MarketTick(
                    symbol=("BTCUSDT", "ETHUSDT", "SOLUSDT")[n % 3],
                    price=Decimal(1000 + (n * 7919) % 501) / 10,
                    quantity=Decimal(1 + n % 13) / 100,
                    timestamp=T0 + timedelta(seconds=n),
                    is_buyer_maker=n % 2 == 0,
                    trade_id=str(n),
                ),
                source="test",
            )
        )
    return out


async def redis_state(redis: Redis) -> dict[bytes, Any]:
    """Every ``market:*`` key's content, minus wall-clock and lineage fields."""
    out: dict[bytes, Any] = {}
    async for key in redis.scan_iter(match="market:*", count=1000):
        kind = (await redis.type(key)).decode()
        if kind == "hash":
            fields = await redis.hgetall(key)
            out[key] = sorted((k, v) for k, v in fields.items() if k not in VOLATILE)
        else:
            assert kind == "zset", (key, kind)
            out[key] = await redis.zrange(key, 0, -1, withscores=True)
    return out


@pytest.mark.slow
async def test_market_ingest_rebuilds_past_retention_from_archive_and_stream(
    isolated_fleet: Fleet, s3_server: S3Server, tmp_path: Path
) -> None:
    streams = (
        StreamsFile(ROOT / "streams.yaml")
        .set_stream("MARKET", max_msgs=KEEP, discard="old")
        .write(tmp_path / "streams.yaml")
    )
    # Ticks archived too (by default MARKET keeps only its candles in the archive).
    settings = archive_settings(isolated_fleet, s3_server, archive_subjects={})
    isolated_fleet.start("nats", "redis")
    env = {
        **os.environ,
        **settings_env(settings),
        **isolated_fleet.nats.env(),  # FLEET_NATS_CREDS: the worker connects as itself
        "MARKET_INGEST_NATS_URL": isolated_fleet.nats.url,
        "MARKET_INGEST_REDIS_URL": isolated_fleet.redis.url,
        "MARKET_INGEST_STREAMS_FILE": str(streams),
        "MARKET_INGEST_CANDLES_KEPT": "60",
        "MARKET_INGEST_LOG_LEVEL": "WARNING",
    }
    events = ticks(2400)
    nc, js = await stream_loaded(isolated_fleet.nats.url, streams, [])
    redis = Redis.from_url(isolated_fleet.redis.url)
    worker = start_worker("market-ingest", env, tmp_path / "worker.log")
    last_seq: dict[str, int] = {}

    async def send(part: list[Event[Any]]) -> None:
        acks = await EventPublisher(js).publish_many(part)
        for ack, event in zip(acks, part, strict=True):
            last_seq[event.data.symbol] = int(ack.seq)

        async def applied() -> bool:
            for symbol, seq in last_seq.items():
                got = await redis.hget(f"market:seq:{symbol}", "seq")
                if got is None or int(got) < seq:
                    return False
            return True

        await wait_until(applied, 90, "ticks applied")

    try:
        # Each part (ticks and the candles they close) fits in the stream's 1,000.
        await send(events[:800])
        await archive(settings, js, "MARKET")
        await send(events[800:1600])
        await archive(settings, js, "MARKET")
        await send(events[1600:])
        info = await js.stream_info("MARKET")
        assert info.state.first_seq > 800, "the first archived ticks are gone from the stream"
        live = await redis_state(redis)
        for n, symbol in enumerate(("BTCUSDT", "ETHUSDT", "SOLUSDT")):
            last = events[len(events) - 3 + n].data
            assert last.symbol == symbol
            ticker = await redis.hgetall(f"market:ticker:{symbol}")
            assert Decimal(ticker[b"price"].decode()) == last.price
        await redis.hset("market:ticker:BTCUSDT", "price", "1")

        rebuilt = await run_fleet(["replay", "market-ingest", "--from-archive", "--yes"], env)
        assert rebuilt.code == 0, rebuilt.err + rebuilt.out
        # Exactly every tick once: the archive's candles are outside market-ingest's filter.
        assert f"applied {len(events):,} events" in rebuilt.out, rebuilt.out
        assert "from the archive:" in rebuilt.out, rebuilt.out
        assert await redis_state(redis) == live
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        await nc.close()
        await redis.aclose()
