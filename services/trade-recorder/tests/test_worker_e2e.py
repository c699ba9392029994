"""The trade-recorder process end to end: NATS JetStream in, PostgreSQL out, kill -9 between."""

from __future__ import annotations

import os
import signal
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from fleet_events import Event, Side
from fleet_testing import Fleet
from fleet_testing.topologies import StreamsFile
from fleet_testing.waiting import wait_until
from fleet_testing.workerprocs import (
    finish_partitions,
    kill_leftovers,
    kill_one_partition_midway,
    start_worker,
    stream_loaded,
)
from trade_recorder.logic import Fill, apply_fills, fill_from_event

from .conftest import TradeEvents

REPO = Path(__file__).resolve().parents[3]
TOTAL_FILLS = 6000


def topology_file(tmp_path: Path, *, partitions: int = 1) -> Path:
    """The repository's streams.yaml with trade-recorder's first redelivery after 2 s.

    The production backoff starts at 30 s; a killed worker's unacked messages come back
    after backoff[0], so the test shortens it to stay fast. With ``partitions`` > 1,
    TRADES is split by bot id (the last subject word) and trade-recorder binds per
    partition. Everything else is as declared.
    """
    streams = StreamsFile(REPO / "streams.yaml").set_backoff(
        "trade-recorder", "TRADES", ["2s", "2s", "5s", "15s", "1m"]
    )
    if partitions > 1:
        streams.partition(
            "TRADES", subjects="trade.*.*", count=partitions, key=[2], workers=["trade-recorder"]
        )
    return streams.write(tmp_path / "streams.yaml")


def fill_events(total: int, bots: int) -> tuple[list[Event[Any]], list[Event[Any]]]:
    """(distinct fills, what is published): ``total`` fills over ``bots`` bots x 2 symbols,
    every 10th re-sent under a new event id, a completion for every order of 3 fills."""
    fills: list[Event[Any]] = []
    for n in range(total):
        fills.append(
            TradeEvents.fill(
                f"t{n}",
                side=Side.BUY if (n * 7) % 5 < 3 else Side.SELL,
                quantity=Decimal(1 + n % 17) / 100,
                price=Decimal(20_000 + (n * 37) % 500) / 10,
                fee=Decimal(n % 9) / 1000,
                order_id=f"o{n // 3}",
                bot_id=f"bot-{(n // 3) % bots}",
                symbol=("BTC", "ETH")[n % 2],
            )
        )
    published: list[Event[Any]] = []
    for n, event in enumerate(fills):
        published.append(event)
        if n % 10 == 9:
            d = event.data
            published.append(
                TradeEvents.fill(
                    d.trade_id,
                    side=d.side,
                    quantity=d.quantity,
                    price=d.price,
                    fee=d.fee,
                    order_id=d.order_id,
                    bot_id=d.bot_id,
                    symbol=d.symbol,
                )
            )
        if n % 3 == 2:
            published.append(TradeEvents.completed(f"o{n // 3}", bot_id=event.data.bot_id))
    return fills, published


def worker_env(fleet: Fleet, worker_dsn: str, streams: Path) -> dict[str, str]:
    return {
        **os.environ,
        **fleet.nats.env(),  # FLEET_NATS_CREDS: the worker connects as itself
        "TRADE_RECORDER_NATS_URL": fleet.nats.url,
        "TRADE_RECORDER_POSTGRES_DSN": worker_dsn,
        "TRADE_RECORDER_STREAMS_FILE": str(streams),
        "TRADE_RECORDER_BATCH_SIZE": "25",
        "TRADE_RECORDER_LOG_FORMAT": "json",
    }


async def check_books(db: asyncpg.Connection, fills: list[Event[Any]]) -> None:
    """Trades, orders and positions equal an independent computation from ``fills``."""
    unique = [fill_from_event(e, n) for n, e in enumerate(fills)]
    row = await db.fetchrow(
        "SELECT count(*) AS n, count(DISTINCT trade_id) AS u, sum(quantity) AS q, "
        "sum(fee) AS f FROM trading.trades"
    )
    assert (row["n"], row["u"]) == (len(fills), len(fills))
    assert row["q"] == sum((f.quantity for f in unique), Decimal(0))
    assert row["f"] == sum((f.fee for f in unique), Decimal(0))
    orders = await db.fetchrow(
        "SELECT count(*) AS n, count(*) FILTER (WHERE status = 'completed') AS done, "
        "sum(fill_count) AS fills FROM trading.orders"
    )
    n_orders = len(fills) // 3
    assert (orders["n"], orders["done"], orders["fills"]) == (n_orders, n_orders, len(fills))
    # Average entry prices and realized PnL depend on the order of each key's fills: equal
    # positions show every position's fills were applied in stream order.
    expected = _expected_positions(unique)
    stored = await db.fetch(
        "SELECT user_id, bot_id, symbol, side, quantity, average_entry_price, "
        "realized_pnl, fees, is_open FROM trading.positions "
        "ORDER BY user_id, bot_id, symbol, id"
    )
    assert [tuple(r.values()) for r in stored] == expected


@pytest.mark.slow
async def test_worker_survives_kill_9_with_exact_counts_and_sums(
    isolated_fleet: Fleet,
    trading_dsns: tuple[str, str],
    tmp_path: Path,
) -> None:
    owner, worker_dsn = trading_dsns
    streams = topology_file(tmp_path)
    fills, published = fill_events(TOTAL_FILLS, bots=4)
    nc, js = await stream_loaded(isolated_fleet.nats.url, streams, published)
    env = worker_env(isolated_fleet, worker_dsn, streams)
    log = tmp_path / "worker.log"
    db = await asyncpg.connect(owner)

    async def recorded() -> int:
        return int(await db.fetchval("SELECT count(*) FROM trading.trades"))

    worker = start_worker("trade-recorder", env, log)
    try:
        await wait_until(lambda: _at_least(recorded, 1500), 60, "1500 fills recorded")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        at_kill = await recorded()
        assert at_kill < TOTAL_FILLS, "the kill must land mid-stream"

        worker = start_worker("trade-recorder", env, log)

        async def drained() -> bool:
            info = await js.consumer_info("TRADES", "trade-recorder")
            return (
                await recorded() == TOTAL_FILLS
                and info.num_pending == 0
                and info.num_ack_pending == 0
            )

        await wait_until(drained, 90, "every event applied and acked")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
        await nc.close()

    try:
        await check_books(db, fills)
        assert await db.fetchval("SELECT stream_seq FROM trading.checkpoints") == len(published)
    finally:
        await db.close()


@pytest.mark.slow
async def test_two_partitions_each_in_order_with_one_killed(
    isolated_fleet: Fleet,
    trading_dsns: tuple[str, str],
    tmp_path: Path,
) -> None:
    """TRADES split in two by bot: one process per partition, one of them kill -9'd."""
    owner, worker_dsn = trading_dsns
    streams = topology_file(tmp_path, partitions=2)
    total = 3000
    fills, published = fill_events(total, bots=8)
    nc, js = await stream_loaded(isolated_fleet.nats.url, streams, published)
    env = worker_env(isolated_fleet, worker_dsn, streams)
    db = await asyncpg.connect(owner)

    async def recorded() -> int:
        return int(await db.fetchval("SELECT count(*) FROM trading.trades"))

    workers = await kill_one_partition_midway(
        "trade-recorder", env, tmp_path, recorded, kill_at=600, total=total
    )
    try:
        await finish_partitions(js, "TRADES", "trade-recorder", workers, recorded, total=total)
    finally:
        kill_leftovers(workers)
        await nc.close()

    try:
        await check_books(db, fills)
        checkpoints = dict(await db.fetch("SELECT name, stream_seq FROM trading.checkpoints"))
        assert set(checkpoints) == {"trade-recorder-p0", "trade-recorder-p1"}
        assert max(checkpoints.values()) == len(published)
    finally:
        await db.close()


async def _at_least(probe: Any, n: int) -> bool:
    return bool(await probe() >= n)


def _expected_positions(fills: list[Fill]) -> list[tuple[Any, ...]]:
    by_key: dict[tuple[str, str, str], list[Fill]] = defaultdict(list)
    for fill in fills:
        by_key[fill.key].append(fill)
    expected: list[tuple[Any, ...]] = []
    for key in sorted(by_key):
        for p in apply_fills(None, by_key[key]):
            expected.append(
                (
                    *key,
                    p.side,
                    p.quantity,
                    p.average_entry_price,
                    p.realized_pnl,
                    p.fees,
                    p.is_open,
                )
            )
    return expected
