"""`fleet replay market-ingest` as an operator runs it: dry run, lock, repair, --keep-old,
and a replay killed midway."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
from redis.asyncio import Redis

from fleet_testing import Fleet
from fleet_testing.replaying import run_fleet, start_fleet
from market_ingest.store import Keys

from .conftest import generate_ticks, snapshot, start_servers, wait_until
from .test_worker import KEPT, _outboxes_empty, publish, settings_for, wait_applied, worker

LIVE = Keys()


def _cli_env(fleet: Fleet) -> dict[str, str]:
    return {
        **os.environ,
        **fleet.nats.env(),  # FLEET_NATS_CREDS: the worker connects as itself
        "MARKET_INGEST_NATS_URL": fleet.nats.url,
        "MARKET_INGEST_REDIS_URL": fleet.redis.url,
        "MARKET_INGEST_CANDLES_KEPT": str(KEPT),
        "MARKET_INGEST_LOG_LEVEL": "WARNING",
    }


@contextlib.asynccontextmanager
async def _worker_with_ticks(
    fleet: Fleet, seed: int, n: int
) -> AsyncIterator[tuple[dict[str, str], Redis, dict[bytes, Any]]]:
    """The worker running over ``n`` applied ticks: (CLI environment, Redis, live state)."""
    await start_servers(fleet)
    nc = await nats.connect(fleet.nats.url)
    redis = Redis.from_url(fleet.redis.url)
    try:
        async with worker(settings_for(fleet)):
            ticks = await publish(nc.jetstream(), generate_ticks(seed=seed, n=n))
            await wait_applied(redis, ticks)
            await wait_until(lambda: _outboxes_empty(redis), 20, "empty outboxes")
            yield _cli_env(fleet), redis, await snapshot(redis)
    finally:
        await nc.close()
        await redis.aclose()


async def test_dry_run_lock_and_repair_through_the_cli(isolated_fleet: Fleet) -> None:
    async with _worker_with_ticks(isolated_fleet, seed=41, n=1500) as (env, redis, healthy):
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
        assert len(kept) == 33, kept  # 3 symbols x (seq, ticker, window, 8 intervals)
        dropped = await run_fleet(["replay", "market-ingest", "--drop-old"], env)
        assert dropped.code == 0, dropped.err
        assert not [k async for k in redis.scan_iter(match="replaced:*")]
        assert not [k async for k in redis.scan_iter(match="rebuild:*")]


async def _shadow_keys(redis: Redis) -> int:
    return len([k async for k in redis.scan_iter(match="rebuild:*", count=1000)])


async def _building(redis: Redis) -> bool:
    return await _shadow_keys(redis) > 0


async def test_a_replay_killed_midway_leaves_live_untouched_and_the_next_one_cleans_up(
    isolated_fleet: Fleet, tmp_path: Path
) -> None:
    async with _worker_with_ticks(isolated_fleet, seed=43, n=6000) as (env, redis, healthy):
        replay = await start_fleet(
            ["replay", "market-ingest", "--yes", "--batch-size", "10"],
            env,
            tmp_path / "replay.log",
        )

        async def shadow_keys() -> int:
            return await _shadow_keys(redis)

        await wait_until(lambda: _building(redis), 60, "the replay building its shadow keys")
        os.kill(replay.pid, signal.SIGKILL)
        await replay.wait()
        assert await shadow_keys() > 0, "killed before the swap, its shadow left behind"
        assert await snapshot(redis) == healthy, "live untouched by the killed replay"

        # The killed replay's lock lease runs out by itself; then the next replay runs.
        async def lock_free() -> bool:
            return not await redis.exists("fleet:replay:lock:market-ingest")

        await wait_until(lock_free, 30, "the killed replay's lock lease to run out")
        fixed = await run_fleet(["replay", "market-ingest", "--yes"], env)
        assert fixed.code == 0, fixed.err + fixed.out
        assert await snapshot(redis) == healthy
        assert await shadow_keys() == 0
        assert not [k async for k in redis.scan_iter(match="replaced:*")]


async def test_sigterm_midway_removes_the_shadow_keys_and_leaves_live(
    isolated_fleet: Fleet, tmp_path: Path
) -> None:
    async with _worker_with_ticks(isolated_fleet, seed=44, n=6000) as (env, redis, healthy):
        log = tmp_path / "replay.log"
        args = ["replay", "market-ingest", "--yes", "--batch-size", "10"]
        replay = await start_fleet(args, env, log)
        await wait_until(lambda: _building(redis), 60, "the replay building its shadow keys")
        replay.send_signal(signal.SIGTERM)
        assert await replay.wait() == 143, log.read_text()
        assert "interrupted: the live store is untouched" in log.read_text()
        assert "Traceback" not in log.read_text()
        assert await _shadow_keys(redis) == 0, "the interrupted replay removed its shadow"
        assert not await redis.exists("fleet:replay:lock:market-ingest"), "lock released"
        assert await snapshot(redis) == healthy
