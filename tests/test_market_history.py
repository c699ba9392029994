"""`fleet candles` over the hot and warm tiers (``--no-cold``), each written by its own
worker's code; test_market_history_tiers.py adds the cold tier.

Redis gets its bars from market-ingest's store applying ticks; MongoDB's price_history gets
the candles market-ingest closed, as analytics-projector stores them, but only the older
part (the warm tier lags). The expected series is computed here from the ticks alone.
"""

from __future__ import annotations

import csv
import io
import os
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from analytics_projector.retention import Retention
from analytics_projector.store.candles import candle_doc, candle_id
from fleet_events import CandleInterval, MarketTick, new_event
from fleet_testing import Fleet
from fleet_testing.replaying import run_fleet
from market_ingest.logic import Rules, SeqTick
from market_ingest.store import RedisMarketStore
from market_ingest.ticks import Trade

SYMBOL = "BTCUSDT"
START = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
MINUTES = 40
KEPT = 12  # Redis keeps the 12 latest 1m bars: minutes 28..39, the last one forming
WARM_UNTIL = 32  # price_history holds the candles of minutes 0..31 (closed, published)


@dataclass(frozen=True)
class Row:
    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    count: int


def ticks() -> list[tuple[datetime, Decimal, Decimal]]:
    rng = random.Random(5)
    out = []
    price = Decimal(60000)
    for minute in range(MINUTES):
        if minute == 17:
            continue  # a minute without trades: no candle, in any tier
        for k in range(rng.randint(1, 4)):
            price += Decimal(rng.randint(-500, 500)) / 100
            at = START + timedelta(minutes=minute, seconds=10 * k + rng.randint(0, 9))
            out.append((at, price, Decimal(rng.randint(1, 900)) / 1000))
    return out


def expected(trades: list[tuple[datetime, Decimal, Decimal]]) -> list[Row]:
    by_minute: dict[datetime, list[tuple[datetime, Decimal, Decimal]]] = {}
    for at, price, qty in trades:
        by_minute.setdefault(at.replace(second=0, microsecond=0), []).append((at, price, qty))
    return [
        Row(
            minute,
            group[0][1],
            max(p for _, p, _ in group),
            min(p for _, p, _ in group),
            group[-1][1],
            sum((q for _, _, q in group), Decimal(0)),
            len(group),
        )
        for minute, group in sorted(by_minute.items())
    ]


async def test_candles_stitch_warm_and_hot_without_gap_or_repeat(isolated_fleet: Fleet) -> None:
    isolated_fleet.start("redis", "mongo")
    trades = ticks()
    redis = Redis.from_url(isolated_fleet.redis.url)
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        isolated_fleet.mongo.url, tz_aware=True
    )
    try:
        store = RedisMarketStore(
            redis, Rules((CandleInterval.M1,), KEPT), outbox=False, prices=False
        )
        closed = []
        for seq, (at, price, qty) in enumerate(trades, start=1):
            event = new_event(
                MarketTick(
                    symbol=SYMBOL, price=price, quantity=qty, timestamp=at, is_buyer_maker=False
                ),
                source="test",
            )
            for write in await store.apply(
                {SYMBOL: [SeqTick(seq, Trade.of(event.id, event.data))]}
            ):
                closed += [(c.data, seq) for c in write.closed]
        warm = [
            {"_id": candle_id(c), **candle_doc(c, seq, Retention())}
            for c, seq in closed
            if c.open_time < START + timedelta(minutes=WARM_UNTIL)
        ]
        await mongo["tradefleet_analytics"]["price_history"].insert_many(warm)
    finally:
        await redis.aclose()
        await mongo.close()

    env = {**os.environ, **isolated_fleet.env()}
    result = await run_fleet(
        ["candles", SYMBOL, "1m", "--from", START.isoformat(), "--to",
         (START + timedelta(hours=1)).isoformat(), "--no-cold"],
        env,
    )  # fmt: skip
    assert result.code == 0, result.err
    rows = list(csv.DictReader(io.StringIO(result.out)))
    got = [
        Row(
            datetime.fromisoformat(r["open_time"]),
            Decimal(r["open"]),
            Decimal(r["high"]),
            Decimal(r["low"]),
            Decimal(r["close"]),
            Decimal(r["volume"]),
            int(r["trade_count"]),
        )
        for r in rows
    ]
    assert got == expected(trades)  # every minute once, minute 17 absent in every tier
    assert [r["closed"] for r in rows] == ["True"] * (len(rows) - 1) + ["False"]
    # Warm serves what Redis no longer holds (0..27, without 17); Redis from minute 28 on,
    # including 28..31 that both hold.
    lines = result.err.strip().splitlines()
    assert len(lines) == 2, result.err
    assert lines[0].startswith("warm (MongoDB): 27 candles")
    assert lines[1].startswith(f"hot (Redis): {KEPT} candles")

    empty = await run_fleet(
        ["candles", SYMBOL, "1h", "--from", "2020-01-01", "--to", "2020-02-01", "--no-cold"], env
    )
    assert empty.code == 0, empty.err
    assert empty.out.strip() == "open_time,open,high,low,close,volume,trade_count,closed"
    assert "no 1h candles of BTCUSDT in that range in any tier" in empty.err


async def test_bad_requests_are_one_line_errors() -> None:
    env = dict(os.environ)
    for args, message in (
        (["2m", "--from", "2026-01-01", "--to", "2026-01-02"], "unknown interval '2m'"),
        (["1m", "--from", "2026-01-02", "--to", "2026-01-01"], "is not before --to"),
        (["1m", "--from", "yesterday", "--to", "2026-01-01"], "--from 'yesterday' is not a time"),
    ):
        result = await run_fleet(["candles", SYMBOL, *args], env)
        assert result.code == 2, result.err
        assert "Traceback" not in result.err
        assert result.err.splitlines()[0].startswith("error: ")
        assert message in result.err
