"""Losing Redis loses no candle: `fleet replay market-ingest` refills every series to its
depth from the warm and cold tiers, on real NATS, Redis, the MongoDB-wire server and
SeaweedFS.

The live market-ingest worker applies ticks over 71 hours (sparse, then a dense last 80
minutes) while the MARKET stream keeps only its last ``KEEP`` messages (ticks and candle
events): the oldest ticks leave the stream long before the series are deep. The candles the
worker closes go where the fleet puts them: backup-runner's stream backups archive them and
compact them into the cold tier's Parquet files (not the last part: no backup since), and
price_history holds them as analytics-projector stores them, except the oldest (expired).
Then Redis is flushed and rebuilt.
"""

from __future__ import annotations

import json
import os
import signal
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from nats.aio.msg import Msg
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from analytics_projector.retention import Retention
from analytics_projector.store.candles import candle_doc, candle_id
from backup_runner.app import object_store
from backup_runner.runner import BackupRequest, BackupRunner
from backup_runner.settings import BackupRunnerSettings
from fleet_events import CandleInterval, Event, MarketCandle, MarketTick, decode, new_event
from fleet_runtime.publisher import EventPublisher
from fleet_testing import Fleet
from fleet_testing.replaying import run_fleet
from fleet_testing.topologies import StreamsFile
from fleet_testing.waiting import wait_until
from fleet_testing.workerprocs import settings_env, start_worker, stream_loaded
from market_ingest.refill import NOT_CONFIGURED

ROOT = Path(__file__).resolve().parents[1]
SYMBOLS = ("BTCUSDT", "ETHUSDT")
INTERVALS = (CandleInterval.M1, CandleInterval.M5, CandleInterval.H1)
KEPT = 60  # bars per series: an hour of 1m, five hours of 5m, 60 hours of 1h
KEEP = 300  # messages the MARKET stream keeps: about the last half hour of ticks
BUCKET = "history-refill"
PART = 60  # ticks published between two stream backups (their candles fit in KEEP)
WARM_FROM = timedelta(hours=40)  # price_history lost the candles opened before T0 + 40 h


def ticks(t0: datetime) -> list[Event[MarketTick]]:
    """70 hours with a trade every 30 minutes, then 80 minutes with one every 20 seconds."""
    times = [t0 + timedelta(minutes=30 * k, seconds=7) for k in range(140)]
    times += [t0 + timedelta(hours=70, seconds=20 * k + 3) for k in range(240)]
    out = []
    for k, at in enumerate(times):
        for n, symbol in enumerate(SYMBOLS):
            price = Decimal(20_000 + (k * 7919 + n * 131) % 977) / 10
            tick = MarketTick(
                symbol=symbol,
                price=price,
                quantity=Decimal(1 + (k + n) % 13) / 100,
                timestamp=at,
                is_buyer_maker=k % 2 == 0,
                trade_id=f"{symbol}-{k}",
            )
            out.append(new_event(tick, source="test"))
    return out


async def series(redis: Redis) -> dict[str, list[tuple[bytes, float]]]:
    """Every candle sorted set: members with their scores."""
    out = {}
    for symbol in SYMBOLS:
        for i in INTERVALS:
            key = f"market:candles:{i.value}:{symbol}"
            out[f"{i.value}:{symbol}"] = await redis.zrange(key, 0, -1, withscores=True)
    return out


def visible(member: bytes) -> tuple[Any, ...]:
    """A bar's candle as a reader sees it: open time, OHLCV as numbers, trade count."""
    bar = json.loads(member)
    return (bar["t"], *(Decimal(bar[f]) for f in "ohlcv"), bar["n"])


async def test_replay_refills_every_series_to_full_depth_from_warm_and_cold(
    isolated_fleet: Fleet, tmp_path: Path
) -> None:
    isolated_fleet.start("nats", "redis", "mongo", "s3")
    streams = (
        StreamsFile(ROOT / "streams.yaml")
        .set_stream("MARKET", max_msgs=KEEP, discard="old")
        .write(tmp_path / "streams.yaml")
    )
    s3 = isolated_fleet.s3.env()
    backup = BackupRunnerSettings(
        nats_url=isolated_fleet.nats.url, s3_endpoint=isolated_fleet.s3.endpoint,
        s3_access_key=s3["FLEET_S3_ACCESS_KEY"], s3_secret_key=s3["FLEET_S3_SECRET_KEY"],
        s3_region=s3["FLEET_S3_REGION"], s3_bucket=BUCKET, archive_streams=["MARKET"],
    )  # fmt: skip
    env = {
        **os.environ,
        **isolated_fleet.env(),
        **settings_env(backup),
        "FLEET_HISTORY_BUCKET": BUCKET,
        "MARKET_INGEST_NATS_URL": isolated_fleet.nats.url,
        "MARKET_INGEST_REDIS_URL": isolated_fleet.redis.url,
        "MARKET_INGEST_STREAMS_FILE": str(streams),
        "MARKET_INGEST_CANDLES_KEPT": str(KEPT),
        "MARKET_INGEST_CANDLE_INTERVALS": json.dumps([i.value for i in INTERVALS]),
        "MARKET_INGEST_LOG_LEVEL": "WARNING",
    }
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    t0 = hour - timedelta(hours=72)
    events = ticks(t0)
    nc, js = await stream_loaded(isolated_fleet.nats.url, streams, [])
    redis = Redis.from_url(isolated_fleet.redis.url)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        isolated_fleet.mongo.url, tz_aware=True
    )
    closed: list[MarketCandle] = []

    async def collect(msg: Msg) -> None:
        closed.append(decode(msg.data).data)

    await nc.subscribe("market.candle.>", cb=collect)
    worker = start_worker("market-ingest", env, tmp_path / "worker.log")
    last_seq: dict[str, int] = {}

    async def applied() -> bool:
        for symbol, seq in last_seq.items():
            got = await redis.hget(f"market:seq:{symbol}", "seq")
            if got is None or int(got) < seq:
                return False
        return not [k async for k in redis.scan_iter(match="market:outbox:*")]

    try:
        for start in range(0, len(events), PART):
            part = events[start : start + PART]
            acks = await EventPublisher(js).publish_many(part)
            last_seq.update({e.data.symbol: int(a.seq) for a, e in zip(acks, part, strict=True)})
            await wait_until(applied, 90, "ticks applied and their candles published")
            if start + PART < len(events):
                request = BackupRequest(f"cold-{start}", "stream", "MARKET", "test")
                done = await BackupRunner(backup, object_store(backup), js).run(request)
                assert done.manifest.gaps == []
        await nc.flush()
        warm = [
            {"_id": candle_id(c), **candle_doc(c, n, Retention())}
            for n, c in enumerate(closed, start=1)
            if c.open_time >= t0 + WARM_FROM
        ]
        await mongo["tradefleet_analytics"]["price_history"].insert_many(warm)

        info = await js.stream_info("MARKET")
        assert info.state.first_seq > 1, "the oldest ticks are gone from the stream"
        before = await series(redis)
        assert {k: len(v) for k, v in before.items()} == {k: KEPT for k in before}

        await redis.flushall()
        rebuilt = await run_fleet(["replay", "market-ingest", "--yes"], env)
        assert rebuilt.code == 0, rebuilt.err + rebuilt.out
        said = " ".join(rebuilt.err.split())  # the progress display (stderr) wraps lines
        assert "from warm (MongoDB) and cold (S3 Parquet)" in said, said
        assert "6 oldest stream bars replaced by fuller tier bars" in said, said  # the seams
        after = await series(redis)
        for key, bars in before.items():
            width_ms = int(CandleInterval(key.split(":")[0]).duration.total_seconds() * 1000)
            got = after[key]
            assert [s for _, s in got] == [s for _, s in bars], key
            assert [visible(m) for m, _ in got] == [visible(m) for m, _ in bars], key
            # The stream's bars come back byte for byte; the tiers' older ones differ only in
            # the times of their first and last trades, which no tier keeps.
            pairs = zip(bars, got, strict=True)
            refilled = [n for n, ((old, _), (new, _)) in enumerate(pairs) if new != old]
            assert refilled == list(range(len(refilled))), key
            assert 0 < len(refilled) < KEPT, key
            for n in refilled:
                bar, score = json.loads(got[n][0]), int(got[n][1])
                assert (bar["ft"], bar["lt"]) == (score * 1000, (score + width_ms) * 1000 - 1)
        # The oldest 1h bars are older than anything price_history holds: cold served them.
        assert before["1h:BTCUSDT"][0][1] < (t0 + WARM_FROM).timestamp() * 1000

        # Without the tiers the replay rebuilds what the stream holds, and says so.
        await redis.flushall()
        bare = {k: v for k, v in env.items() if k not in ("FLEET_MONGO_URL", "FLEET_S3_ENDPOINT")}
        shallow = await run_fleet(["replay", "market-ingest", "--yes"], bare)
        assert shallow.code == 0, shallow.err + shallow.out
        assert NOT_CONFIGURED in " ".join(shallow.err.split()), shallow.err
        short = await series(redis)
        for key, bars in short.items():
            assert 0 < len(bars) < KEPT, key
            assert bars[1:] == before[key][KEPT - len(bars) + 1 :], key  # the seam is partial
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        await nc.close()
        await redis.aclose()
        await mongo.close()
