"""The Redis store against a real server: exact candles, exactly-once, late ticks, wipes."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from redis.asyncio import Redis

from fleet_events import CandleInterval
from market_ingest.bars import epoch_us
from market_ingest.logic import candle_event_id
from market_ingest.store import Keys

from .conftest import (
    ALL_INTERVALS,
    SYMBOLS,
    T0,
    by_symbol,
    expected_candles,
    expected_ticker,
    generate_ticks,
    make_store,
    parse_candles,
    seq_ticks,
    snapshot,
    tick,
    ticker_of,
)


async def apply_in_random_batches(store, ticks, seed: int) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    i = 0
    while i < len(ticks):
        n = rng.randint(1, 700)
        await store.apply(by_symbol(ticks[i : i + n]))
        i += n


async def assert_matches_model(redis: Redis, keys: Keys, ticks, kept: int) -> None:  # type: ignore[no-untyped-def]
    for symbol in SYMBOLS:
        mine = [t.tick for t in ticks if t.tick.symbol == symbol]
        for interval in ALL_INTERVALS:
            stored = parse_candles(await redis.zrange(keys.candles(interval, symbol), 0, -1))
            assert stored == expected_candles(mine, interval, kept), (symbol, interval)
        assert await ticker_of(redis, keys, symbol) == expected_ticker(mine)
        seq = await redis.hget(keys.seq(symbol), "seq")
        assert int(seq) == max(t.seq for t in ticks if t.tick.symbol == symbol)


async def test_candles_of_a_long_sequence_equal_an_independent_computation(
    redis_client: Redis, keys: Keys
) -> None:
    # ~6000 ticks over ~5 h: hundreds of 1m candles (trimmed to 120), several 1h ones.
    ticks = seq_ticks(generate_ticks(seed=11, n=6000))
    span = ticks[-1].tick.timestamp - ticks[0].tick.timestamp
    assert span > timedelta(hours=4)
    store = make_store(redis_client, keys, kept=120)
    await apply_in_random_batches(store, ticks, seed=1)
    await assert_matches_model(redis_client, keys, ticks, kept=120)
    assert await redis_client.zcard(keys.candles(CandleInterval.M1, "BTCUSDT")) == 120
    assert 0 < await redis_client.ttl(keys.candles(CandleInterval.M1, "BTCUSDT")) <= 120 * 60


async def test_the_24h_window_rolls_over_a_day_and_a_half(redis_client: Redis, keys: Keys) -> None:
    ticks = seq_ticks(generate_ticks(seed=5, n=1200, max_step_ms=600_000))
    assert ticks[-1].tick.timestamp - ticks[0].tick.timestamp > timedelta(hours=36)
    store = make_store(redis_client, keys)
    await apply_in_random_batches(store, ticks, seed=2)
    await assert_matches_model(redis_client, keys, ticks, kept=500)
    window = await redis_client.zrange(keys.window("BTCUSDT"), 0, -1)
    first, last = parse_candles(window[:1])[0].t, parse_candles(window[-1:])[0].t
    assert last - first < 24 * 3600 * 1000


async def test_same_batch_twice_and_overlapping_batches_count_once(
    redis_client: Redis, keys: Keys
) -> None:
    ticks = seq_ticks(generate_ticks(seed=3, n=1500))
    store = make_store(redis_client, keys)
    await store.apply(by_symbol(ticks[:500]))
    writes = await store.apply(by_symbol(ticks[:500]))
    assert sum(w.applied for w in writes) == 0
    assert sum(w.duplicates for w in writes) == 500
    for start in range(300, 1500, 400):  # each batch overlaps the previous by 200
        await store.apply(by_symbol(ticks[start - 200 : start + 200]))
    await store.apply(by_symbol(ticks[1300:]))
    # A second worker instance, with nothing in memory, redelivered an old range.
    await make_store(redis_client, keys).apply(by_symbol(ticks[100:900]))
    await assert_matches_model(redis_client, keys, ticks, kept=500)
    volume = await redis_client.hget(keys.ticker("ETHUSDT"), "volume_24h")
    eth = [t.tick.quantity for t in ticks if t.tick.symbol == "ETHUSDT"]
    assert Decimal(volume.decode()) == sum(eth, Decimal(0))


async def test_late_ticks_update_kept_candles_and_are_counted_otherwise(
    redis_client: Redis, keys: Keys
) -> None:
    s = "BTCUSDT"
    at = [T0 + timedelta(minutes=m, seconds=10) for m in range(5)]
    events = [
        tick(s, at[0], "100"),
        tick(s, at[1], "101"),
        tick(s, at[3], "103"),
        tick(s, at[4], "104"),
        tick(s, at[3] - timedelta(seconds=5), "99", "2"),  # late, earlier in minute 3: new open
        tick(s, at[2], "102", "3"),  # late, fills the gap minute 2 (still among the 3 latest)
        tick(s, at[1], "150", "5"),  # late, minute 1 is no longer kept for 1m
        tick(s, T0 - timedelta(hours=30), "90", "7"),  # older than the 24 h window too
    ]
    store = make_store(redis_client, keys, kept=3)
    writes = await store.apply({s: seq_ticks(events)})
    # The 30 h old tick still opens an older candle where fewer than 3 are kept.
    assert dict(writes[0].late_skipped) == {"1m": 2, "24h": 1}
    m1 = parse_candles(await redis_client.zrange(keys.candles(CandleInterval.M1, s), 0, -1))
    m0 = epoch_us(T0) // 1000
    assert [(c.t - m0) // 60_000 for c in m1] == [2, 3, 4]
    assert (m1[1].o, m1[1].h, m1[1].low, m1[1].c, m1[1].v, m1[1].n) == (
        Decimal("99"),
        Decimal("103"),
        Decimal("99"),
        Decimal("103"),
        Decimal("3"),
        2,
    )
    m5 = parse_candles(await redis_client.zrange(keys.candles(CandleInterval.M5, s), 0, -1))
    assert [(c.t - m0, c.o, c.h, c.low, c.c, c.v, c.n) for c in m5] == [
        (
            -30 * 3600_000,
            Decimal("90"),
            Decimal("90"),
            Decimal("90"),
            Decimal("90"),
            Decimal("7"),
            1,
        ),
        (0, Decimal("100"), Decimal("150"), Decimal("99"), Decimal("104"), Decimal("14"), 7),
    ]
    ticker = await redis_client.hgetall(keys.ticker(s))
    assert ticker[b"price"] == b"104"
    assert ticker[b"volume_24h"] == b"14"
    assert ticker[b"trade_count_24h"] == b"7"


async def test_a_wiped_redis_is_never_refilled_from_memory(redis_client: Redis, keys: Keys) -> None:
    ticks = seq_ticks(generate_ticks(seed=8, n=800))
    store = make_store(redis_client, keys)
    await store.apply(by_symbol(ticks[:400]))
    found = [k async for k in redis_client.scan_iter(match=f"{keys.prefix}*")]
    await redis_client.delete(*found)
    await store.apply(by_symbol(ticks[400:]))
    fresh = Keys(prefix=keys.prefix + "fresh:")
    await make_store(redis_client, fresh).apply(by_symbol(ticks[400:]))
    live = await snapshot(redis_client, f"{keys.prefix}market:*")
    clean = await snapshot(redis_client, f"{fresh.prefix}market:*")
    strip = len(fresh.prefix)
    assert live == {keys.prefix.encode() + k[strip:]: v for k, v in clean.items()}
    assert len(live) == 3 * (4 + len(ALL_INTERVALS))  # seq, ticker, window, outbox


async def test_closed_candles_are_queued_once_with_deterministic_ids(
    redis_client: Redis, keys: Keys
) -> None:
    s = "SOLUSDT"
    events = [tick(s, T0 + timedelta(seconds=sec), "20") for sec in (0, 50, 70, 130, 3700)]
    store = make_store(redis_client, keys)
    await store.apply({s: seq_ticks(events[:3])})
    await store.apply({s: seq_ticks(events)})
    await store.apply({s: seq_ticks(events)})
    queued = await store.outbox()
    m0 = epoch_us(T0) // 1000
    want = {
        (CandleInterval.M1, 0),
        (CandleInterval.M1, 1),
        (CandleInterval.M1, 2),
        (CandleInterval.M5, 0),
        (CandleInterval.M15, 0),
        (CandleInterval.M30, 0),
        (CandleInterval.H1, 0),
    }
    assert sorted(e.event_id for e in queued) == sorted(
        str(candle_event_id(s, i, m0 + n * int(i.duration.total_seconds()) * 1000)) for i, n in want
    )
    assert {e.subject for e in queued} == {f"market.candle.{i.value}.{s}" for i, _ in want}
    await store.outbox_done(queued)
    assert await store.outbox() == []
