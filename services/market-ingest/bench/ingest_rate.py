"""Measure market-ingest: sustained ticks/s over 200k ticks, and publish->Redis latency.

Run: `uv run python services/market-ingest/bench/ingest_rate.py [--ticks 200000]`.
Starts private NATS and Redis, applies streams.yaml, runs the worker in this process.
1. Throughput: publishes N ticks first (backlog), then times the worker draining it.
   The raw rate of the same consume+ack path is measured alongside for comparison.
2. Latency: publishes at a fixed rate; each tick's publish time vs. the moment its price
   message arrives on `prices:{symbol}` (sent inside the atomic Redis write).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import nats
from nats.js.api import ConsumerConfig, DeliverPolicy
from redis.asyncio import Redis

from fleet_events import MarketTick, encode, new_event
from fleet_runtime.topology import apply, load_topology
from fleet_testing import Fleet
from market_ingest.app import run
from market_ingest.settings import MarketIngestSettings

REPO = Path(__file__).resolve().parents[3]
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT")


POLL_S = 0.05


def make_ticks(n: int, seed: int = 1) -> list[bytes]:
    """``n`` encoded ticks in time order: random walks over SYMBOLS."""
    rng = random.Random(seed)  # noqa: S311 - reproducible market noise, not secrets
    prices = dict.fromkeys(SYMBOLS, Decimal(1000))
    at = datetime.now(UTC) - timedelta(hours=2)
    out = []
    for _ in range(n):
        at += timedelta(milliseconds=rng.randint(0, 40))
        symbol = rng.choice(SYMBOLS)
        prices[symbol] = max(Decimal("0.01"), prices[symbol] + Decimal(rng.randint(-99, 99)) / 100)
        tick = MarketTick(
            symbol=symbol,
            price=prices[symbol],
            quantity=Decimal(rng.randint(1, 99_999)) / 1000,
            timestamp=at,
            is_buyer_maker=rng.random() < 0.5,
        )
        out.append(encode(new_event(tick, source="bench")))
    return out


async def until(probe) -> None:  # type: ignore[no-untyped-def]
    """Return once ``await probe()`` is truthy."""
    while True:
        if await probe():
            return
        await asyncio.sleep(POLL_S)


async def publish_all(js, payloads: list[bytes]) -> None:  # type: ignore[no-untyped-def]
    for i in range(0, len(payloads), 2000):
        futs = []
        for data in payloads[i : i + 2000]:
            symbol = json.loads(data)["data"]["symbol"]
            futs.append(await js.publish_async(f"market.tick.{symbol}", data))
        await asyncio.gather(*futs)


async def seq_of(redis: Redis, symbol: str) -> int:
    got = await redis.hget(f"market:seq:{symbol}", "seq")
    return int(got) if got else 0


async def main(n: int, rate: int, seconds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        fleet = Fleet(Path(tmp), use_external=False)
        await asyncio.to_thread(fleet.start, "nats", "redis")
        try:
            nc = await nats.connect(fleet.nats.url, pending_size=256 * 1024 * 1024)
            js = nc.jetstream(publish_async_max_pending=4000)
            await apply(js, load_topology(REPO / "streams.yaml"))
            redis = Redis.from_url(fleet.redis.url)
            payloads = make_ticks(n)
            started = time.perf_counter()
            await publish_all(js, payloads)
            print(f"published {n:,} ticks in {time.perf_counter() - started:.1f}s")
            last = (await js.stream_info("MARKET")).state.last_seq
            settings = MarketIngestSettings(nats_url=fleet.nats.url, redis_url=fleet.redis.url)
            stop = asyncio.Event()
            # The backlog: the durable delivers new messages only, so recreate it at seq 1.
            info = await js.consumer_info("MARKET", "market-ingest")
            await js.delete_consumer("MARKET", "market-ingest")
            cfg = info.config
            cfg.deliver_policy = DeliverPolicy.ALL
            await js.add_consumer("MARKET", ConsumerConfig.from_response(cfg.as_dict()))
            started = time.perf_counter()
            task = asyncio.create_task(run(settings, None, stop=stop))

            async def drained() -> bool:
                return all([await seq_of(redis, s) > 0 for s in SYMBOLS]) and (
                    max([await seq_of(redis, s) for s in SYMBOLS]) >= last
                )

            await until(drained)
            took = time.perf_counter() - started
            print(f"worker: {n:,} ticks into Redis in {took:.1f}s = {n / took:,.0f} ticks/s")

            # Latency at a fixed rate.
            pubsub = redis.pubsub()
            await pubsub.psubscribe("prices:*")
            sent: dict[int, float] = {}
            latencies: list[float] = []
            live = make_ticks(rate * seconds, seed=2)

            async def listen() -> None:
                async for m in pubsub.listen():
                    if m["type"] != "pmessage":
                        continue
                    body = json.loads(m["data"])
                    t0 = sent.pop(body["seq"], None)
                    if t0 is not None:
                        latencies.append(time.perf_counter() - t0)

            listener = asyncio.create_task(listen())
            step = 1 / rate
            t_next = time.perf_counter()
            for data in live:
                symbol = json.loads(data)["data"]["symbol"]
                t0 = time.perf_counter()
                ack = await js.publish(f"market.tick.{symbol}", data)
                sent[ack.seq] = t0
                t_next += step
                delay = t_next - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)

            async def received() -> bool:
                return not sent or len(latencies) >= len(live) * 0.999

            await until(received)
            listener.cancel()
            lat = sorted(latencies)
            p50 = statistics.median(lat) * 1000
            p99 = lat[int(len(lat) * 0.99) - 1] * 1000
            print(
                f"latency at {rate}/s for {seconds}s ({len(lat):,} ticks, publish ack "
                f"awaited): p50 {p50:.1f} ms, p99 {p99:.1f} ms"
            )
            stop.set()
            await task
            await redis.aclose()
            await nc.close()
        finally:
            await asyncio.to_thread(fleet.stop)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--ticks", type=int, default=200_000)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.ticks, args.rate, args.seconds))
