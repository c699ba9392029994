"""The restore drill on real servers: the fleet's workers over a mixed stream, every store
backed up, PostgreSQL and MongoDB restored into empty servers and equal to the originals,
then the workers catch the restored stores up from their restored positions to exactly the
live stores."""

from __future__ import annotations

import asyncio
import hashlib
import signal
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest
from bson import json_util
from nats.js.client import JetStreamContext
from pymongo import AsyncMongoClient

from backup_runner.app import object_store
from backup_runner.restore_mongodb import restore_mongodb
from backup_runner.restore_postgres import restore_postgres
from backup_runner.runner import BackupRequest, BackupRunner, find_pg_dump
from backup_runner.settings import BackupRunnerSettings
from bot_lifecycle.store import ensure_roles as ensure_lifecycle_roles
from fleet_events import Event
from fleet_pgmigrate import dsn_with
from fleet_runtime.dev import worker_env
from fleet_runtime.publisher import EventPublisher
from fleet_runtime.simulation import MarketSimulator
from fleet_runtime.topology import apply, load_topology
from fleet_runtime.workers import get_worker
from fleet_testing import Fleet
from fleet_testing.servers import PostgresServer, S3Server
from fleet_testing.waiting import wait_until
from fleet_testing.workerprocs import kill_leftovers, start_worker
from trade_recorder.store import ensure_roles as ensure_trading_roles

ROOT = Path(__file__).resolve().parents[1]
STREAMS = ROOT / "streams.yaml"
PROJECTIONS = ("trade-recorder", "bot-lifecycle", "analytics-projector")
DATABASE = "tradefleet"
MONGO_DATABASE = "tradefleet_analytics"
# Recent market time: price history and the audit log expire by TTL on the server.
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)

# Every column but identity ids and now()-stamped ones: those differ between a store built
# once and one restored and then caught up (as in `fleet replay --dry-run`).
_COLUMNS = """
SELECT column_name FROM information_schema.columns
WHERE table_schema = $1 AND table_name = $2
  AND ($3 OR (is_identity = 'NO' AND coalesce(column_default, '') NOT LIKE '%now()%'))
ORDER BY ordinal_position
"""


def traffic(sim: MarketSimulator, steps: range) -> list[Event[Any]]:
    """Bot, fill and tick events, 40 s of market time per step (so candles close)."""
    events: list[Event[Any]] = []
    for n in steps:
        events += sim.step(60, now=T0 + timedelta(seconds=40 * n))
    return events


async def pg_digests(dsn: str, *, whole_rows: bool) -> dict[str, tuple[int, str]]:
    """Per table of the worker schemas: row count and an md5 of its rows in order."""
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname IN "
            "('lifecycle', 'trading') ORDER BY 1, 2"
        )
        found = {}
        for schema, table in tables:
            if table == "schema_migrations" and not whole_rows:
                continue
            cols = [r[0] for r in await conn.fetch(_COLUMNS, schema, table, whole_rows)]
            row = "ROW(" + ", ".join(f'"{c}"' for c in cols) + ")::text"
            got = await conn.fetchrow(
                f"SELECT count(*), md5(coalesce(string_agg({row}, '|' ORDER BY {row}), '')) "
                f'FROM "{schema}"."{table}"'
            )
            found[f"{schema}.{table}"] = (got[0], got[1])
        return found
    finally:
        await conn.close()


async def mongo_digests(url: str) -> dict[str, tuple[int, str]]:
    """Per collection: document count and a sha256 of its documents as canonical JSON."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(url)
    try:
        db = client[MONGO_DATABASE]
        found = {}
        for name in sorted(await db.list_collection_names()):
            docs = [
                json_util.dumps(d, json_options=json_util.CANONICAL_JSON_OPTIONS, sort_keys=True)
                async for d in db[name].find({})
            ]
            digest = hashlib.sha256("\n".join(sorted(docs)).encode()).hexdigest()
            found[name] = (len(docs), digest)
        return found
    finally:
        await client.close()


async def drained(js: JetStreamContext, durables: list[tuple[str, str]]) -> bool:
    for stream, durable in durables:
        info = await js.consumer_info(stream, durable)
        if info.num_pending or info.num_ack_pending:
            return False
    return True


async def settled(js: JetStreamContext, durables: list[tuple[str, str]]) -> None:
    """Wait until every durable has acked everything and MARKET stops growing (the
    candles market-ingest publishes are consumed by analytics-projector)."""
    seen: list[int] = []

    async def still() -> bool:
        seen.append((await js.stream_info("MARKET")).state.last_seq)
        return await drained(js, durables) and len(seen) > 2 and seen[-1] == seen[-3]

    await wait_until(still, 120, "every worker drained")


@pytest.mark.slow
async def test_backup_restore_into_empty_servers_then_catch_up_equals_live(
    isolated_fleet: Fleet, s3_server: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await asyncio.to_thread(isolated_fleet.start, "nats", "postgres", "mongo", "redis")
    fleet_env = {
        **isolated_fleet.env(),
        **s3_server.env(),
        "FLEET_S3_BUCKET": f"drill-{uuid.uuid4().hex[:10]}",
    }
    topology = load_topology(STREAMS)
    durables = [
        (d.stream, d.name)
        for w in (*PROJECTIONS, "market-ingest")
        for d in topology.durables_for(w)
    ]
    nc = await nats.connect(isolated_fleet.nats.url)
    js = nc.jetstream()
    await apply(js, topology)
    envs = {
        name: await worker_env(get_worker(name), fleet_env, STREAMS)
        for name in (*PROJECTIONS, "market-ingest", "backup-runner")
    }
    for name, value in envs["backup-runner"].items():
        if name.startswith(("BACKUP_RUNNER_", "FLEET_")):
            monkeypatch.setenv(name, value)
    settings = BackupRunnerSettings()
    workers = [
        start_worker(name, envs[name], tmp_path / f"{name}.log")
        for name in (*PROJECTIONS, "market-ingest")
    ]
    sim = MarketSimulator(seed=11, bots=4)
    publisher = EventPublisher(js)
    try:
        await publisher.publish_many(sim.opening(now=T0) + traffic(sim, range(6)))
        await settled(js, durables)

        # Back up everything while the fleet idles, and record what the live stores hold.
        runner = BackupRunner(settings, object_store(settings), js)
        done = {
            target: await runner.run(
                BackupRequest(f"drill-{target}-{uuid.uuid4().hex[:6]}", target, None, "drill")
            )
            for target in ("postgres", "mongodb", "stream")
        }
        live_pg = await pg_digests(_admin_dsn(fleet_env), whole_rows=True)
        live_mongo = await mongo_digests(fleet_env["FLEET_MONGO_URL"])
        assert live_pg["trading.trades"][0] > 50
        assert live_pg["lifecycle.bots"][0] == 4
        assert live_mongo["price_history"][0] > 0, "candles reached analytics-projector"

        # Empty servers; the worker roles exist there as on any cluster (roles.sql).
        pg2 = await asyncio.to_thread(isolated_fleet.launch, "postgres", name="restored-pg")
        mongo2 = await asyncio.to_thread(isolated_fleet.launch, "mongo", name="restored-mongo")
        assert isinstance(pg2, PostgresServer)
        restored_env = {**fleet_env, **pg2.env(), **mongo2.env()}
        restored_dsn = pg2.create_database(DATABASE)
        await ensure_trading_roles(restored_dsn)
        await ensure_lifecycle_roles(restored_dsn)
        # What `fleet backup restore ID --into URL` runs (tested as a command elsewhere).
        store = object_store(settings)
        pg_restore = str(Path(find_pg_dump(settings.pg_bin_dir)).with_name("pg_restore"))
        loaded = await asyncio.to_thread(
            restore_postgres,
            done["postgres"].manifest,
            store,
            dsn=restored_dsn,
            pg_restore=pg_restore,
            force=False,
        )
        assert loaded.parts == ["lifecycle", "trading"]
        await asyncio.to_thread(
            restore_mongodb,
            done["mongodb"].manifest,
            store,
            url=mongo2.url,
            database=None,
            force=False,
        )
        assert await pg_digests(restored_dsn, whole_rows=True) == live_pg
        assert await mongo_digests(mongo2.url) == live_mongo

        # The fleet goes on; then the live projections stop.
        await publisher.publish_many(traffic(sim, range(6, 9)))
        await settled(js, durables)
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            proc.wait(timeout=30)
        final_pg = await pg_digests(_admin_dsn(fleet_env), whole_rows=False)
        final_mongo = await mongo_digests(fleet_env["FLEET_MONGO_URL"])
        assert final_pg != await pg_digests(restored_dsn, whole_rows=False)

        # Catch up from the restored positions: the projections' durables start again
        # from the stream's first message, and each store's checkpoints skip what the
        # restored data already holds.
        for stream, durable in durables:
            if not durable.startswith("market-ingest"):
                await js.delete_consumer(stream, durable)
        await apply(js, topology)
        workers = [
            start_worker(
                name,
                await worker_env(get_worker(name), restored_env, STREAMS),
                tmp_path / f"{name}-restored.log",
            )
            for name in PROJECTIONS
        ]
        await settled(js, [d for d in durables if not d[1].startswith("market-ingest")])
        assert await pg_digests(restored_dsn, whole_rows=False) == final_pg
        assert await mongo_digests(mongo2.url) == final_mongo
    finally:
        kill_leftovers(workers)
        await nc.close()


def _admin_dsn(fleet_env: Mapping[str, str]) -> str:
    return dsn_with(fleet_env["FLEET_POSTGRES_DSN"], database=DATABASE)
