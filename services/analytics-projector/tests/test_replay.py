"""`fleet replay analytics-projector`: MongoDB read models rebuilt from three streams while
the live worker keeps running, a publisher keeps publishing and a reader keeps reading."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from fleet_testing import Fleet
from fleet_testing.replaying import Publisher, Reader, run_fleet, start_fleet
from fleet_testing.waiting import wait_until
from fleet_testing.workerprocs import start_worker, stream_loaded

from .test_worker_e2e import (
    WORKER,
    check_read_models,
    drained,
    mixed_events,
    topology_file,
    worker_env,
)

Client = AsyncMongoClient[dict[str, Any]]


def env_for(fleet: Fleet, streams: Path, database: str) -> dict[str, str]:
    """The worker's environment; `fleet replay` reads the same variables."""
    return worker_env(fleet, database, streams)


async def corrupt(db: Any) -> None:
    """What a bug could leave: documents lost, figures wrong, a collection emptied."""
    await db.bot_performance.delete_one({"_id": "bot-3"})
    await db.bot_performance.update_one(
        {"_id": "bot-5"}, {"$set": {"total_trades": 1, "name": "wrong"}}
    )
    await db.portfolio_snapshots.delete_many({})
    await db.bot_executions.delete_one({"_id": "bot-1:2"})


async def lock_free(db: Any) -> bool:
    lease = await db.replay_lock.find_one({"_id": "replay"})
    return lease is None or lease["expires_at"] < datetime.now(UTC)


async def shadow_collections(db: Any) -> list[str]:
    return [n for n in await db.list_collection_names() if n.startswith("replay_shadow__")]


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_replay_repairs_the_read_models_while_publishing_and_reading(
    isolated_fleet: Fleet, tmp_path: Path
) -> None:
    streams = topology_file(tmp_path)
    # The swap's renames cost secantusdb a synced commit per document and index entry: a
    # small store keeps the replay well inside the publishing window on a busy machine.
    events = mixed_events(1200)
    split = len(events) // 2
    nc, js = await stream_loaded(isolated_fleet.nats.url, streams, events[:split])
    env = env_for(isolated_fleet, streams, "replayed")
    client: Client = AsyncMongoClient(isolated_fleet.mongo.url, tz_aware=True)
    db = client.replayed
    worker = start_worker(WORKER, env, tmp_path / "worker.log")
    try:
        await wait_until(lambda: drained(js), 120, "first half projected")
        await corrupt(db)

        async def read() -> tuple[int, int]:
            return (
                await db.bot_performance.count_documents({}),
                await db.checkpoints.count_documents({}),
            )

        # About 100 s of publishing at this pace, longer than the replay: the swap happens
        # while events are still being published (asserted below).
        publisher = Publisher(js, events[split:], chunk=2, pause_s=0.3)
        reader = Reader(read)
        reader.start()
        publisher.start()
        result = await run_fleet(["replay", WORKER, "--yes"], env, timeout=400)
        assert result.code == 0, result.err + result.out
        assert "swapped MongoDB database replayed" in result.out, result.out
        assert publisher.published < len(events) - split, "still publishing at the swap"
        await publisher.finish()
        await wait_until(lambda: drained(js), 180, "every event projected")
        await reader.stop()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        # Nothing published during the replay is lost or doubled: the read models equal
        # the independent model of every event.
        await check_read_models(db, events)
        assert await shadow_collections(db) == []
    finally:
        if worker.poll() is None:
            worker.kill()
        await nc.close()
        await client.close()
    assert reader.errors == [], reader.errors[:3]
    # No read found a collection missing: the corrupted store held 7 bots, the rebuilt one
    # 8, and every read saw the three checkpoints.
    assert {bots for bots, _ in reader.values} <= {7, 8}
    assert {checkpoints for _, checkpoints in reader.values} == {3}


@pytest.mark.slow
async def test_replay_killed_midway_then_dry_runs(isolated_fleet: Fleet, tmp_path: Path) -> None:
    streams = topology_file(tmp_path)
    events = mixed_events(1500)
    nc, js = await stream_loaded(isolated_fleet.nats.url, streams, events)
    env = env_for(isolated_fleet, streams, "killed")
    client: Client = AsyncMongoClient(isolated_fleet.mongo.url, tz_aware=True)
    db = client.killed
    worker = start_worker(WORKER, env, tmp_path / "worker.log")
    try:
        await wait_until(lambda: drained(js), 120, "stream projected")
        healthy = await run_fleet(["replay", WORKER, "--dry-run"], env, timeout=240)
        assert healthy.code == 0, healthy.err + healthy.out
        assert "live matches the replay" in healthy.out, healthy.out

        await corrupt(db)
        before = await db.bot_performance.count_documents({})
        replay = await start_fleet(
            ["replay", WORKER, "--yes", "--batch-size", "20"], env, tmp_path / "r1.log"
        )

        async def shadow_fills() -> int:
            return await db.replay_shadow__trading_events.count_documents({})

        async def half_way() -> bool:
            return await shadow_fills() >= 300

        await wait_until(half_way, 120, "the replay under way")
        assert replay.returncode is None, "the kill must land before the replay ends"
        os.kill(replay.pid, signal.SIGKILL)
        await replay.wait()
        # Live untouched: still the corrupted state (bot-3 missing), not a swapped one.
        assert await db.bot_performance.count_documents({}) == before, "live untouched"
        assert await db.bot_performance.find_one({"_id": "bot-3"}) is None

        # The killed replay's lease on the lock runs out within 15 s.
        await wait_until(lambda: lock_free(db), 30, "the killed replay's lock lease ended")
        sick = await run_fleet(["replay", WORKER, "--dry-run"], env, timeout=240)
        assert sick.code == 0, sick.err + sick.out
        assert "left by an interrupted replay" in sick.out + sick.err
        differ = {line.split()[0] for line in sick.out.splitlines() if "DIFFERENT" in line}
        assert {"bot_performance", "portfolio_snapshots", "bot_executions"} <= differ, sick.out
        assert await db.portfolio_snapshots.count_documents({}) == 0, "a dry run swaps nothing"

        result = await run_fleet(["replay", WORKER, "--yes"], env, timeout=240)
        assert result.code == 0, result.err + result.out
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        await check_read_models(db, events)
        assert await shadow_collections(db) == []
        doc = await db.bot_performance.find_one({"_id": "bot-5"})
        assert doc is not None
        assert doc["name"] == "name-5"
        assert isinstance(doc["realized_pnl"].to_decimal(), Decimal)
    finally:
        if worker.poll() is None:
            worker.kill()
        await nc.close()
        await client.close()
