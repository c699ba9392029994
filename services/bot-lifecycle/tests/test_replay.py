"""`fleet replay bot-lifecycle` on real NATS and PostgreSQL while the live worker runs."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from fleet_testing import Fleet
from fleet_testing.replaying import Publisher, Reader, run_fleet, start_fleet
from fleet_testing.waiting import wait_until
from fleet_testing.workerprocs import start_worker, stream_loaded

from .test_worker_e2e import (
    BOTS,
    bot_lives,
    check_lifecycles,
    dead_letters,
    topology_file,
    worker_env,
)

# One statement, one snapshot. A whole state has one audit row per applied version.
_READ = """
SELECT (SELECT coalesce(sum(version), 0) FROM lifecycle.bots) AS versions,
       (SELECT count(*) FROM lifecycle.audit_log) AS audited,
       (SELECT count(*) FROM lifecycle.bot_deployments) AS deployments
"""


def replay_env(fleet: Fleet, dsns: tuple[str, str], streams: Path) -> dict[str, str]:
    env = worker_env(fleet, dsns[1], streams)
    env["BOT_LIFECYCLE_OWNER_DSN"] = dsns[0]
    env["BOT_LIFECYCLE_LOG_LEVEL"] = "WARNING"
    return env


async def drained(js: Any, db: asyncpg.Connection, published: int) -> bool:
    info = await js.consumer_info("BOTS", "bot-lifecycle")
    return bool(
        info.num_pending == 0
        and info.num_ack_pending == 0
        and info.delivered.stream_seq == published
    )


async def corrupt(db: asyncpg.Connection) -> None:
    """Delete audit rows and deployments, alter bots, behind the worker's back."""
    await db.execute("DELETE FROM lifecycle.audit_log WHERE bot_id LIKE 'bot-1%'")
    await db.execute("DELETE FROM lifecycle.bot_deployments WHERE bot_id LIKE 'bot-2%'")
    await db.execute("UPDATE lifecycle.bots SET risk_level = 99 WHERE id LIKE 'bot-3%'")


async def snapshot(db: asyncpg.Connection) -> tuple[Any, ...]:
    """Counts and sums of every live table."""
    row = await db.fetchrow(
        "SELECT (SELECT count(*) FROM lifecycle.bots),"
        " (SELECT sum(risk_level) FROM lifecycle.bots),"
        " (SELECT count(*) FROM lifecycle.audit_log), (SELECT count(*) FROM lifecycle.users),"
        " (SELECT count(*) FROM lifecycle.bot_deployments),"
        " (SELECT max(stream_seq) FROM lifecycle.checkpoints)"
    )
    assert row is not None
    return tuple(row.values())


@pytest.mark.slow
async def test_dry_run_then_replay_repairs_while_publishing_and_reading(
    isolated_fleet: Fleet, lifecycle_dsns: tuple[str, str], tmp_path: Path
) -> None:
    streams = topology_file(tmp_path)
    published, refused_ids = bot_lives()
    split = len(published) // 3
    nc, js = await stream_loaded(isolated_fleet.nats.url, streams, published[:split])
    env = replay_env(isolated_fleet, lifecycle_dsns, streams)
    db = await asyncpg.connect(lifecycle_dsns[0])
    reader_conn = await asyncpg.connect(lifecycle_dsns[1])
    worker = start_worker("bot-lifecycle", env, tmp_path / "worker.log")
    try:
        await wait_until(lambda: drained(js, db, split), 90, "first third applied")
        healthy = await run_fleet(["replay", "bot-lifecycle", "--dry-run"], env)
        assert healthy.code == 0, healthy.err
        assert "live matches the replay" in healthy.out, healthy.out

        await corrupt(db)
        corrupted = await snapshot(db)
        sick = await run_fleet(["replay", "bot-lifecycle", "--dry-run"], env)
        assert sick.code == 0, sick.err
        differ = {line.split()[0] for line in sick.out.splitlines() if "DIFFERENT" in line}
        assert differ == {"audit_log", "bot_deployments", "bots"}, sick.out
        assert await snapshot(db) == corrupted

        publisher = Publisher(js, published[split:], chunk=5, pause_s=0.2)
        reader = Reader(lambda: reader_conn.fetchrow(_READ))
        reader.start()
        publisher.start()
        result = await run_fleet(
            ["replay", "bot-lifecycle", "--yes", "--keep-old", "--batch-size", "100"], env
        )
        assert result.code == 0, result.err + result.out
        assert publisher.published < len(published) - split, "still publishing at the swap"
        assert "replaced tables kept as lifecycle_old_" in result.out
        await publisher.finish()
        await wait_until(lambda: drained(js, db, len(published)), 90, "every event applied")
        await reader.stop()
        letters = await dead_letters(js)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        await nc.close()
        await reader_conn.close()

    try:
        # Every bot's whole life once, and the replay dead-lettered nothing a second time.
        await check_lifecycles(db, letters, refused_ids)
        assert await db.fetchval("SELECT max(stream_seq) FROM lifecycle.checkpoints") == len(
            published
        )
        # The role boundary holds on the new tables: the audit log stays append-only.
        assert await db.fetchval(
            "SELECT has_table_privilege('bot_lifecycle', 'lifecycle.audit_log', 'INSERT')"
        )
        assert not await db.fetchval(
            "SELECT has_table_privilege('bot_lifecycle', 'lifecycle.audit_log', 'UPDATE')"
        )
        kept = await db.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'lifecycle_%'")
        assert len(kept) == 1, kept
        old = kept[0][0]
        assert old.startswith("lifecycle_old_")
        # The kept tables are the corrupted ones, as they were at the swap.
        assert await db.fetchval(f'SELECT count(*) FROM "{old}".audit_log') < BOTS * 7
        dropped = await run_fleet(["replay", "bot-lifecycle", "--drop-old"], env)
        assert dropped.code == 0, dropped.err
        assert f"dropped: {old}" in dropped.out
        assert await db.fetchval("SELECT to_regnamespace($1)", old) is None
    finally:
        await db.close()
    assert reader.errors == [], reader.errors[:3]
    whole = [v for v in reader.values if v["versions"] == v["audited"]]
    assert whole, "the reader saw the rebuilt state"
    after = reader.values[reader.values.index(whole[0]) :]
    assert all(v["versions"] == v["audited"] for v in after), "a half state was visible"
    assert [v["audited"] for v in after] == sorted(v["audited"] for v in after)


@pytest.mark.slow
async def test_replay_killed_midway_leaves_live_and_the_next_one_cleans_up(
    isolated_fleet: Fleet, lifecycle_dsns: tuple[str, str], tmp_path: Path
) -> None:
    streams = topology_file(tmp_path)
    published, refused_ids = bot_lives()
    nc, js = await stream_loaded(isolated_fleet.nats.url, streams, published)
    env = replay_env(isolated_fleet, lifecycle_dsns, streams)
    db = await asyncpg.connect(lifecycle_dsns[0])
    worker = start_worker("bot-lifecycle", env, tmp_path / "worker.log")
    try:
        await wait_until(lambda: drained(js, db, len(published)), 120, "stream applied")
        before = await snapshot(db)
        replay = await start_fleet(
            ["replay", "bot-lifecycle", "--yes", "--batch-size", "5"], env, tmp_path / "r1.log"
        )

        async def shadow_rows() -> int:
            if await db.fetchval("SELECT to_regclass('lifecycle_replay.audit_log')") is None:
                return 0
            return int(await db.fetchval("SELECT count(*) FROM lifecycle_replay.audit_log"))

        await wait_until(lambda: _at_least(shadow_rows, 300), 60, "the replay under way")
        os.kill(replay.pid, signal.SIGSTOP)
        frozen_at = await shadow_rows()
        os.kill(replay.pid, signal.SIGKILL)
        await replay.wait()
        assert frozen_at < BOTS * 7, "the kill landed before the swap"
        assert await snapshot(db) == before, "live untouched by the killed replay"

        result = await run_fleet(["replay", "bot-lifecycle", "--yes"], env)
        assert result.code == 0, result.err + result.out
        assert "removed the shadow schema lifecycle_replay" in result.out + result.err
        assert await snapshot(db) == before
        assert await db.fetchval("SELECT to_regnamespace('lifecycle_replay')") is None
        await check_lifecycles(db, await dead_letters(js), refused_ids)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
        await nc.close()
        await db.close()


async def _at_least(probe: Any, n: int) -> bool:
    return bool(await probe() >= n)
