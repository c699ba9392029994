"""The worker end to end on private NATS and Redis: exact state, dead letters, candles once,
a Redis restart mid-stream, and a rebuild identical to the live state."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import nats
from nats.js.client import JetStreamContext
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from fleet_events import Event, MarketTick, encode
from fleet_runtime.publisher import EventPublisher
from fleet_testing import Fleet
from market_ingest.app import run
from market_ingest.logic import SeqTick
from market_ingest.metrics import MarketIngestMetrics
from market_ingest.rebuild import rebuild
from market_ingest.settings import MarketIngestSettings
from market_ingest.store import Keys
from market_ingest.ticks import Trade

from .conftest import (
    ALL_INTERVALS,
    SYMBOLS,
    expected_candles,
    expected_ticker,
    generate_ticks,
    parse_candles,
    period_start,
    snapshot,
    start_servers,
    tick,
    ticker_of,
    wait_until,
)

KEPT = 60
LIVE = Keys()


def settings_for(fleet: Fleet) -> MarketIngestSettings:
    return MarketIngestSettings(
        nats_url=fleet.nats.url,
        nats_creds=fleet.nats.creds_dir,
        redis_url=fleet.redis.url,
        candles_kept=KEPT,
        batch_max_wait_ms=10,
    )


@contextlib.asynccontextmanager
async def worker(settings: MarketIngestSettings) -> AsyncIterator[MarketIngestMetrics]:
    metrics = MarketIngestMetrics()
    stop = asyncio.Event()
    ready = asyncio.Event()
    task = asyncio.create_task(
        run(settings, None, metrics=metrics, stop=stop, on_ready=lambda _port: ready.set())
    )
    await asyncio.wait_for(ready.wait(), 20)
    try:
        yield metrics
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def publish(js: JetStreamContext, events: Sequence[Event[MarketTick]]) -> list[SeqTick]:
    acks = []
    publisher = EventPublisher(js)
    for i in range(0, len(events), 1000):
        acks += await publisher.publish_many(events[i : i + 1000])
    return [SeqTick(a.seq, Trade.of(e.id, e.data)) for a, e in zip(acks, events, strict=True)]


async def wait_applied(redis: Redis, ticks: Sequence[SeqTick], within_s: float = 60) -> None:
    last = {t.tick.symbol: t.seq for t in ticks}

    async def done() -> bool:
        for symbol, seq in last.items():
            try:
                got = await redis.hget(LIVE.seq(symbol), "seq")
            except RedisConnectionError:  # the server is restarting
                return False
            if got is None or int(got) < seq:
                return False
        return True

    await wait_until(done, within_s, f"sequences {last}")


async def assert_matches_model(redis: Redis, ticks: Sequence[SeqTick]) -> None:
    for symbol in SYMBOLS:
        mine = [t.tick for t in ticks if t.tick.symbol == symbol]
        for interval in ALL_INTERVALS:
            stored = parse_candles(await redis.zrange(LIVE.candles(interval, symbol), 0, -1))
            assert stored == expected_candles(mine, interval, KEPT), (symbol, interval)
        assert await ticker_of(redis, LIVE, symbol) == expected_ticker(mine)


def closed_candles(ticks: Sequence[SeqTick]) -> int:
    """Candles closed by in-order ticks: every period of a series but its last."""
    total = 0
    for symbol in SYMBOLS:
        for interval in ALL_INTERVALS:
            periods = {
                period_start(t.tick.timestamp, interval) for t in ticks if t.tick.symbol == symbol
            }
            total += len(periods) - 1
    return total


async def candle_messages(js: JetStreamContext) -> int:
    info = await js.stream_info("MARKET", subjects_filter="market.candle.>")
    return sum((info.state.subjects or {}).values())


async def dead_letters(js: JetStreamContext) -> list[dict[str, str]]:
    info = await js.stream_info("DLQ")
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg("DLQ", seq)
        out.append(dict(msg.headers or {}))
    return out


async def test_live_worker_state_dead_letters_candles_and_identical_rebuild(
    isolated_fleet: Fleet,
) -> None:
    await start_servers(isolated_fleet)
    settings = settings_for(isolated_fleet)
    nc = await nats.connect(isolated_fleet.nats.url)
    js = nc.jetstream()
    redis = Redis.from_url(isolated_fleet.redis.url)
    events = generate_ticks(seed=21, n=3000)
    try:
        async with worker(settings):
            ticks = await publish(js, events[:1500])
            # A price of 0 (refused when decoded) and a symbol unlike its subject.
            bad = encode(tick("BTCUSDT", events[0].data.timestamp, "1")).replace(
                b'"price":"1"', b'"price":"0"'
            )
            await js.publish("market.tick.BTCUSDT", bad)
            await js.publish(
                "market.tick.ETHUSDT", encode(tick("BTCUSDT", events[0].data.timestamp, "5"))
            )
            ticks += await publish(js, events[1500:])
            await wait_applied(redis, ticks)
            await assert_matches_model(redis, ticks)

            letters = await dead_letters(js)
            assert [(h["Fleet-Dlq-Subject"], h["Fleet-Dlq-Error-Class"]) for h in letters] == [
                ("market.tick.BTCUSDT", "InvalidEvent"),
                ("market.tick.ETHUSDT", "EventRejected"),
            ]
            assert "data.price" in letters[0]["Fleet-Dlq-Error"]
            assert "greater than 0" in letters[0]["Fleet-Dlq-Error"]
            assert letters[1]["Fleet-Dlq-Error"] == (
                "symbol 'BTCUSDT' does not match the subject 'market.tick.ETHUSDT' "
                "(market.tick.<symbol>)"
            )

            expected_closed = closed_candles(ticks)
            await wait_until(
                lambda: _equals(candle_messages(js), expected_closed), 20, "candle events"
            )
            # A candle leaves the outbox once its publish is acknowledged, just after the
            # stream holds it: the live state is settled when every outbox is empty.
            await wait_until(lambda: _outboxes_empty(redis), 20, "empty outboxes")

            before = await snapshot(redis)
            lines: list[str] = []
            result = await rebuild(settings, since=timedelta(hours=24), progress=lines.append)
            assert result.switched
            assert (result.ticks, result.invalid, result.symbols) == (3000, 2, 3)
            assert await snapshot(redis) == before
            assert lines[-1].startswith("done: 3,000 ticks, 3 symbols, 33 keys switched")
            assert not [k async for k in redis.scan_iter(match="rebuild:*")]
            assert await candle_messages(js) == expected_closed

            # The live worker goes on over the switched keys (new lineage): still exact.
            more = generate_ticks(seed=22, n=300, start=events[-1].data.timestamp)
            ticks += await publish(js, more)
            await wait_applied(redis, ticks)
            await assert_matches_model(redis, ticks)
    finally:
        await nc.close()
        await redis.aclose()


async def _equals(value: Any, expected: int) -> bool:
    return bool(await value == expected)


async def _outboxes_empty(redis: Redis) -> bool:
    return not any([await redis.hlen(LIVE.outbox(s)) for s in SYMBOLS])


async def test_redis_restart_loses_state_and_the_rebuild_restores_it(
    isolated_fleet: Fleet,
) -> None:
    await start_servers(isolated_fleet)
    settings = settings_for(isolated_fleet)
    nc = await nats.connect(isolated_fleet.nats.url)
    js = nc.jetstream()
    redis = Redis.from_url(isolated_fleet.redis.url)
    events = generate_ticks(seed=31, n=2000)
    try:
        async with worker(settings):
            ticks = await publish(js, events[:1000])
            await wait_applied(redis, ticks)
            await isolated_fleet.redis.arestart(kill=True)
            later = await publish(js, events[1000:])
            ticks += later
            await wait_applied(redis, ticks)
            # Only what came after the restart is in Redis now.
            eth = [t.tick for t in later if t.tick.symbol == "ETHUSDT"]
            stored = await redis.hget(LIVE.ticker("ETHUSDT"), "volume_24h")
            assert Decimal(stored.decode()) == sum((t.quantity for t in eth), Decimal(0))

            result = await rebuild(settings, since=timedelta(hours=1), progress=lambda _l: None)
            assert (result.switched, result.ticks) == (True, 2000)
            await assert_matches_model(redis, ticks)
    finally:
        await nc.close()
        await redis.aclose()
