"""PostgreSQL adapter of bot-lifecycle: users, bots, deployments, audit log (schema lifecycle).

One transaction per batch: lock the checkpoint row, skip what it covers, read every bot
of the batch ``FOR UPDATE`` with its current and referenced deployments, run the state
machine (``logic.decide``) over the events in stream order, then write each changed bot
and deployment once, one audit row per applied event (unique event id), and the new
checkpoint. An event the state machine refuses raises ``EventRejected`` before anything
is written, so the transaction rolls back and the runtime re-runs the rest cleanly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import asyncpg
from pydantic_core import to_json

from bot_lifecycle import logic
from bot_lifecycle.logic import Applied, Bot, Deployment, Ignored
from bot_lifecycle.transitions import StatusChange
from fleet_events import BotCreated, BotDeployed, BotStarted, BotStatus, BotStopped
from fleet_pgmigrate import (
    Migration,
    ensure_login_role_at,
    migrate_at,
)
from fleet_pgmigrate.pooled import PooledStore
from fleet_runtime.delivery import Batch
from fleet_runtime.errors import EventRejected
from fleet_runtime.logs import get_logger

if TYPE_CHECKING:
    Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]

SCHEMA = "lifecycle"
ROLE = "bot_lifecycle"
MIGRATIONS = "bot_lifecycle.migrations"

log = get_logger("bot_lifecycle.store")

# Set-based writes: a batch's rows are COPied into temporary tables (created once per
# connection, emptied at every commit) and written from there by one statement per table.
# Bound arrays (``unnest($1::text[], ...)``) cost asyncpg about 28 µs of client CPU per
# event in its per-element encoding; COPY records cost a fraction of that. JSON and
# decimals travel as text and are cast in SQL; tags (a ragged text[] per bot) travel as a
# JSON array text each.
_INCOMING = {
    "incoming_bots": (
        "id text, user_id text, name text, type text, description text, config text, "
        "status text, version int, tags text, risk_level int, max_position_size text, "
        "current_deployment_id text, created_at timestamptz, updated_at timestamptz, "
        "deleted_at timestamptz"
    ),
    "incoming_deployments": (
        "id text, bot_id text, bot_version int, runtime text, image text, resources text, "
        "environment text, status text, deployed_at timestamptz, started_at timestamptz, "
        "stopped_at timestamptz, stop_reason text, updated_at timestamptz"
    ),
    "incoming_audit": (
        "event_id uuid, event_type text, bot_id text, user_id text, version int, "
        "old_values text, new_values text, occurred_at timestamptz, stream_seq bigint, "
        "n int"
    ),
}

_UPSERT_BOTS = """
INSERT INTO bots (id, user_id, name, type, description, config, status, version,
    tags, risk_level, max_position_size, current_deployment_id, created_at, updated_at,
    deleted_at)
SELECT id, user_id, name, type, description, config::jsonb, status, version,
    ARRAY(SELECT jsonb_array_elements_text(tags::jsonb)), risk_level,
    max_position_size::numeric, current_deployment_id, created_at, updated_at, deleted_at
FROM incoming_bots
ON CONFLICT (id) DO UPDATE SET
    name = EXCLUDED.name, type = EXCLUDED.type, description = EXCLUDED.description,
    config = EXCLUDED.config, status = EXCLUDED.status, version = EXCLUDED.version,
    tags = EXCLUDED.tags, risk_level = EXCLUDED.risk_level,
    max_position_size = EXCLUDED.max_position_size,
    current_deployment_id = EXCLUDED.current_deployment_id,
    updated_at = EXCLUDED.updated_at, deleted_at = EXCLUDED.deleted_at
"""

_UPSERT_DEPLOYMENTS = """
INSERT INTO bot_deployments (id, bot_id, bot_version, runtime, image, resources,
    environment, status, deployed_at, started_at, stopped_at, stop_reason, updated_at)
SELECT id, bot_id, bot_version, runtime, image, resources::jsonb, environment::jsonb,
    status, deployed_at, started_at, stopped_at, stop_reason, updated_at
FROM incoming_deployments
ON CONFLICT (id) DO UPDATE SET
    status = EXCLUDED.status, started_at = EXCLUDED.started_at,
    stopped_at = EXCLUDED.stopped_at, stop_reason = EXCLUDED.stop_reason,
    updated_at = EXCLUDED.updated_at
"""

# ``n`` (the row's place in the batch) keeps stream order for the audit rows' identity ids.
_INSERT_AUDIT = """
INSERT INTO audit_log (event_id, event_type, bot_id, user_id, version, old_values,
    new_values, occurred_at, stream_seq)
SELECT event_id, event_type, bot_id, user_id, version, old_values::jsonb, new_values::jsonb,
    occurred_at, stream_seq
FROM incoming_audit
ORDER BY n
ON CONFLICT (event_id) DO NOTHING
"""


_NAMING_A_DEPLOYMENT = frozenset({BotDeployed, BotStarted, BotStopped, StatusChange})


def _json(value: Any) -> str:
    """JSON text of a JSON-like value (what ``json.dumps`` gives, less the spaces)."""
    return to_json(value, inf_nan_mode="constants").decode()


async def _create_incoming(conn: asyncpg.Connection) -> None:
    # Outside any transaction, so a rolled-back batch cannot take the tables with it.
    for table, cols in _INCOMING.items():
        await conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {table} ({cols}) ON COMMIT DELETE ROWS"
        )


async def _copy(conn: Conn, table: str, rows: list[tuple[Any, ...]]) -> None:
    await conn.copy_records_to_table(table, records=rows)


@dataclass(frozen=True)
class ApplyResult:
    """What one batch changed."""

    applied: int = 0
    ignored: int = 0
    skipped: int = 0
    """Events at or below the stored checkpoint (applied by an earlier delivery)."""


class BotStore(Protocol):
    """Where bot-lifecycle writes: one idempotent call per batch."""

    async def apply(self, batch: Batch[Any]) -> ApplyResult:
        """Apply the batch's events not yet covered by its checkpoint, atomically.

        Raises ``EventRejected`` for the first event invalid for its bot's state.
        """
        ...


class PostgresBotStore(PooledStore):
    """``BotStore`` on a small asyncpg pool."""

    SCHEMA = SCHEMA
    SERVICE = "bot-lifecycle"
    init_connection = staticmethod(_create_incoming)

    async def apply(self, batch: Batch[Any]) -> ApplyResult:
        """Apply ``batch`` in one transaction (see module docstring)."""
        if not batch.deliveries:
            return ApplyResult()
        async with self.translated_errors(), self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO checkpoints (name, stream_seq) VALUES ($1, 0) "
                "ON CONFLICT (name) DO NOTHING",
                batch.checkpoint,
            )
            applied_seq = await conn.fetchval(
                "SELECT stream_seq FROM checkpoints WHERE name = $1 FOR UPDATE",
                batch.checkpoint,
            )
            todo = batch.after(int(applied_seq))
            result = await _apply(conn, todo)
            await conn.execute(
                "UPDATE checkpoints SET stream_seq = $2, updated_at = now() "
                "WHERE name = $1 AND stream_seq < $2",
                batch.checkpoint,
                batch.last_seq,
            )
            return ApplyResult(result.applied, result.ignored, len(batch) - len(todo))


async def _apply(conn: Conn, batch: Batch[Any]) -> ApplyResult:
    if not batch.deliveries:
        return ApplyResult()
    bot_ids = sorted({d.data.bot_id for d in batch.deliveries})
    bots = {
        r["id"]: _bot_from_row(r)
        for r in await conn.fetch(
            "SELECT * FROM bots WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
            bot_ids,
        )
    }
    wanted = {b.current_deployment_id for b in bots.values() if b.current_deployment_id}
    wanted |= {
        d.data.deployment_id for d in batch.deliveries if type(d.data) in _NAMING_A_DEPLOYMENT
    }
    deployments = {
        r["id"]: _deployment_from_row(r)
        for r in await conn.fetch(
            "SELECT * FROM bot_deployments WHERE id = ANY($1::text[]) FOR UPDATE",
            sorted(wanted),
        )
    }
    changed_bots: dict[str, Bot] = {}
    changed_deployments: dict[str, Deployment] = {}
    audit: list[tuple[Any, ...]] = []
    users: set[str] = set()
    ignored = 0
    for d in batch.deliveries:
        decision = logic.decide(bots.get(d.data.bot_id), deployments, d.event)
        if isinstance(decision, Ignored):
            ignored += 1
            log.info(
                "bot_event_ignored",
                event_id=str(d.event.id),
                bot_id=d.data.bot_id,
                seq=d.stream_seq,
                reason=decision.reason,
            )
            continue
        if not isinstance(decision, Applied):
            raise EventRejected(d.event.id, decision.reason)
        bot = decision.bot
        bots[bot.id] = changed_bots[bot.id] = bot
        for dep in decision.deployments:
            deployments[dep.id] = changed_deployments[dep.id] = dep
        if type(d.data) is BotCreated:
            users.add(bot.user_id)
        audit.append(
            (
                d.event.id,
                d.event.type,
                bot.id,
                bot.user_id,
                d.data.version,
                None if decision.old_values is None else _json(decision.old_values),
                _json(decision.new_values),
                d.event.time,
                d.stream_seq,
                len(audit),
            )
        )
    if users:
        await conn.execute(
            "INSERT INTO users (id) SELECT unnest($1::text[]) ON CONFLICT (id) DO NOTHING",
            sorted(users),
        )
    if changed_bots:
        await _copy(conn, "incoming_bots", [_bot_args(b) for b in changed_bots.values()])
        await conn.execute(_UPSERT_BOTS)
    if changed_deployments:
        await _copy(
            conn,
            "incoming_deployments",
            [_deployment_args(x) for x in changed_deployments.values()],
        )
        await conn.execute(_UPSERT_DEPLOYMENTS)
    if audit:
        await _copy(conn, "incoming_audit", audit)
        await conn.execute(_INSERT_AUDIT)
    return ApplyResult(applied=len(audit), ignored=ignored)


def _bot_from_row(r: asyncpg.Record) -> Bot:
    return Bot(
        id=r["id"],
        user_id=r["user_id"],
        name=r["name"],
        type=r["type"],
        description=r["description"],
        config=json.loads(r["config"]),
        status=BotStatus(r["status"]),
        version=r["version"],
        tags=list(r["tags"]),
        risk_level=r["risk_level"],
        max_position_size=r["max_position_size"],
        current_deployment_id=r["current_deployment_id"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        deleted_at=r["deleted_at"],
    )


def _bot_args(b: Bot) -> tuple[Any, ...]:
    return (
        b.id,
        b.user_id,
        b.name,
        b.type,
        b.description,
        _json(b.config),
        b.status.value,
        b.version,
        _json(b.tags),
        b.risk_level,
        None if b.max_position_size is None else str(b.max_position_size),
        b.current_deployment_id,
        b.created_at,
        b.updated_at,
        b.deleted_at,
    )


def _deployment_from_row(r: asyncpg.Record) -> Deployment:
    return Deployment(
        id=r["id"],
        bot_id=r["bot_id"],
        bot_version=r["bot_version"],
        runtime=r["runtime"],
        image=r["image"],
        resources=json.loads(r["resources"]),
        environment=json.loads(r["environment"]),
        status=r["status"],
        deployed_at=r["deployed_at"],
        started_at=r["started_at"],
        stopped_at=r["stopped_at"],
        stop_reason=r["stop_reason"],
        updated_at=r["updated_at"],
    )


def _deployment_args(x: Deployment) -> tuple[Any, ...]:
    return (
        x.id,
        x.bot_id,
        x.bot_version,
        x.runtime,
        x.image,
        _json(x.resources),
        _json(x.environment),
        x.status,
        x.deployed_at,
        x.started_at,
        x.stopped_at,
        x.stop_reason,
        x.updated_at,
    )


async def ensure_roles(owner_dsn: str, *, password: str | None = None) -> None:
    """Create the bot_lifecycle login role if the cluster lacks it (dev launcher, tests)."""
    await ensure_login_role_at(owner_dsn, ROLE, password=password)


async def run_migrations(owner_dsn: str) -> list[Migration]:
    """Apply the pending migrations of schema ``lifecycle`` as the owner role."""
    return await migrate_at(owner_dsn, schema=SCHEMA, package=MIGRATIONS)
