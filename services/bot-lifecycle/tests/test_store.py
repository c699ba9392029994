"""PostgresBotStore against a real PostgreSQL: every transition, refusals, repeats, audit."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from importlib import resources
from typing import Any

import asyncpg
import pytest

from bot_lifecycle.store import PostgresBotStore
from fleet_events import Event
from fleet_runtime.errors import EventRejected
from fleet_testing.batches import Sequencer

from .conftest import CHECKPOINT, BotEvents

E = BotEvents
B = "bot-1"

# How to bring bot-1 into each state (version after setup = len(path)).
SETUPS: dict[str, list[Event[Any]] | None] = {
    "unknown": None,
    "created": [E.created(B, 1)],
    "deployed": [E.created(B, 1), E.deployed(B, 2)],
    "running": [E.created(B, 1), E.deployed(B, 2), E.started(B, 3)],
    "stopped": [E.created(B, 1), E.deployed(B, 2), E.started(B, 3), E.stopped(B, 4)],
    "deleted": [E.created(B, 1), E.deleted(B, 2)],
}

NEXT: dict[str, Callable[[int], Event[Any]]] = {
    "create": lambda v: E.created(B, v),
    "update": lambda v: E.updated(B, v, risk_level=5),
    "deploy": lambda v: E.deployed(B, v, deployment="d9"),
    "start": lambda v: E.started(B, v),
    "stop": lambda v: E.stopped(B, v),
    "delete": lambda v: E.deleted(B, v),
}

# state -> command -> resulting status, or None where the event is refused.
TABLE: dict[str, dict[str, str | None]] = {
    "unknown": dict.fromkeys(NEXT, None) | {"create": "created"},
    "created": {"create": None, "update": "created", "deploy": "deployed", "start": None,
                "stop": None, "delete": "deleted"},
    "deployed": {"create": None, "update": "deployed", "deploy": "deployed",
                 "start": "running", "stop": None, "delete": "deleted"},
    "running": {"create": None, "update": "running", "deploy": None, "start": None,
                "stop": "stopped", "delete": None},
    "stopped": {"create": None, "update": "stopped", "deploy": "deployed", "start": "running",
                "stop": None, "delete": "deleted"},
    "deleted": dict.fromkeys(NEXT, None),
}  # fmt: skip

CASES = [(state, cmd, result) for state, row in TABLE.items() for cmd, result in row.items()]


async def fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


@pytest.mark.parametrize(("state", "command", "result"), CASES)
async def test_transition(
    store: PostgresBotStore,
    lifecycle_dsns: tuple[str, str],
    stream: Sequencer,
    state: str,
    command: str,
    result: str | None,
) -> None:
    setup = SETUPS[state] or []
    if setup:
        await store.apply(stream.batch(setup))
    event = NEXT[command](len(setup) + 1)
    owner = lifecycle_dsns[0]
    before = await fetch(owner, "SELECT * FROM lifecycle.bots")
    audit_before = len(await fetch(owner, "SELECT 1 FROM lifecycle.audit_log"))
    if result is None:
        with pytest.raises(EventRejected) as refused:
            await store.apply(stream.batch([event]))
        assert refused.value.event_id == event.id
        assert refused.value.reason
        assert await fetch(owner, "SELECT * FROM lifecycle.bots") == before
        assert len(await fetch(owner, "SELECT 1 FROM lifecycle.audit_log")) == audit_before
        return
    applied = await store.apply(stream.batch([event]))
    assert applied.applied == 1
    [bot] = await fetch(owner, "SELECT status, version, deleted_at FROM lifecycle.bots")
    assert (bot["status"], bot["version"]) == (result, len(setup) + 1)
    assert (bot["deleted_at"] is not None) == (result == "deleted")
    [audit] = await fetch(owner, "SELECT * FROM lifecycle.audit_log WHERE event_id = $1", event.id)
    assert audit["version"] == len(setup) + 1
    assert audit["event_type"] == event.type


async def test_refusal_reasons_name_the_problem(store: PostgresBotStore, stream: Sequencer) -> None:
    reasons = {}
    for name, events in {
        "start before deploy": [E.created(B, 1), E.started(B, 2)],
        "after delete": [E.created("b2", 1), E.deleted("b2", 2), E.updated("b2", 3)],
        "unknown": [E.updated("b3", 2)],
        "running delete": [E.created("b4", 1), E.deployed("b4", 2, "x4"), E.started("b4", 3, "x4"),
                           E.deleted("b4", 4)],
        "wrong deployment": [E.created("b5", 1), E.deployed("b5", 2, "x5"),
                             E.started("b5", 3, "other")],
    }.items():  # fmt: skip
        with pytest.raises(EventRejected) as refused:
            await store.apply(stream.batch(events))
        assert refused.value.event_id == events[-1].id
        reasons[name] = refused.value.reason
    assert reasons == {
        "start before deploy": "bot.started is not allowed when bot bot-1 is created",
        "after delete": "bot b2 is deleted: bot.updated is not accepted",
        "unknown": "unknown bot b3: bot.updated before bot.created",
        "running delete": "bot.deleted is not allowed when bot b4 is running: stop it first",
        "wrong deployment": "deployment other is not bot b5's current deployment (x5)",
    }


async def test_a_refused_event_rolls_back_the_batch_and_the_rest_reapplies(
    store: PostgresBotStore, lifecycle_dsns: tuple[str, str], stream: Sequencer
) -> None:
    good, bad, later = E.created(B, 1), E.started(B, 2), E.deployed(B, 2)
    batch = stream.batch([good, bad, later])
    with pytest.raises(EventRejected):
        await store.apply(batch)
    assert await fetch(lifecycle_dsns[0], "SELECT * FROM lifecycle.bots") == []
    # What the runtime does next: the same batch without the dead-lettered event.
    rest = type(batch)([d for d in batch.deliveries if d.event.id != bad.id], batch.checkpoint)
    assert (await store.apply(rest)).applied == 2
    [bot] = await fetch(lifecycle_dsns[0], "SELECT status, version FROM lifecycle.bots")
    assert (bot["status"], bot["version"]) == ("deployed", 2)


async def test_repeated_and_older_events_change_nothing(
    store: PostgresBotStore, lifecycle_dsns: tuple[str, str], stream: Sequencer
) -> None:
    owner = lifecycle_dsns[0]
    first = stream.batch([E.created(B, 1), E.updated(B, 2, name="alpha"), E.deployed(B, 3)])
    await store.apply(first)
    # Same batch redelivered: covered by the checkpoint.
    assert (await store.apply(first)).skipped == 3
    # The same facts again under new event ids and stream sequences, and an older one.
    again = await store.apply(
        stream.batch(
            [E.created(B, 1), E.updated(B, 2, name="beta"), E.deployed(B, 3), E.updated(B, 1)]
        )
    )
    assert (again.applied, again.ignored) == (0, 4)
    # An event replayed after delete is ignored, not refused (so it is never dead-lettered).
    await store.apply(stream.batch([E.deleted(B, 4)]))
    assert (await store.apply(stream.batch([E.started(B, 3)]))).ignored == 1
    [bot] = await fetch(owner, "SELECT name, status, version FROM lifecycle.bots")
    assert (bot["name"], bot["status"], bot["version"]) == ("alpha", "deleted", 4)
    audit = await fetch(owner, "SELECT version FROM lifecycle.audit_log ORDER BY id")
    assert [r["version"] for r in audit] == [1, 2, 3, 4]


async def test_a_redelivered_event_id_adds_no_second_audit_row(
    store: PostgresBotStore, lifecycle_dsns: tuple[str, str]
) -> None:
    created = E.created(B, 1)
    # The same event at two stream positions under two checkpoints (e.g. a replay durable).
    await store.apply(Sequencer("BOTS", CHECKPOINT).batch([created], checkpoint="bot-lifecycle"))
    await store.apply(
        Sequencer("BOTS", CHECKPOINT).batch([created], checkpoint="bot-lifecycle-replay")
    )
    assert len(await fetch(lifecycle_dsns[0], "SELECT 1 FROM lifecycle.audit_log")) == 1


async def test_full_lifecycle_rows_deployments_and_audit_values(
    store: PostgresBotStore, lifecycle_dsns: tuple[str, str], stream: Sequencer
) -> None:
    owner = lifecycle_dsns[0]
    history = [
        E.created(B, 1),
        E.updated(B, 2, config={"grid": 20}, tags=["grid"]),
        E.deployed(B, 3, "d1"),
        E.started(B, 4, "d1"),
        E.stopped(B, 5, "d1", reason="maintenance"),
        E.deployed(B, 6, "d2"),
        E.started(B, 7, "d2"),
        E.stopped(B, 8, "d2"),
        E.deleted(B, 9),
    ]
    # Split across batches at every other event: state carries over between batches.
    for i in range(0, len(history), 2):
        await store.apply(stream.batch(history[i : i + 2]))
    [bot] = await fetch(owner, "SELECT * FROM lifecycle.bots")
    assert bot["status"] == "deleted"
    assert bot["version"] == 9
    assert bot["current_deployment_id"] == "d2"
    assert bot["tags"] == ["grid"]
    assert bot["max_position_size"] == Decimal("1.5")
    deployments = await fetch(
        owner,
        "SELECT id, status, stop_reason, bot_version FROM lifecycle.bot_deployments ORDER BY id",
    )
    assert [tuple(r.values()) for r in deployments] == [
        ("d1", "superseded", "maintenance", 3),
        ("d2", "retired", "requested", 6),
    ]
    [user] = await fetch(owner, "SELECT id FROM lifecycle.users")
    assert user["id"] == "user-1"
    audit = await fetch(
        owner,
        "SELECT event_type, old_values, new_values FROM lifecycle.audit_log ORDER BY version",
    )
    assert len(audit) == 9
    assert audit[0]["old_values"] is None
    assert '"name": "bot-1 grid"' in audit[0]["new_values"]
    assert audit[1]["event_type"] == "bot.updated"
    assert '"config": {"grid": 20}' in audit[1]["new_values"]
    assert '"config": {"grid": 10, "pair": "BTC/USDT"}' in audit[1]["old_values"]
    assert '"status": "running"' in audit[4]["old_values"]
    assert '"status": "stopped"' in audit[4]["new_values"]


async def test_only_the_reviewed_secondary_indexes_exist_each_named_with_its_query(
    lifecycle_dsns: tuple[str, str],
) -> None:
    conn = await asyncpg.connect(lifecycle_dsns[0])
    try:
        found = await conn.fetch(
            "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "JOIN pg_namespace n ON n.oid = i.relnamespace "
            "WHERE n.nspname = 'lifecycle' AND NOT x.indisprimary "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"
        )
    finally:
        await conn.close()
    kept = {
        "bots_user_created_idx",
        "bots_status_idx",
        "bot_deployments_bot_idx",
        "audit_log_bot_idx",
        "audit_log_user_idx",
    }
    assert {r[0] for r in found} == kept
    review = (resources.files("bot_lifecycle.migrations") / "0002_index_review.sql").read_text()
    for name in kept:
        assert f"- {name} (" in review
