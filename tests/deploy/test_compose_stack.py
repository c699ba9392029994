"""`docker compose up` brings the whole stack up and a published trade reaches PostgreSQL.

Needs a Docker engine with the compose plugin; skipped with the reason otherwise (the
build machines have none: `fleet deploy check` is what runs there).
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import shutil
import subprocess
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
import nats
import pytest

from fleet_events import Side, TradeExecuted, new_event
from fleet_runtime.publisher import EventPublisher
from fleet_testing import free_port
from fleet_testing.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def docker_engine_missing() -> str | None:
    """Why the stack cannot be brought up here, or None when it can."""
    docker = shutil.which("docker")
    if docker is None:
        return "no docker CLI on PATH"
    info = subprocess.run([docker, "info"], capture_output=True, timeout=30, check=False)
    if info.returncode != 0:
        return "`docker info` fails: no Docker engine reachable"
    plugin = subprocess.run(
        [docker, "compose", "version"], capture_output=True, timeout=30, check=False
    )
    if plugin.returncode != 0:
        return "the docker compose plugin is not installed"
    return None


def env_file(directory: Path) -> tuple[Path, dict[str, str]]:
    """.env.example with fresh credentials and free host ports."""
    values: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = secrets.token_hex(16) if value == "CHANGE_ME" else value
    values["MONGO_REPLICA_SET_KEY"] = base64.b64encode(secrets.token_bytes(48)).decode()
    for port in ("NATS_PORT", "NATS_MONITOR_PORT", "POSTGRES_PORT", "MONGO_PORT", "REDIS_PORT",
                 "S3_PORT"):  # fmt: skip
        values[port] = str(free_port())
    path = directory / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path, values


async def publish_and_find_trade(values: dict[str, str]) -> None:
    trade_id = f"smoke-{uuid.uuid4().hex[:12]}"
    event = new_event(
        TradeExecuted(
            trade_id=trade_id,
            order_id="o-smoke",
            bot_id="bot-smoke",
            user_id="u-smoke",
            symbol="BTCUSDT",
            side=Side.BUY,
            quantity=Decimal("0.5"),
            price=Decimal("67000.10"),
            fee=Decimal("0.03"),
            fee_currency="USDT",
            executed_at=datetime.now(UTC),
        ),
        source="compose-smoke-test",
    )
    nc = await nats.connect(f"nats://127.0.0.1:{values['NATS_PORT']}")
    try:
        await EventPublisher(nc.jetstream()).publish(event)
    finally:
        await nc.close()
    conn = await asyncpg.connect(
        host="127.0.0.1",
        port=int(values["POSTGRES_PORT"]),
        user="postgres",
        password=values["POSTGRES_PASSWORD"],
        database="tradefleet",
    )
    try:

        async def recorded() -> bool:
            found = await conn.fetchval(
                "SELECT count(*) FROM trading.trades WHERE trade_id = $1", trade_id
            )
            return bool(found == 1)

        await wait_until(recorded, timeout=60, what=f"trade {trade_id} in trading.trades")
        price = await conn.fetchval(
            "SELECT price FROM trading.trades WHERE trade_id = $1", trade_id
        )
        assert price == Decimal("67000.10")
    finally:
        await conn.close()


def test_the_stack_comes_up_and_records_a_published_trade(tmp_path: Path) -> None:
    missing = docker_engine_missing()
    if missing is not None:
        pytest.skip(missing)
    path, values = env_file(tmp_path)
    project = f"tradefleet-smoke-{uuid.uuid4().hex[:8]}"
    compose = ["docker", "compose", "-p", project, "--project-directory", str(ROOT),
               "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(path)]  # fmt: skip
    try:
        up = subprocess.run(
            [*compose, "up", "-d", "--build", "--wait", "--wait-timeout", "600"],
            capture_output=True,
            text=True,
            timeout=1500,
            check=False,
        )
        assert up.returncode == 0, up.stderr[-4000:]
        asyncio.run(publish_and_find_trade(values))
    finally:
        subprocess.run(
            [*compose, "down", "-v", "--remove-orphans"],
            capture_output=True,
            timeout=300,
            check=False,
        )
