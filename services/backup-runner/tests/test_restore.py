"""Restore drill: a PostgreSQL backup loaded into an empty database equals the original."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import asyncpg
import nats
import pytest

from backup_runner.manifest import read_manifest
from backup_runner.objects import MinioObjectStore
from backup_runner.runner import BackupRequest, BackupRunner
from backup_runner.settings import BackupRunnerSettings
from fleet_testing.servers import NatsServer, PostgresServer

from .conftest import SCHEMAS, settings_env

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


@pytest.fixture
def empty_database(postgres_server: PostgresServer) -> Iterator[str]:
    name = f"restore_{uuid.uuid4().hex[:12]}"
    dsn = postgres_server.create_database(name)
    yield dsn
    postgres_server.drop_database(name)


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
    assert "schemas lifecycle, trading" in loaded.stdout
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
