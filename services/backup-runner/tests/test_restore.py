"""Restore drills: PostgreSQL and MongoDB backups loaded into empty targets equal the originals."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from typing import Any

import asyncpg
import nats
from bson import Decimal128
from pymongo import MongoClient

from backup_runner.manifest import read_manifest
from backup_runner.objects import MinioObjectStore
from backup_runner.runner import BackupRequest, BackupRunner
from backup_runner.settings import BackupRunnerSettings
from fleet_testing.servers import MongoServer, NatsServer
from fleet_testing.workerprocs import settings_env

from .conftest import SCHEMAS

TABLES = [f"{schema}.{table}" for schema in SCHEMAS for table in ("checkpoints", "items")]


async def fleet_backup(
    settings: BackupRunnerSettings, *args: str
) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "fleet_runtime.cli", "backup", *args],
        env={**os.environ, **settings_env(settings)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def digests(dsn: str) -> dict[str, tuple[int, str]]:
    """Row count and an md5 of every row in key order, per table."""
    conn = await asyncpg.connect(dsn)
    try:
        found = {}
        for table in TABLES:
            row = await conn.fetchrow(
                f"SELECT count(*) AS n, md5(string_agg(t::text, '|' ORDER BY t::text)) AS d "
                f"FROM {table} t"
            )
            found[table] = (row["n"], row["d"])
        return found
    finally:
        await conn.close()


async def test_restore_drill_equals_the_original_and_refuses_a_non_empty_target(
    settings: BackupRunnerSettings,
    store: MinioObjectStore,
    nats_server: NatsServer,
    worker_database: str,
    empty_database: str,
) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        wanted = BackupRequest(f"drill-{uuid.uuid4().hex[:8]}", "postgres", None, "test")
        await BackupRunner(settings, store, nc.jetstream()).run(wanted)
    finally:
        await nc.close()
    original = await digests(worker_database)
    assert original["lifecycle.items"][0] == 500

    loaded = await fleet_backup(settings, "restore", wanted.backup_id, "--into", empty_database)
    assert loaded.returncode == 0, loaded.stderr
    assert f"restoring {wanted.backup_id}" in loaded.stdout  # the progress bar's label
    assert ": lifecycle, trading (" in loaded.stdout
    assert "postgres.trading.checkpoints" in loaded.stdout
    assert await digests(empty_database) == original

    again = await fleet_backup(settings, "restore", wanted.backup_id, "--into", empty_database)
    assert again.returncode == 2
    assert "error: the restore target is not empty (4 tables" in again.stderr
    assert "Traceback" not in again.stderr
    forced = await fleet_backup(
        settings, "restore", wanted.backup_id, "--into", empty_database, "--force"
    )
    assert forced.returncode == 0, forced.stderr
    assert await digests(empty_database) == original

    # A corrupted dump is refused before pg_restore sees it.
    entry = read_manifest(store, wanted.backup_id).objects[0]
    data = bytearray(b"".join(store.get_chunks(entry.key)))
    data[-10] ^= 0xFF
    store.put_bytes(entry.key, bytes(data))
    refused = await fleet_backup(
        settings, "restore", wanted.backup_id, "--into", empty_database, "--force"
    )
    assert refused.returncode == 2
    assert f"error: {entry.key} does not match its manifest" in refused.stderr


async def test_mongodb_restore_brings_back_documents_and_indexes_exactly(
    settings: BackupRunnerSettings,
    store: MinioObjectStore,
    nats_server: NatsServer,
    mongo_server: MongoServer,
    mongo_database: str,
) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        wanted = BackupRequest(f"mdrill-{uuid.uuid4().hex[:8]}", "mongodb", None, "test")
        await BackupRunner(settings, store, nc.jetstream()).run(wanted)
    finally:
        await nc.close()
    client: MongoClient[Any] = MongoClient(mongo_server.url)
    copy = f"restored_{uuid.uuid4().hex[:8]}"
    try:
        loaded = await fleet_backup(
            settings, "restore", wanted.backup_id, "--into", mongo_server.url, "--database", copy
        )
        assert loaded.returncode == 0, loaded.stderr
        for name in ("prices", "checkpoints"):
            original = list(client[mongo_database][name].find({}, sort=[("_id", 1)]))
            restored = list(client[copy][name].find({}, sort=[("_id", 1)]))
            assert restored == original
            assert len(restored) > 0
        price = client[copy].prices.find_one({"_id": "p7"})
        assert price is not None
        assert price["price"] == Decimal128("7.000000000000000001")
        assert set(client[copy].prices.index_information()) == {"_id_", "by_price"}

        again = await fleet_backup(
            settings, "restore", wanted.backup_id, "--into", mongo_server.url, "--database", copy
        )
        assert again.returncode == 2
        assert f"error: the restore target database '{copy}' is not empty" in again.stderr
    finally:
        client.drop_database(copy)
        client.close()
