"""Fixtures and an independent model of the expected Redis state, for market-ingest tests."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg
from redis.asyncio import Redis

from fleet_events import CandleInterval, Event, MarketTick, encode, new_event, subject_for
from fleet_runtime.delivery import Batch, Delivery
from fleet_runtime.topology import apply, load_topology
from fleet_testing import Fleet
from market_ingest.logic import Rules, SeqTick
from market_ingest.store import Keys, RedisMarketStore
from market_ingest.ticks import Trade, decode_trade

REPO = Path(__file__).resolve().parents[3]
STREAMS = REPO / "streams.yaml"
T0 = datetime(2024, 3, 1, tzinfo=UTC)
ALL_INTERVALS = tuple(CandleInterval)
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
POLL_S = 0.05
# Fields that hold wall-clock or lineage values, not projected data.
VOLATILE = {b"updated_at", b"gen", b"stale"}


def tick(
    symbol: str, at: datetime, price: str, qty: str = "1", *, trade_id: str | None = None
) -> Event[MarketTick]:
    """A market.tick event."""
    return new_event(
        MarketTick(
            symbol=symbol,
            price=Decimal(price),
            quantity=Decimal(qty),
            timestamp=at,
            is_buyer_maker=False,
            trade_id=trade_id,
        ),
        source="test",
    )


def generate_ticks(
    seed: int,
    n: int,
    *,
    symbols: Sequence[str] = SYMBOLS,
    start: datetime = T0,
    max_step_ms: int = 12_000,
) -> list[Event[MarketTick]]:
    """``n`` ticks in time order over ``symbols``: random walks, some equal timestamps."""
    rng = random.Random(seed)
    prices = {s: Decimal(rng.randint(50, 70_000)) for s in symbols}
    at = start
    out = []
    for i in range(n):
        at += timedelta(milliseconds=rng.choice((0, rng.randint(1, max_step_ms))))
        symbol = rng.choice(symbols)
        step = Decimal(rng.randint(-200, 200)) / 100
        prices[symbol] = max(Decimal("0.01"), prices[symbol] + step)
        qty = Decimal(rng.randint(1, 500_000)) / 10_000
        out.append(tick(symbol, at, str(prices[symbol]), str(qty), trade_id=str(i)))
    return out


def seq_ticks(events: Sequence[Event[MarketTick]], first_seq: int = 1) -> list[SeqTick]:
    """Stream positions for events, in order."""
    return [SeqTick(first_seq + i, Trade.of(e.id, e.data)) for i, e in enumerate(events)]


def by_symbol(ticks: Sequence[SeqTick]) -> dict[str, list[SeqTick]]:
    """Group ticks per symbol, keeping order."""
    out: dict[str, list[SeqTick]] = {}
    for t in ticks:
        out.setdefault(t.tick.symbol, []).append(t)
    return out


# -- an independent computation of the expected state --------------------------------------


def _ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


@dataclass
class Ohlcv:
    """An expected candle."""

    t: int
    o: Decimal
    h: Decimal
    low: Decimal
    c: Decimal
    v: Decimal
    n: int


def period_start(at: datetime, interval: CandleInterval) -> int:
    """Open time (ms) of the candle holding ``at``: weeks by the calendar (Monday 00:00 UTC),
    every other interval by flooring to its width."""
    if interval is CandleInterval.W1:
        day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return _ms(day - timedelta(days=day.weekday()))
    w = interval.duration // timedelta(milliseconds=1)
    return _ms(at) // w * w


def expected_candles(ticks: Sequence[Trade], interval: CandleInterval, kept: int) -> list[Ohlcv]:
    """Candles of in-order ticks of one symbol: group by period, keep the ``kept`` latest."""
    groups: dict[int, list[Trade]] = {}
    for t in ticks:
        groups.setdefault(period_start(t.timestamp, interval), []).append(t)
    out = []
    for start, group in sorted(groups.items()):
        prices = [t.price for t in group]
        out.append(
            Ohlcv(
                t=start,
                o=prices[0],
                h=max(prices),
                low=min(prices),
                c=prices[-1],
                v=sum((t.quantity for t in group), Decimal(0)),
                n=len(group),
            )
        )
    return out[-kept:]


def expected_ticker(ticks: Sequence[Trade]) -> dict[str, Decimal | int]:
    """24 h figures of in-order ticks of one symbol: the last 1440 minutes up to the last."""
    last = ticks[-1]
    last_minute = _ms(last.timestamp) // 60_000
    window = [t for t in ticks if _ms(t.timestamp) // 60_000 > last_minute - 1440]
    open_ = window[0].price
    return {
        "price": last.price,
        "quantity": last.quantity,
        "open_24h": open_,
        "high_24h": max(t.price for t in window),
        "low_24h": min(t.price for t in window),
        "volume_24h": sum((t.quantity for t in window), Decimal(0)),
        "trade_count_24h": len(window),
        "change_24h": last.price - open_,
    }


def parse_candles(members: Sequence[bytes]) -> list[Ohlcv]:
    """Candles as stored."""
    out = []
    for m in members:
        o = json.loads(m)
        out.append(
            Ohlcv(
                t=o["t"],
                o=Decimal(o["o"]),
                h=Decimal(o["h"]),
                low=Decimal(o["l"]),
                c=Decimal(o["c"]),
                v=Decimal(o["v"]),
                n=o["n"],
            )
        )
    return out


async def ticker_of(redis: Redis, keys: Keys, symbol: str) -> dict[str, Decimal | int]:
    """The stored ticker, in the shape of ``expected_ticker``."""
    raw = await redis.hgetall(keys.ticker(symbol))
    got = {k.decode(): v.decode() for k, v in raw.items()}
    return {
        k: (int(got[k]) if k == "trade_count_24h" else Decimal(got[k]))
        for k in (
            "price",
            "quantity",
            "open_24h",
            "high_24h",
            "low_24h",
            "volume_24h",
            "trade_count_24h",
            "change_24h",
        )
    }


async def snapshot(redis: Redis, pattern: str = "market:*") -> dict[bytes, Any]:
    """Every matching key's content (hash fields sorted, sorted sets in order), minus
    wall-clock and lineage fields."""
    out: dict[bytes, Any] = {}
    async for key in redis.scan_iter(match=pattern, count=1000):
        kind = (await redis.type(key)).decode()
        if kind == "hash":
            h = await redis.hgetall(key)
            out[key] = sorted((k, v) for k, v in h.items() if k not in VOLATILE)
        elif kind == "zset":
            out[key] = await redis.zrange(key, 0, -1, withscores=True)
        else:
            out[key] = (kind, await redis.dump(key))
    return out


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture
async def redis_client(redis_server: Any) -> AsyncIterator[Redis]:
    """A client of the shared Redis."""
    client = Redis.from_url(redis_server.url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def keys(redis_client: Redis) -> AsyncIterator[Keys]:
    """A key prefix of this test alone on the shared Redis; its keys are deleted after."""
    prefix = f"test-{uuid.uuid4().hex[:10]}:"
    try:
        yield Keys(prefix=prefix)
    finally:
        found = [k async for k in redis_client.scan_iter(match=f"{prefix}*", count=1000)]
        if found:
            await redis_client.delete(*found)


def make_store(redis: Redis, keys: Keys, *, kept: int = 500, **kw: Any) -> RedisMarketStore:
    """A store with every interval."""
    return RedisMarketStore(redis, Rules(ALL_INTERVALS, kept), keys=keys, **kw)


async def wait_until(probe: Callable[[], Awaitable[object]], within_s: float, what: str) -> None:
    """Return once ``await probe()`` is truthy; fail naming ``what`` after ``within_s``."""
    deadline = time.monotonic() + within_s
    last: object = None
    while True:
        last = await probe()
        if last:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s}s waiting for {what} (last {last!r})")
        await asyncio.sleep(POLL_S)


async def start_servers(fleet: Fleet) -> None:
    """Start the private NATS and Redis, and apply the repository's streams.yaml."""
    await asyncio.to_thread(fleet.start, "nats", "redis")
    nc = await nats.connect(fleet.nats.url)
    try:
        await apply(nc.jetstream(), load_topology(STREAMS))
    finally:
        await nc.close()


# -- batches as the runtime builds them ---------------------------------------------------


def delivery(event: Event[Any], seq: int, subject: str | None = None) -> Delivery[Any]:
    """A Delivery on a detached message (no client needed)."""
    subject = subject or subject_for(event)
    msg = Msg(
        _client=None,  # type: ignore[arg-type]
        subject=subject,
        reply=f"$JS.ACK.MARKET.market-ingest.1.{seq}.{seq}.0.0",
        data=encode(event),
    )
    # What the subscription's decoder makes of the message.
    trade = decode_trade(msg.data)
    return Delivery(
        event=trade, subject=subject, stream="MARKET", stream_seq=seq, num_delivered=1, msg=msg
    )


class Sequencer:
    """Hands out stream sequences and builds batches, as one stream would."""

    def __init__(self) -> None:
        self._seq = itertools.count(1)

    def batch(self, events: Sequence[Event[Any]]) -> Batch[Any]:
        """The next events of the stream as one batch."""
        return Batch([delivery(e, next(self._seq)) for e in events], "market-ingest")
