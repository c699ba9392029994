"""The analytics-projector process end to end: three streams in, MongoDB out, faults between.

Every expectation comes from ``reference`` (an independent model of the published events),
never from the worker's own code.
"""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from fleet_events import DLQ_STREAM, Event, Side
from fleet_runtime.publisher import EventPublisher
from fleet_testing import Fleet
from fleet_testing.topologies import StreamsFile
from fleet_testing.waiting import wait_until
from fleet_testing.workerprocs import start_worker, stream_loaded

from . import reference
from .conftest import candle, completed, created, fill, started, stopped

REPO = Path(__file__).resolve().parents[3]
WORKER = "analytics-projector"
# Recent, so the TTL indexes never expire documents during the test; 20:00 so the
# fills span four UTC days.
START = datetime.combine(datetime.now(UTC).date() - timedelta(days=6), time(20), tzinfo=UTC)
USERS = {f"bot-{k}": f"user-{k % 3}" for k in range(8)}
SYMBOLS = ("BTC", "ETH", "SOL")
Docs = dict[str, dict[str, Any]]


def topology_file(tmp_path: Path) -> Path:
    """streams.yaml with the worker's first redelivery after 2 s (30 s in production)."""
    streams = StreamsFile(REPO / "streams.yaml")
    for stream in ("TRADES", "MARKET", "BOTS"):
        streams.set_backoff(WORKER, stream, ["2s", "2s", "5s", "30s"])
    return streams.write(tmp_path / "streams.yaml")


def mixed_events(fills: int) -> list[Event[Any]]:
    """Fills (every 10th sent again under a new event id, an outcome per order of three),
    1m and 1h candles in market-time order, and bot lifecycles, some published late
    (each bot's own events stay in version order, as the lifecycle owner publishes them)."""
    events: list[Event[Any]] = []
    late: list[Event[Any]] = []
    runs: dict[int, list[Event[Any]]] = {}
    for k, bot in enumerate(sorted(USERS)):
        first = (fills // 8) * (k % 4)
        birth = created(bot, f"name-{k}", user_id=USERS[bot])
        # Bots 6 and 7 are created on BOTS only after many of their fills are on TRADES.
        (runs.setdefault(first, []) if k >= 6 else events).append(birth)
        runs.setdefault(first, []).append(
            started(bot, 2, START + timedelta(seconds=15 * first + 7))
        )
        end = first + fills // 3
        stop = stopped(bot, 3, START + timedelta(seconds=15 * end + 3))
        # Bots 0 and 1 report their stop only after every fill: the run is recomputed.
        (late if k < 2 else runs.setdefault(end, [])).append(stop)
    next_candle = START
    for n in range(fills):
        at = START + timedelta(seconds=15 * n)
        while next_candle <= at:
            for s, symbol in enumerate(SYMBOLS):
                price = Decimal(1000 * (s + 1) + (n * 7 + s * 13) % 300) / 10
                events.append(candle(symbol, next_candle, price))
                if next_candle.minute == 0:
                    events.append(candle(symbol, next_candle, price, interval="1h"))
            next_candle += timedelta(minutes=2)
        events.extend(runs.get(n, []))
        bot = f"bot-{(n * 5 + n // 7) % 8}"
        event = fill(
            f"t{n}",
            side=Side.BUY if (n * 7) % 5 < 3 else Side.SELL,
            quantity=Decimal(1 + n % 23) / 100,
            price=Decimal(20_000 + (n * 37) % 900) / 10,
            fee=Decimal(n % 9) / 1000,
            bot_id=bot,
            user_id=USERS[bot],
            symbol=SYMBOLS[n % 3],
            at=at,
            order_id=f"o{n // 3}",
        )
        events.append(event)
        if n % 10 == 9:
            d = event.data
            events.append(
                fill(
                    d.trade_id,
                    side=d.side,
                    quantity=d.quantity,
                    price=d.price,
                    fee=d.fee,
                    bot_id=d.bot_id,
                    user_id=d.user_id,
                    symbol=d.symbol,
                    at=d.executed_at,
                    order_id=d.order_id,
                )
            )
        if n % 3 == 2:
            events.append(completed(f"o{n // 3}", bot_id=bot))
    return events + late


def worker_env(fleet: Fleet, database: str, streams: Path) -> dict[str, str]:
    return {
        **os.environ,
        **fleet.nats.env(),  # FLEET_NATS_CREDS: the worker connects as itself
        "ANALYTICS_PROJECTOR_NATS_URL": fleet.nats.url,
        "ANALYTICS_PROJECTOR_MONGO_URL": fleet.mongo.url,
        "ANALYTICS_PROJECTOR_MONGO_DATABASE": database,
        "ANALYTICS_PROJECTOR_STREAMS_FILE": str(streams),
        "ANALYTICS_PROJECTOR_BATCH_SIZE": "300",
        "ANALYTICS_PROJECTOR_MONGO_TIMEOUT_S": "2",
        "ANALYTICS_PROJECTOR_LOG_FORMAT": "json",
    }


async def drained(js: Any) -> bool:
    """Whether the worker's three durables have nothing pending or unacknowledged."""
    for stream in ("TRADES", "MARKET", "BOTS"):
        info = await js.consumer_info(stream, WORKER)
        if info.num_pending or info.num_ack_pending:
            return False
    return True


async def documents(db: Any, collection: str) -> Docs:
    return {str(d["_id"]): d async for d in db[collection].find()}


def dec(value: Any) -> Decimal:
    return Decimal(value.to_decimal())


async def check_read_models(db: Any, events: list[Event[Any]]) -> None:
    """Every read model equals the independent model of ``events``."""
    model = reference.build(events)
    assert await db.trading_events.count_documents({}) == (
        model.distinct_fills + model.distinct_outcomes
    )
    assert await db.price_history.count_documents({}) == model.candles
    bots = await documents(db, "bot_performance")
    assert set(bots) == set(USERS)
    for bot, want in model.bots.items():
        got = bots[bot]
        assert (got["name"], got["user_id"]) == (f"name-{sorted(USERS).index(bot)}", USERS[bot])
        assert got["status"] == "stopped"
        assert (got["total_trades"], got["winning_trades"], got["losing_trades"]) == (
            want.trades,
            want.winning,
            want.losing,
        ), bot
        assert dec(got["realized_pnl"]) == want.realized, bot
        assert dec(got["fees"]) == want.fees, bot
        assert dec(got["volume"]) == want.volume, bot
        assert dec(got["max_drawdown"]) == want.max_drawdown, bot
        assert got["open_positions"] == model.open_positions[bot], bot
    daily = await documents(db, "bot_performance_daily")
    assert set(daily) == {f"{bot}|{day}" for bot, day in model.days}
    for (bot, day), want in model.days.items():
        got = daily[f"{bot}|{day}"]
        assert (got["total_trades"], dec(got["realized_pnl"])) == (want.trades, want.realized)
    snapshots = await documents(db, "portfolio_snapshots")
    assert set(snapshots) == {f"{day}|{user}" for user, day in model.snapshots}
    for (user, day), (value, pnl) in model.snapshots.items():
        got = snapshots[f"{day}|{user}"]
        assert (dec(got["total_value"]), dec(got["total_pnl"])) == (value, pnl), (user, day)
    runs = await documents(db, "bot_executions")
    assert set(runs) == {f"{bot}:2" for bot in USERS}
    for run in runs.values():
        count, realized = reference.run_figures(
            model, run["bot_id"], run["start_time"], run["end_time"]
        )
        assert run["status"] == "stopped"
        assert (run["metrics"]["trades"], dec(run["metrics"]["profit"])) == (count, realized)
        assert count > 0


@pytest.mark.slow
async def test_kill_9_midway_then_restart_gives_exact_read_models(
    isolated_fleet: Fleet, tmp_path: Path
) -> None:
    events = mixed_events(11_000)
    assert 19_000 < len(events) < 21_000
    streams = topology_file(tmp_path)
    nc, js = await stream_loaded(isolated_fleet.nats.url, streams, events)
    env = worker_env(isolated_fleet, "analytics_e2e", streams)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        isolated_fleet.mongo.url, tz_aware=True
    )
    db = client.analytics_e2e

    async def projected() -> int:
        return await db.trading_events.count_documents({})

    worker = start_worker(WORKER, env, tmp_path / "worker.log")
    try:

        async def some_projected() -> bool:
            return await projected() >= 3000

        await wait_until(some_projected, 120, "3000 trade events projected")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        assert await projected() < 11_000, "the kill must land mid-stream"
        worker = start_worker(WORKER, env, tmp_path / "worker.log")
        await wait_until(lambda: drained(js), 300, "every event projected and acked")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        assert (await js.stream_info(DLQ_STREAM)).state.messages == 0
        await check_read_models(db, events)
    finally:
        if worker.poll() is None:
            worker.kill()
        await nc.close()
        await client.close()


@pytest.mark.slow
async def test_mongodb_stopped_15_s_under_load_pauses_without_dead_letters(
    isolated_fleet: Fleet, tmp_path: Path
) -> None:
    events = mixed_events(3000)
    streams = topology_file(tmp_path)
    half = len(events) // 2
    nc, js = await stream_loaded(isolated_fleet.nats.url, streams, events[:half])
    env = worker_env(isolated_fleet, "analytics_outage", streams)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        isolated_fleet.mongo.url, tz_aware=True
    )
    db = client.analytics_outage
    worker = start_worker(WORKER, env, tmp_path / "worker.log")
    try:

        async def started_projecting() -> bool:
            return await db.trading_events.count_documents({}) > 200

        await wait_until(started_projecting, 120, "the worker projecting")
        isolated_fleet.mongo.stop()
        # The rest is published while MongoDB is down: the worker holds it, pausing.
        publishing = asyncio.create_task(_publish(js, events[half:]))
        await asyncio.sleep(15)  # the outage being simulated, not a wait for a result
        await publishing
        assert worker.poll() is None, "the worker must pause, not exit"
        isolated_fleet.mongo.start()
        await wait_until(lambda: drained(js), 300, "every event projected after the outage")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        assert (await js.stream_info(DLQ_STREAM)).state.messages == 0
        await check_read_models(db, events)
    finally:
        if worker.poll() is None:
            worker.kill()
        await nc.close()
        await client.close()


async def _publish(js: Any, events: list[Event[Any]]) -> None:
    await EventPublisher(js).publish_many(events)
