"""`fleet replay trade-recorder` on real NATS and PostgreSQL while the live worker runs."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from fleet_runtime.publisher import EventPublisher
from fleet_testing import Fleet
from fleet_testing.replaying import Publisher, Reader, run_fleet, start_fleet
from fleet_testing.waiting import wait_until
from fleet_testing.workerprocs import (
    kill_leftovers,
    partitions_drained,
    start_worker,
    stream_loaded,
)

from .test_worker_e2e import check_books, fill_events, topology_file, worker_env

# One statement, one snapshot: every table the reader can see, and whether its state is
# whole (each order's fill count matches the trades recorded for it).
_READ = """
SELECT (SELECT count(*) FROM trading.trades) AS trades,
       (SELECT coalesce(sum(fill_count), 0) FROM trading.orders) AS order_fills,
       (SELECT count(*) FROM trading.positions) AS positions,
       (SELECT max(stream_seq) FROM trading.checkpoints) AS seq
"""


def replay_env(fleet: Fleet, dsns: tuple[str, str], streams: Path) -> dict[str, str]:
    env = worker_env(fleet, dsns[1], streams)
    env["TRADE_RECORDER_OWNER_DSN"] = dsns[0]
    env["TRADE_RECORDER_LOG_LEVEL"] = "WARNING"
    return env


async def drained(js: Any, db: asyncpg.Connection, published: int) -> bool:
    info = await js.consumer_info("TRADES", "trade-recorder")
    seq = await db.fetchval("SELECT max(stream_seq) FROM trading.checkpoints")
    return bool(info.num_pending == 0 and info.num_ack_pending == 0 and seq == published)


async def corrupt(db: asyncpg.Connection) -> None:
    """Delete fills and alter positions and orders behind the worker's back."""
    deleted = await db.execute("DELETE FROM trading.trades WHERE trade_id LIKE 't1%'")
    assert int(deleted.split()[-1]) > 100
    await db.execute("UPDATE trading.positions SET realized_pnl = realized_pnl + 1000")
    await db.execute("UPDATE trading.orders SET fill_count = fill_count + 1 WHERE order_id < 'o2'")


async def snapshot(db: asyncpg.Connection) -> tuple[Any, ...]:
    """Counts and sums of every live table."""
    row = await db.fetchrow(
        "SELECT (SELECT count(*) FROM trading.trades), (SELECT sum(quantity) FROM trading.trades),"
        " (SELECT sum(fill_count) FROM trading.orders),"
        " (SELECT sum(realized_pnl) FROM trading.positions),"
        " (SELECT count(*) FROM trading.positions),"
        " (SELECT max(stream_seq) FROM trading.checkpoints)"
    )
    assert row is not None
    return tuple(row.values())


@pytest.mark.slow
async def test_replay_repairs_a_corrupted_store_while_publishing_and_reading(
    isolated_fleet: Fleet, trading_dsns: tuple[str, str], tmp_path: Path
) -> None:
    streams = topology_file(tmp_path)
    fills, published = fill_events(3000, bots=4)
    split = len(published) // 3
    nc, js = await stream_loaded(isolated_fleet.nats.url, streams, published[:split])
    env = replay_env(isolated_fleet, trading_dsns, streams)
    db = await asyncpg.connect(trading_dsns[0])
    reader_conn = await asyncpg.connect(trading_dsns[1])
    worker = start_worker("trade-recorder", env, tmp_path / "worker.log")
    try:
        await wait_until(lambda: drained(js, db, split), 90, "first half applied")
        await corrupt(db)
        corrupted = await snapshot(db)

        publisher = Publisher(js, published[split:], chunk=5, pause_s=0.2)
        reader = Reader(lambda: reader_conn.fetchrow(_READ))
        reader.start()
        publisher.start()
        result = await run_fleet(
            ["replay", "trade-recorder", "--yes", "--batch-size", "200"], env, timeout=180
        )
        assert result.code == 0, result.err + result.out
        assert publisher.published < len(published) - split, "still publishing at the swap"
        assert "swapped PostgreSQL schema trading" in result.out
        await publisher.finish()
        await wait_until(lambda: drained(js, db, len(published)), 90, "every event applied")
        await reader.stop()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        await nc.close()
        await reader_conn.close()

    try:
        # Every fill once, orders and positions as computed from the fills in stream order.
        await check_books(db, fills)
        assert await snapshot(db) != corrupted
        # The live worker kept its grants on the new tables (it wrote through the swap).
        for table in ("trades", "orders", "positions", "checkpoints"):
            assert await db.fetchval(
                "SELECT has_table_privilege('trade_recorder', $1, 'INSERT')", f"trading.{table}"
            )
        left = await db.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'trading_%'")
        assert left == 0, "no shadow or old schema left behind"
    finally:
        await db.close()
    assert reader.errors == [], reader.errors[:3]
    # Readers saw the corrupted state, then only whole rebuilt states with growing counts.
    whole = [v for v in reader.values if v["trades"] == v["order_fills"]]
    assert whole, "the reader saw the rebuilt state"
    first_whole = reader.values.index(whole[0])
    after = reader.values[first_whole:]
    assert all(v["trades"] == v["order_fills"] for v in after), "a half state was visible"
    assert [v["trades"] for v in after] == sorted(v["trades"] for v in after)


@pytest.mark.slow
async def test_replay_killed_midway_leaves_live_and_the_next_one_cleans_up(
    isolated_fleet: Fleet, trading_dsns: tuple[str, str], tmp_path: Path
) -> None:
    streams = topology_file(tmp_path)
    # Enough events that the replay at batches of 10 is still building when it is frozen.
    fills, published = fill_events(15000, bots=4)
    nc, js = await stream_loaded(isolated_fleet.nats.url, streams, published)
    env = replay_env(isolated_fleet, trading_dsns, streams)
    db = await asyncpg.connect(trading_dsns[0])
    worker = start_worker("trade-recorder", env, tmp_path / "worker.log")
    try:
        await wait_until(lambda: drained(js, db, len(published)), 120, "stream applied")
        before = await snapshot(db)

        replay = await start_fleet(
            ["replay", "trade-recorder", "--yes", "--batch-size", "10"], env, tmp_path / "r1.log"
        )

        async def shadow_rows() -> int:
            exists = await db.fetchval("SELECT to_regclass('trading_replay.trades')")
            if exists is None:
                return 0
            return int(await db.fetchval("SELECT count(*) FROM trading_replay.trades"))

        await wait_until(lambda: _at_least(shadow_rows, 500), 60, "the replay half way")
        # Frozen while the second replay runs: it keeps its lock and cannot finish.
        os.kill(replay.pid, signal.SIGSTOP)
        frozen_at = await shadow_rows()
        second = await run_fleet(["replay", "trade-recorder", "--yes"], env)
        assert second.code == 2, second.err
        assert f"pid {replay.pid}" in second.err, second.err
        assert second.err.count("\n") == 2, second.err
        assert "Traceback" not in second.err

        os.kill(replay.pid, signal.SIGKILL)
        await replay.wait()
        assert 0 < frozen_at < len(fills), "the kill landed before the swap"
        assert await snapshot(db) == before, "live untouched by the killed replay"

        result = await run_fleet(["replay", "trade-recorder", "--yes"], env)
        assert result.code == 0, result.err + result.out
        assert "removed the shadow schema trading_replay" in result.out + result.err
        await check_books(db, fills)
        assert await snapshot(db) == before
        assert await db.fetchval("SELECT to_regnamespace('trading_replay')") is None
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        await nc.close()
        await db.close()


@pytest.mark.slow
async def test_dry_run_reports_corruption_and_swaps_nothing(
    isolated_fleet: Fleet, trading_dsns: tuple[str, str], tmp_path: Path
) -> None:
    streams = topology_file(tmp_path)
    _, published = fill_events(900, bots=3)
    nc, js = await stream_loaded(isolated_fleet.nats.url, streams, published)
    env = replay_env(isolated_fleet, trading_dsns, streams)
    db = await asyncpg.connect(trading_dsns[0])
    worker = start_worker("trade-recorder", env, tmp_path / "worker.log")
    try:
        await wait_until(lambda: drained(js, db, len(published)), 90, "stream applied")
        healthy = await run_fleet(["replay", "trade-recorder", "--dry-run"], env)
        assert healthy.code == 0, healthy.err
        assert "live matches the replay" in healthy.out, healthy.out
        assert "DIFFERENT" not in healthy.out

        await corrupt(db)
        corrupted = await snapshot(db)
        sick = await run_fleet(["replay", "trade-recorder", "--dry-run"], env)
        assert sick.code == 0, sick.err
        differ = {line.split()[0] for line in sick.out.splitlines() if "DIFFERENT" in line}
        assert differ == {"trades", "orders", "positions"}, sick.out
        assert "3 of 3 tables differ; nothing swapped" in sick.out
        assert await snapshot(db) == corrupted
        assert await db.fetchval("SELECT to_regnamespace('trading_replay')") is None
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        await nc.close()
        await db.close()


async def test_bad_input_is_one_line_and_exit_2(
    isolated_fleet: Fleet, trading_dsns: tuple[str, str], tmp_path: Path
) -> None:
    streams = topology_file(tmp_path)
    _, published = fill_events(30, bots=1)
    nc, _ = await stream_loaded(isolated_fleet.nats.url, streams, published)
    await nc.close()
    env = replay_env(isolated_fleet, trading_dsns, streams)
    cases = {
        ("replay", "no-such-worker"): "unknown worker 'no-such-worker'",
        ("replay", "backup-runner"): "has no replayable store",
        ("replay", "trade-recorder", "--yes", "--from-seq", "9999"): (
            f"--from-seq 9999 is outside stream TRADES, which holds sequences 1..{len(published)}"
        ),
        ("replay", "trade-recorder", "--yes", "--from-seq", "5"): "partial rebuild",
        ("replay", "trade-recorder", "--yes", "--since", "1h"): "partial rebuild",
        ("replay", "trade-recorder", "--all", "--since", "1h"): "cannot be combined",
    }
    # One after the other: concurrent replays of one worker would meet its lock.
    for args, expected in cases.items():
        result = await run_fleet(args, env)
        assert result.code == 2, (args, result.err)
        lines = result.err.strip().splitlines()
        assert len(lines) == 2, (args, result.err)
        assert lines[1].startswith("fix: "), (args, result.err)
        assert expected in lines[0], (args, lines[0])
        assert "Traceback" not in result.err


async def _at_least(probe: Any, n: int) -> bool:
    return bool(await probe() >= n)


@pytest.mark.slow
async def test_replay_of_a_partitioned_worker_covers_every_partition(
    isolated_fleet: Fleet, trading_dsns: tuple[str, str], tmp_path: Path
) -> None:
    streams = topology_file(tmp_path, partitions=2)
    fills, published = fill_events(1500, bots=6)
    nc, js = await stream_loaded(isolated_fleet.nats.url, streams, published)
    env = replay_env(isolated_fleet, trading_dsns, streams)
    db = await asyncpg.connect(trading_dsns[0])
    workers = [
        start_worker("trade-recorder", env, tmp_path / f"p{k}.log", partition=k) for k in (0, 1)
    ]
    try:
        await wait_until(
            lambda: partitions_drained(js, "TRADES", "trade-recorder", 2), 90, "both drained"
        )
        await corrupt(db)
        one = await run_fleet(["replay", "trade-recorder", "--yes", "--partition", "1"], env)
        assert one.code == 2, one.err
        assert "partial rebuild of PostgreSQL schema trading would be wrong" in one.err

        result = await run_fleet(["replay", "trade-recorder", "--yes"], env)
        assert result.code == 0, result.err + result.out
        assert f"at seq {len(published):,}" in result.out
        await check_books(db, fills)
        checkpoints = dict(await db.fetch("SELECT name, stream_seq FROM trading.checkpoints"))
        assert checkpoints["trade-recorder-p0"] == len(published)
        assert checkpoints["trade-recorder-p1"] == len(published)
        again = await run_fleet(["replay", "trade-recorder", "--dry-run"], env)
        assert "live matches the replay" in again.out, again.out + again.err

        # Both partition workers go on over the new tables.
        more_fills, more = fill_events(1800, bots=6)
        await EventPublisher(js).publish_many(more[len(published) :])
        total = len(more)
        await wait_until(
            lambda: partitions_drained(js, "TRADES", "trade-recorder", 2), 90, "more drained"
        )
        assert await db.fetchval("SELECT count(*) FROM trading.trades") == len(more_fills)
        assert total > len(published)
    finally:
        kill_leftovers(workers)
        await nc.close()
        await db.close()


@pytest.mark.slow
async def test_ctrl_c_midway_removes_the_shadow_and_leaves_live(
    isolated_fleet: Fleet, trading_dsns: tuple[str, str], tmp_path: Path
) -> None:
    streams = topology_file(tmp_path)
    # Enough events that the replay (about 2k events/s at batches of 10) is still
    # building when the test sees its first rows.
    fills, published = fill_events(15000, bots=4)
    nc, js = await stream_loaded(isolated_fleet.nats.url, streams, published)
    env = replay_env(isolated_fleet, trading_dsns, streams)
    db = await asyncpg.connect(trading_dsns[0])
    worker = start_worker("trade-recorder", env, tmp_path / "worker.log")
    log = tmp_path / "replay.log"
    try:
        await wait_until(lambda: drained(js, db, len(published)), 120, "stream applied")
        before = await snapshot(db)
        replay = await start_fleet(
            ["replay", "trade-recorder", "--yes", "--batch-size", "10"], env, log
        )

        async def shadow_rows() -> int:
            if await db.fetchval("SELECT to_regclass('trading_replay.trades')") is None:
                return 0
            return int(await db.fetchval("SELECT count(*) FROM trading_replay.trades"))

        await wait_until(lambda: _at_least(shadow_rows, 300), 60, "the replay under way")
        # Frozen while it is checked to be midway, so the Ctrl-C lands before the swap.
        os.kill(replay.pid, signal.SIGSTOP)
        # Still building: the shadow exists (after the swap it is gone) and is not full.
        assert 0 < await shadow_rows() < len(fills), "the replay was still building"
        replay.send_signal(signal.SIGINT)
        os.kill(replay.pid, signal.SIGCONT)
        assert await asyncio.wait_for(replay.wait(), 30) == 130, log.read_text()
        assert "interrupted: the live store is untouched" in log.read_text()
        assert "Traceback" not in log.read_text()
        assert await db.fetchval("SELECT to_regnamespace('trading_replay')") is None
        assert await snapshot(db) == before
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        await nc.close()
        await db.close()
