"""Start-up as an operator sees it: waiting for servers, giving up, and permanent errors.

Each test runs a worker's console script and reads what it prints.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import nats
from redis.asyncio import Redis

from fleet_runtime.topology import apply, load_topology
from fleet_testing import Fleet
from fleet_testing.waiting import wait_until

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[4]


def _env(**values: str) -> dict[str, str]:
    """The test's environment without any FLEET_ or worker variable, plus ``values``."""
    prefixes = ("FLEET_", "TRADE_RECORDER_", "MARKET_INGEST_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return {**env, **values}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _records(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``argv`` in the background, its output going to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=out)


async def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, timeout=90, check=False, env=env
    )


async def _apply_topology(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        await apply(nc.jetstream(), load_topology(REPO / "streams.yaml"))
    finally:
        await nc.close()


async def test_a_worker_waits_for_nats_and_starts_by_itself(
    isolated_fleet: Fleet, tmp_path: Path
) -> None:
    server = isolated_fleet.nats
    await _apply_topology(server.url)
    server.stop()
    log = tmp_path / "worker.log"
    env = _env(
        MARKET_INGEST_NATS_URL=server.url,
        MARKET_INGEST_REDIS_URL=isolated_fleet.redis.url,
        MARKET_INGEST_STREAMS_FILE=str(REPO / "streams.yaml"),
        MARKET_INGEST_LOG_FORMAT="json",
    )
    worker = _spawn([str(BIN / "market-ingest")], env, log)
    try:

        def waiting_lines() -> list[dict[str, object]]:
            return [r for r in _records(log.read_text()) if r["event"] == "waiting_for_server"]

        await wait_until(lambda: len(waiting_lines()) >= 3, 30, "three waiting_for_server lines")
        server.start()
        await wait_until(lambda: "worker_ready" in log.read_text(), 30, "the worker ready")
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait, 30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    output = log.read_text()
    assert "Traceback" not in output
    lines = waiting_lines()
    assert {line["server"] for line in lines} == {"NATS"}
    assert {line["setting"] for line in lines} == {"MARKET_INGEST_NATS_URL"}
    assert {line["address"] for line in lines} == {server.url}
    # Capped backoff: the waits grow.
    waits = [float(str(line["retry_in_s"])) for line in lines]
    assert waits[:3] == sorted(waits[:3])
    assert waits[2] > waits[0]
    reached = [r["server"] for r in _records(output) if r["event"] == "server_reached"]
    assert reached[:1] == ["NATS"]


async def test_nats_that_never_comes_gives_up_with_the_same_line() -> None:
    port = _free_port()
    env = _env(
        FLEET_NATS_URL=f"nats://fleet:s3cret@127.0.0.1:{port}",
        MARKET_INGEST_STARTUP_TIMEOUT_S="1.5",
        MARKET_INGEST_LOG_FORMAT="json",
    )
    proc = await _run([str(BIN / "market-ingest")], env)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "s3cret" not in proc.stderr
    records = _records(proc.stderr)
    last = records[-1]
    assert last["event"] == "server_unreachable"
    assert last["setting"] == "FLEET_NATS_URL"
    assert last["address"] == f"nats://fleet@127.0.0.1:{port}"
    assert "ConnectionRefusedError" in str(last["error"])
    assert any(r["event"] == "waiting_for_server" for r in records)


def _one_error_line(stderr: str) -> str:
    """The one line a permanent error prints (the log lines before it are JSON)."""
    assert "Traceback" not in stderr
    plain = [line for line in stderr.splitlines() if not line.startswith("{")]
    assert len(plain) == 1, stderr
    assert plain[0].startswith("error: ")
    return plain[0]


async def test_nats_refusing_the_password_stops_at_once(tmp_path: Path) -> None:
    port = _free_port()
    server = _spawn(
        [str(BIN / "nats-server"), "-a", "127.0.0.1", "-p", str(port), "--user", "fleet",
         "--pass", "right", "-sd", str(tmp_path / "js")],
        dict(os.environ),
        tmp_path / "nats.log",
    )  # fmt: skip
    try:

        def listening() -> bool:
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", port)) == 0

        await wait_until(listening, 10, "nats-server listening")
        env = _env(
            MARKET_INGEST_NATS_URL=f"nats://fleet:wrong@127.0.0.1:{port}",
            MARKET_INGEST_LOG_FORMAT="json",
        )
        proc = await _run([str(BIN / "market-ingest")], env)
    finally:
        server.terminate()
        server.wait(10)
    assert proc.returncode == 2, proc.stderr
    line = _one_error_line(proc.stderr)
    assert "refused the connection" in line
    assert "fix: put the right user and password (or token) in MARKET_INGEST_NATS_URL" in line
    assert "wrong" not in line


async def test_a_missing_postgres_role_names_roles_sql(isolated_fleet: Fleet) -> None:
    dsn = isolated_fleet.postgres.dsn().replace("postgres@", "no_such_role@", 1)
    env = _env(TRADE_RECORDER_POSTGRES_DSN=dsn, TRADE_RECORDER_LOG_FORMAT="json")
    proc = await _run([str(BIN / "trade-recorder")], env)
    assert proc.returncode == 2, proc.stderr
    line = _one_error_line(proc.stderr)
    assert 'role "no_such_role" does not exist' in line
    assert "deploy/postgres/roles.sql" in line
    assert "TRADE_RECORDER_POSTGRES_DSN" in line


async def test_a_wrong_postgres_password_names_the_setting(isolated_fleet: Fleet) -> None:
    pg = isolated_fleet.postgres
    pg.psql("CREATE ROLE pw_worker LOGIN PASSWORD 'right'")
    hba = pg.data_dir / "pg_hba.conf"
    hba.write_text("host all pw_worker 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    pg.psql("SELECT pg_reload_conf()")
    dsn = pg.dsn().replace("postgres@", "pw_worker:wrong@", 1)
    env = _env(FLEET_POSTGRES_DSN=dsn, TRADE_RECORDER_LOG_FORMAT="json")
    proc = await _run([str(BIN / "trade-recorder")], env)
    assert proc.returncode == 2, proc.stderr
    line = _one_error_line(proc.stderr)
    assert "password authentication failed" in line
    assert "fix: put the role's password in FLEET_POSTGRES_DSN" in line
    assert ":wrong@" not in proc.stderr


async def test_a_missing_migration_names_the_migrate_command(
    isolated_fleet: Fleet, postgres_database: str
) -> None:
    await _apply_topology(isolated_fleet.nats.url)
    env = _env(
        **isolated_fleet.nats.env(),
        TRADE_RECORDER_NATS_URL=isolated_fleet.nats.url,
        TRADE_RECORDER_STREAMS_FILE=str(REPO / "streams.yaml"),
        TRADE_RECORDER_POSTGRES_DSN=postgres_database,
        TRADE_RECORDER_LOG_FORMAT="json",
    )
    proc = await _run([str(BIN / "trade-recorder")], env)
    assert proc.returncode == 2, proc.stderr
    line = _one_error_line(proc.stderr)
    assert "schema trading is not migrated" in line
    assert "fix: run `trade-recorder migrate` with TRADE_RECORDER_OWNER_DSN" in line


async def test_redis_refusing_the_password_stops_at_once(
    isolated_fleet: Fleet, tmp_path: Path
) -> None:
    await _apply_topology(isolated_fleet.nats.url)
    port = _free_port()
    redis = _spawn(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--requirepass", "right",
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        dict(os.environ),
        tmp_path / "redis.log",
    )  # fmt: skip
    try:

        def listening() -> bool:
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", port)) == 0

        await wait_until(listening, 10, "redis-server listening")
        env = _env(
            **isolated_fleet.nats.env(),
            MARKET_INGEST_STREAMS_FILE=str(REPO / "streams.yaml"),
            MARKET_INGEST_REDIS_URL=f"redis://:wrong@127.0.0.1:{port}/0",
            MARKET_INGEST_LOG_FORMAT="json",
        )
        proc = await _run([str(BIN / "market-ingest")], env)
    finally:
        redis.terminate()
        redis.wait(10)
    assert proc.returncode == 2, proc.stderr
    line = _one_error_line(proc.stderr)
    assert "Redis refused the credentials" in line
    assert "fix: put the right password in MARKET_INGEST_REDIS_URL" in line
    assert ":wrong@" not in proc.stderr


async def test_a_redis_that_evicts_keys_is_refused_with_the_policy_named(
    isolated_fleet: Fleet,
) -> None:
    await _apply_topology(isolated_fleet.nats.url)
    redis = isolated_fleet.redis
    client = Redis.from_url(redis.url)
    try:
        await client.config_set("maxmemory-policy", "allkeys-lru")
    finally:
        await client.aclose()
    env = _env(
        FLEET_NATS_URL=isolated_fleet.nats.url,
        MARKET_INGEST_STREAMS_FILE=str(REPO / "streams.yaml"),
        MARKET_INGEST_REDIS_URL=redis.url,
        MARKET_INGEST_LOG_FORMAT="json",
    )
    proc = await _run([str(BIN / "market-ingest")], env)
    assert proc.returncode == 2, proc.stderr
    line = _one_error_line(proc.stderr)
    assert "maxmemory-policy allkeys-lru" in line
    assert "fix: set maxmemory-policy noeviction" in line


async def test_a_topology_not_applied_names_the_apply_command(isolated_fleet: Fleet) -> None:
    env = _env(
        **isolated_fleet.nats.env(),
        FLEET_REDIS_URL=isolated_fleet.redis.url,
        MARKET_INGEST_STREAMS_FILE=str(REPO / "streams.yaml"),
        MARKET_INGEST_LOG_FORMAT="json",
    )
    proc = await _run([str(BIN / "market-ingest")], env)
    assert proc.returncode == 2, proc.stderr
    line = _one_error_line(proc.stderr)
    assert "consumer 'market-ingest' on stream 'MARKET' does not exist" in line
    assert "run `fleet topology apply`" in line
