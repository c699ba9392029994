"""`fleet replay market-ingest` as an operator runs it: dry run, lock, repair, --keep-old."""

from __future__ import annotations

import os

import nats
from redis.asyncio import Redis

from fleet_testing import Fleet
from fleet_testing.replaying import run_fleet
from market_ingest.store import Keys

from .conftest import generate_ticks, snapshot, start_servers, wait_until
from .test_worker import KEPT, _outboxes_empty, publish, settings_for, wait_applied, worker

LIVE = Keys()


async def test_dry_run_lock_and_repair_through_the_cli(isolated_fleet: Fleet) -> None:
    await start_servers(isolated_fleet)
    settings = settings_for(isolated_fleet)
    env = {
        **os.environ,
        **isolated_fleet.nats.env(),  # FLEET_NATS_CREDS: the worker connects as itself
        "MARKET_INGEST_NATS_URL": isolated_fleet.nats.url,
        "MARKET_INGEST_REDIS_URL": isolated_fleet.redis.url,
        "MARKET_INGEST_CANDLES_KEPT": str(KEPT),
        "MARKET_INGEST_LOG_LEVEL": "WARNING",
    }
    nc = await nats.connect(isolated_fleet.nats.url)
    redis = Redis.from_url(isolated_fleet.redis.url)
    try:
        async with worker(settings):
            ticks = await publish(nc.jetstream(), generate_ticks(seed=41, n=1500))
            await wait_applied(redis, ticks)
            await wait_until(lambda: _outboxes_empty(redis), 20, "empty outboxes")
            healthy = await snapshot(redis)

            same = await run_fleet(["replay", "market-ingest", "--dry-run"], env)
            assert same.code == 0, same.err
            assert "live matches the replay" in same.out, same.out

            await redis.hset(LIVE.ticker("BTCUSDT"), "price", "1")
            window = LIVE.window("ETHUSDT")
            assert await redis.zremrangebyrank(window, 0, 0) == 1
            sick = await run_fleet(["replay", "market-ingest", "--dry-run"], env)
            assert sick.code == 0, sick.err
            differ = {line.split()[0] for line in sick.out.splitlines() if "DIFFERENT" in line}
            assert differ == {"ticker", "window"}, sick.out
            assert await snapshot(redis) != healthy, "the dry run changed nothing"

            # Another replay holds the lock: the CLI names it and exits 2.
            await redis.set("fleet:replay:lock:market-ingest", "replay market-ingest pid 1 on h")
            locked = await run_fleet(["replay", "market-ingest", "--yes"], env)
            assert locked.code == 2, locked.err
            assert "(replay market-ingest pid 1 on h)" in locked.err
            await redis.delete("fleet:replay:lock:market-ingest")

            fixed = await run_fleet(["replay", "market-ingest", "--yes", "--keep-old"], env)
            assert fixed.code == 0, fixed.err + fixed.out
            assert "swapped Redis keys market:*" in fixed.out
            assert await snapshot(redis) == healthy
            kept = [k async for k in redis.scan_iter(match="replaced:*")]
            assert len(kept) == 27, kept  # 3 symbols x (seq, ticker, window, 6 intervals)
            dropped = await run_fleet(["replay", "market-ingest", "--drop-old"], env)
            assert dropped.code == 0, dropped.err
            assert not [k async for k in redis.scan_iter(match="replaced:*")]
            assert not [k async for k in redis.scan_iter(match="rebuild:*")]
    finally:
        await nc.close()
        await redis.aclose()
