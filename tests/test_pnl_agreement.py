"""trade-recorder (PostgreSQL) and analytics-projector (MongoDB) on one TRADES stream agree
on realized PnL and open positions to the last decimal."""

from __future__ import annotations

import os
import signal
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pymongo import AsyncMongoClient

from fleet_events import Event, Side, TradeExecuted, new_event
from fleet_pgmigrate import dsn_with
from fleet_testing import Fleet
from fleet_testing.topologies import StreamsFile
from fleet_testing.waiting import wait_until
from fleet_testing.workerprocs import kill_leftovers, start_worker, stream_loaded
from trade_recorder.store import ROLE, ensure_roles, run_migrations

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 2, 1, tzinfo=UTC)


def fills(total: int) -> list[Event[Any]]:
    """Fills over 6 bots x 2 symbols with many reductions and flips, prices with 6
    decimals (volume-weighted averages round to 18 places), every 7th sent again under a
    new event id."""
    events: list[Event[Any]] = []
    for n in range(total):
        payload = TradeExecuted(
            trade_id=f"t{n}",
            order_id=f"o{n}",
            bot_id=f"bot-{n % 6}",
            user_id=f"user-{n % 2}",
            symbol=("BTC", "ETH")[(n // 6) % 2],
            side=Side.BUY if (n * 13) % 7 < 4 else Side.SELL,
            quantity=Decimal(1 + (n * 31) % 997) / 1000,
            price=Decimal(3_000_000_000 + (n * 7919) % 200_000_000) / 1_000_000,
            fee=Decimal(n % 5) / 10_000,
            fee_currency="USDT",
            executed_at=T0 + timedelta(seconds=n),
        )
        event = new_event(payload, source="test")
        events.append(event)
        if n % 7 == 6:
            events.append(new_event(payload, source="test"))
    return events


@pytest.mark.slow
async def test_both_stores_report_the_same_realized_pnl(
    isolated_fleet: Fleet, tmp_path: Path
) -> None:
    pg = isolated_fleet.postgres
    owner = pg.create_database("pnl")
    await ensure_roles(owner)
    await run_migrations(owner)
    streams = (
        StreamsFile(ROOT / "streams.yaml")
        .set_backoff("trade-recorder", "TRADES", ["2s", "5s", "10s", "30s", "1m"])
        .set_backoff("analytics-projector", "TRADES", ["2s", "5s", "10s", "30s"])
        .write(tmp_path / "streams.yaml")
    )
    events = fills(2400)
    nc, js = await stream_loaded(isolated_fleet.nats.url, streams, events)
    env = {
        **os.environ,
        **isolated_fleet.nats.env(),  # FLEET_NATS_CREDS: the worker connects as itself
        "TRADE_RECORDER_NATS_URL": isolated_fleet.nats.url,
        "TRADE_RECORDER_POSTGRES_DSN": dsn_with(owner, user=ROLE),
        "TRADE_RECORDER_STREAMS_FILE": str(streams),
        "ANALYTICS_PROJECTOR_NATS_URL": isolated_fleet.nats.url,
        "ANALYTICS_PROJECTOR_MONGO_URL": isolated_fleet.mongo.url,
        "ANALYTICS_PROJECTOR_MONGO_DATABASE": "pnl",
        "ANALYTICS_PROJECTOR_STREAMS_FILE": str(streams),
    }
    workers = [
        start_worker(name, env, tmp_path / f"{name}.log")
        for name in ("trade-recorder", "analytics-projector")
    ]
    try:

        async def both_drained() -> bool:
            for durable in ("trade-recorder", "analytics-projector"):
                info = await js.consumer_info("TRADES", durable)
                if info.num_pending or info.num_ack_pending:
                    return False
            return True

        await wait_until(both_drained, 240, "both workers drained TRADES")
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        assert [w.wait(timeout=30) for w in workers] == [0, 0]
    finally:
        kill_leftovers(workers)
        await nc.close()

    db = await asyncpg.connect(owner)
    try:
        pnl = dict(
            await db.fetch(
                "SELECT bot_id, sum(realized_pnl) FROM trading.positions GROUP BY bot_id"
            )
        )
        open_rows = await db.fetch(
            "SELECT bot_id, user_id, symbol, side, quantity, average_entry_price "
            "FROM trading.positions WHERE is_open"
        )
        assert await db.fetchval("SELECT count(*) FROM trading.trades") == 2400
    finally:
        await db.close()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(isolated_fleet.mongo.url)
    try:
        docs = [d async for d in client.pnl.bot_performance.find()]
    finally:
        await client.close()
    assert len(docs) == 6
    assert {d["_id"]: d["realized_pnl"].to_decimal() for d in docs} == pnl
    # Reductions really happened: the PnL is not trivially zero.
    assert all(value != 0 for value in pnl.values())
    positions: dict[str, set[tuple[Any, ...]]] = defaultdict(set)
    for d in docs:
        for p in d["positions"]:
            positions[d["_id"]].add(
                (
                    p["user_id"],
                    p["symbol"],
                    p["side"],
                    p["quantity"].to_decimal(),
                    p["average_entry_price"].to_decimal(),
                )
            )
    expected: dict[str, set[tuple[Any, ...]]] = defaultdict(set)
    for r in open_rows:
        expected[r["bot_id"]].add(
            (r["user_id"], r["symbol"], r["side"], r["quantity"], r["average_entry_price"])
        )
    assert positions == expected
