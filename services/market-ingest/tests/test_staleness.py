"""Stale tickers on a real Redis: flagged at write, by the sweep once the feed is silent,
cleared by the next trade; and by the running worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import nats
from redis.asyncio import Redis

from fleet_testing import Fleet
from market_ingest.logic import Rules
from market_ingest.staleness import StaleTickers
from market_ingest.store import Keys, RedisMarketStore

from .conftest import ALL_INTERVALS, by_symbol, seq_ticks, start_servers, tick, wait_until
from .test_worker import publish, settings_for, worker


def store_with(redis: Redis, keys: Keys, stale_after: timedelta) -> RedisMarketStore:
    rules = Rules(ALL_INTERVALS, 50, ticker_stale_after_ms=stale_after // timedelta(milliseconds=1))
    return RedisMarketStore(redis, rules, keys=keys, outbox=False, prices=False)


async def stale_flag(redis: Redis, keys: Keys, symbol: str) -> bytes | None:
    flag: bytes | None = await redis.hget(keys.ticker(symbol), "stale")
    return flag


async def test_a_write_flags_an_old_trade_and_the_sweep_flags_a_silent_feed(
    redis_client: Redis, keys: Keys
) -> None:
    minute = timedelta(minutes=1)
    store = store_with(redis_client, keys, minute)
    now = datetime.now(UTC)
    events = [tick("OLDUSDT", now - 2 * minute, "10"), tick("NEWUSDT", now - minute / 2, "20")]
    await store.apply(by_symbol(seq_ticks(events)))
    assert await stale_flag(redis_client, keys, "OLDUSDT") == b"1"
    assert await stale_flag(redis_client, keys, "NEWUSDT") == b"0"

    sweeper = StaleTickers(redis_client, minute, keys)
    assert await sweeper.sweep(now) == [], "nothing went silent yet"
    # Forty seconds later NEWUSDT's last trade is 70 s old: flagged once, by one sweep.
    later = now + timedelta(seconds=40)
    assert await sweeper.sweep(later) == ["NEWUSDT"]
    assert await stale_flag(redis_client, keys, "NEWUSDT") == b"1"
    assert await sweeper.sweep(later) == []

    # The next trade clears it.
    fresh = tick("NEWUSDT", datetime.now(UTC), "21")
    await store.apply(by_symbol(seq_ticks([fresh], first_seq=3)))
    assert await stale_flag(redis_client, keys, "NEWUSDT") == b"0"
    assert (await redis_client.hget(keys.ticker("NEWUSDT"), "price")) == b"21"


async def test_the_sweep_leaves_a_ticker_a_trade_refreshed_after_it_was_read(
    redis_client: Redis, keys: Keys
) -> None:
    minute = timedelta(minutes=1)
    store = store_with(redis_client, keys, minute)
    now = datetime.now(UTC)
    await store.apply(by_symbol(seq_ticks([tick("ETHUSDT", now - minute / 2, "5")])))
    judged = await redis_client.hget(keys.ticker("ETHUSDT"), "trade_time")
    # A trade lands between the sweep's read and its mark: the mark compares and stands down.
    await store.apply(by_symbol(seq_ticks([tick("ETHUSDT", now, "6")], first_seq=2)))
    sweeper = StaleTickers(redis_client, minute, keys)
    marked = await sweeper._mark(keys=[keys.ticker("ETHUSDT")], args=[judged])
    assert marked == 0
    assert await stale_flag(redis_client, keys, "ETHUSDT") == b"0"


async def test_the_worker_flags_a_silent_feed_by_itself(isolated_fleet: Fleet) -> None:
    await start_servers(isolated_fleet)
    settings = settings_for(isolated_fleet).model_copy(update={"ticker_stale_after_s": 2})
    nc = await nats.connect(isolated_fleet.nats.url)
    redis = Redis.from_url(isolated_fleet.redis.url)
    live = Keys()
    try:
        async with worker(settings):
            await publish(nc.jetstream(), [tick("SOLUSDT", datetime.now(UTC), "150")])

            async def flag() -> bytes | None:
                return await stale_flag(redis, live, "SOLUSDT")

            await wait_until(lambda: _equals(flag, b"0"), 10, "the ticker written, fresh")
            silent_since = datetime.now(UTC)
            await wait_until(lambda: _equals(flag, b"1"), 10, "the ticker flagged stale")
            assert datetime.now(UTC) - silent_since < timedelta(seconds=6)
    finally:
        await nc.close()
        await redis.aclose()


async def _equals(probe, value: bytes) -> bool:  # type: ignore[no-untyped-def]
    return bool(await probe() == value)
