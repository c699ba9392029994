"""Sustained rate of trade-recorder on this machine, 200k fills (run by hand, not in tests).

    uv run python services/trade-recorder/bench/record_rate.py [--fills 200000] [--batch 1000]

1. store: ``PostgresTradeStore.record`` on prebuilt batches (the PostgreSQL path alone);
2. worker: fills published to a private JetStream first, then ``serve`` in-process until
   the durable is drained (NATS fetch + decode + store + ack), next to the raw consume
   rate of the same consumer settings for comparison.
Servers come from fleet-testing's launcher (private, removed afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import nats
from nats.js.api import AckPolicy, ConsumerConfig

from fleet_events import Event, Side, TradeExecuted, new_event
from fleet_pgmigrate import dsn_with
from fleet_runtime.delivery import Batch
from fleet_runtime.logs import configure_logging
from fleet_runtime.publisher import EventPublisher
from fleet_runtime.topology import apply, load_topology
from fleet_runtime.worker import serve
from fleet_testing import Fleet
from trade_recorder.settings import TradeRecorderSettings
from trade_recorder.store import ROLE, PostgresTradeStore, ensure_roles, run_migrations

REPO = Path(__file__).resolve().parents[3]
T0 = 1_735_800_000


def fills(n: int, prefix: str) -> list[Event[Any]]:
    from datetime import UTC, datetime  # noqa: PLC0415

    out = []
    for i in range(n):
        out.append(
            new_event(
                TradeExecuted(
                    trade_id=f"{prefix}{i}",
                    order_id=f"{prefix}o{i // 4}",
                    bot_id=f"bot-{i % 50}",
                    user_id=f"user-{i % 10}",
                    symbol=("BTCUSDT", "ETHUSDT", "SOLUSDT")[i % 3],
                    side=Side.BUY if (i * 7) % 5 < 3 else Side.SELL,
                    quantity=Decimal(1 + i % 97) / 1000,
                    price=Decimal(20_000_00 + (i * 37) % 5000) / 100,
                    fee=Decimal(i % 13) / 10_000,
                    fee_currency="USDT",
                    executed_at=datetime.fromtimestamp(T0 + i, UTC),
                ),
                source="bench",
            )
        )
    return out


async def bench_store(dsn: str, n: int, batch: int) -> float:
    from nats.aio.msg import Msg  # noqa: PLC0415

    from fleet_events import encode, subject_for  # noqa: PLC0415
    from fleet_runtime.delivery import Delivery  # noqa: PLC0415

    events = fills(n, "s")
    batches = []
    for start in range(0, n, batch):
        chunk = []
        for seq, e in enumerate(events[start : start + batch], start + 1):
            msg = Msg(_client=None, subject=subject_for(e), reply="", data=encode(e))  # type: ignore[arg-type]
            chunk.append(Delivery(e, msg.subject, "TRADES", seq, 1, msg))
        batches.append(Batch(chunk, "bench-store"))
    store = await PostgresTradeStore.connect(dsn)
    started = time.perf_counter()
    for b in batches:
        await store.record(b)
    elapsed = time.perf_counter() - started
    await store.close()
    return n / elapsed


async def bench_worker(
    nats_url: str, dsn: str, owner: str, n: int, batch: int
) -> tuple[float, float]:
    # Imported here, after `configure_logging`: structlog binds its config at import.
    from trade_recorder import handlers  # noqa: PLC0415

    nc = await nats.connect(nats_url, pending_size=256 * 1024 * 1024)
    js = nc.jetstream()
    await apply(js, load_topology(REPO / "streams.yaml"))
    events = fills(n, "w")
    pub = EventPublisher(js, timeout_s=30)
    for start in range(0, n, 5000):
        await pub.publish_many(events[start : start + 5000])
    settings = TradeRecorderSettings(
        nats_url=nats_url, postgres_dsn=dsn, batch_size=batch, log_level="WARNING"
    )
    store = await PostgresTradeStore.connect(dsn)
    stop = asyncio.Event()
    db = await asyncpg.connect(owner)
    started = time.perf_counter()
    task = asyncio.create_task(
        serve(
            worker="trade-recorder",
            settings=settings,
            subscriptions=handlers.subscriptions(store),
            store_probe=store.probe,
            stop=stop,
        )
    )
    while True:
        count = await db.fetchval("SELECT count(*) FROM trading.trades WHERE trade_id LIKE 'w%'")
        if count >= n:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    await store.close()
    await db.close()
    # Raw consume + ack rate of the same messages on a throwaway pull consumer.
    sub = await js.pull_subscribe(
        "trade.>",
        durable="bench-raw",
        stream="TRADES",
        config=ConsumerConfig(ack_policy=AckPolicy.ALL, max_ack_pending=5000),
    )
    got = 0
    raw_started = time.perf_counter()
    while got < n:
        msgs = await sub.fetch(batch, timeout=5)
        got += len(msgs)
        if msgs:
            await msgs[-1].ack()
    raw = n / (time.perf_counter() - raw_started)
    await nc.close()
    return n / elapsed, raw


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fills", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    os.environ.setdefault("TRADE_RECORDER_LOG_LEVEL", "WARNING")
    # As `worker_main` does: unconfigured structlog would render every debug line.
    configure_logging("WARNING")
    with Fleet(None, use_external=False) as fleet:
        fleet.start("nats", "postgres")
        admin = fleet.postgres.create_database("bench")
        await ensure_roles(admin)
        await run_migrations(admin)
        dsn = dsn_with(admin, user=ROLE)
        store_rate = await bench_store(dsn, args.fills, args.batch)
        print(f"store.record: {args.fills} fills, batch {args.batch}: {store_rate:,.0f} fills/s")
        worker_rate, raw = await bench_worker(fleet.nats.url, dsn, admin, args.fills, args.batch)
        print(
            f"worker (NATS -> PostgreSQL): {worker_rate:,.0f} fills/s; "
            f"raw fetch+ack {raw:,.0f} msg/s"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
