"""`fleet doctor` on a fleet set up as `fleet dev up` does it, then with things broken."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import nats
import pytest

from fleet_runtime.topology import apply, load_topology
from fleet_runtime.workers import discover_workers
from fleet_testing import Fleet

REPO = Path(__file__).resolve().parents[4]
STREAMS = REPO / "streams.yaml"
PREFIXES = (
    "FLEET_",
    "TRADE_RECORDER_",
    "BOT_LIFECYCLE_",
    "MARKET_INGEST_",
    "ANALYTICS_PROJECTOR_",
    "BACKUP_RUNNER_",
)


@pytest.fixture
async def fleet_env(isolated_fleet: Fleet) -> dict[str, str]:
    """A working fleet: topology applied, databases, roles and migrations, worker env."""
    fleet = isolated_fleet.start("nats", "postgres", "redis", "mongo", "s3")
    shared = fleet.env()
    nc = await nats.connect(shared["FLEET_NATS_URL"])
    try:
        await apply(nc.jetstream(), load_topology(STREAMS))
    finally:
        await nc.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIXES)}
    # NATS through the fleet-wide variable: what one environment file for a fleet gives.
    env["FLEET_NATS_URL"] = shared["FLEET_NATS_URL"]
    # `fleet doctor` checks NATS as the admin; the fleet-wide seed directory.
    env["FLEET_NATS_CREDS"] = shared["FLEET_NATS_CREDS"]
    for spec in discover_workers().values():
        if spec.dev_setup is None:
            continue
        env.update(await spec.dev_setup(shared))
        env[spec.name.replace("-", "_").upper() + "_STREAMS_FILE"] = str(STREAMS)
    return env


async def _doctor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "fleet_runtime.cli", "doctor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def _rows(stdout: str, worker: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith(worker + " ")]


async def test_a_healthy_fleet_passes_every_check(fleet_env: dict[str, str]) -> None:
    proc = await _doctor(fleet_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == "all checks passed"
    assert "✗" not in proc.stdout
    workers = ("trade-recorder", "bot-lifecycle", "market-ingest", "analytics-projector")
    for worker in workers:
        rows = _rows(proc.stdout, worker)
        assert any("✓ NATS" in r and "(FLEET_NATS_URL)" in r for r in rows), rows
        assert any("✓ topology has no drift" in r for r in rows), rows
        assert any(f"✓ durables exist: {worker}" in r for r in rows), rows
    assert any(
        "✓ migrations of schema trading applied" in r for r in _rows(proc.stdout, "trade-recorder")
    )
    assert any(
        "✓ migrations of schema lifecycle applied" in r for r in _rows(proc.stdout, "bot-lifecycle")
    )
    assert any("✓ Redis" in r for r in _rows(proc.stdout, "market-ingest"))
    assert any("✓ MongoDB" in r for r in _rows(proc.stdout, "analytics-projector"))
    assert "Traceback" not in proc.stderr


async def test_a_broken_fleet_shows_each_failure_with_its_fix(
    isolated_fleet: Fleet, fleet_env: dict[str, str]
) -> None:
    pg = isolated_fleet.postgres
    env = dict(fleet_env)
    # trade-recorder: a database nobody migrated.
    env["TRADE_RECORDER_POSTGRES_DSN"] = pg.create_database("unmigrated")
    # bot-lifecycle: a role that does not exist.
    env["BOT_LIFECYCLE_POSTGRES_DSN"] = pg.dsn("tradefleet").replace("postgres@", "ghost@", 1)
    # market-ingest: Redis where nothing listens.
    env["MARKET_INGEST_REDIS_URL"] = "redis://127.0.0.1:1/0"
    # analytics-projector: its durable deleted on the server.
    nc = await nats.connect(env["FLEET_NATS_URL"])
    try:
        await nc.jetstream().delete_consumer("TRADES", "analytics-projector")
    finally:
        await nc.close()

    proc = await _doctor(env)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "4 checks failed"

    def failure(worker: str, check: str) -> tuple[str, str]:
        for i, line in enumerate(lines):
            if line.startswith(worker + " ") and f"✗ {check}" in line:
                return line, lines[i + 1].strip()
        raise AssertionError(f"no ✗ {check} for {worker} in:\n{proc.stdout}")

    row, fix = failure("trade-recorder", "migrations of schema trading applied")
    assert fix.startswith("fix: run `trade-recorder migrate` with TRADE_RECORDER_OWNER_DSN")
    row, fix = failure("bot-lifecycle", "PostgreSQL")
    assert 'role "ghost" does not exist' in row
    assert "deploy/postgres/roles.sql" in fix
    row, fix = failure("market-ingest", "Redis")
    assert "(MARKET_INGEST_REDIS_URL)" in row
    assert fix == "fix: start Redis or point MARKET_INGEST_REDIS_URL at it"
    row, fix = failure("analytics-projector", "durables exist")
    assert "analytics-projector on TRADES" in row
    assert "fleet topology apply" in fix


async def test_one_worker_and_nats_down(fleet_env: dict[str, str]) -> None:
    env = {**fleet_env, "MARKET_INGEST_NATS_URL": "nats://127.0.0.1:1"}
    proc = await _doctor(env, "--worker", "market-ingest")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert {line.split()[0] for line in proc.stdout.splitlines()[:-1] if line[0] != " "} == {
        "market-ingest"
    }
    assert "✗ NATS nats://127.0.0.1:1 (MARKET_INGEST_NATS_URL)" in proc.stdout
    assert "fix: start nats-server with JetStream, or point MARKET_INGEST_NATS_URL" in proc.stdout
