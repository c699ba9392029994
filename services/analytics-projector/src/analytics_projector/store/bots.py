"""BOTS into the read models: bot names, owners and status, and the runs of each bot.

Runs inside the batch's transaction. Every bot event carries the bot's version after the
change: an event whose version is not above the stored one was applied before (or is an
older state) and changes nothing. ``bot.started`` opens a run, ``bot.stopped`` closes the
bot's open run of that deployment; both recompute the run from the stored fills of its
window, so fills that arrived before the run was known are counted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fleet_trading.metrics import Tally
from pymongo import ReplaceOne, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession

from analytics_projector.documents import figures
from analytics_projector.executions import Run, execution_id
from analytics_projector.store.client import Db, Document
from analytics_projector.store.trades import run_fill_of
from fleet_events import (
    BotCreated,
    BotDeleted,
    BotDeployed,
    BotStarted,
    BotStopped,
    BotUpdated,
)
from fleet_runtime.delivery import Batch

_STATUS: dict[type[Any], str] = {
    BotCreated: "created",
    BotDeployed: "deployed",
    BotStarted: "running",
    BotStopped: "stopped",
    BotDeleted: "deleted",
}


def to_millis(moment: datetime) -> datetime:
    """``moment`` at the millisecond precision MongoDB stores."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


async def apply_bots(db: Db, session: AsyncClientSession, batch: Batch[Any]) -> int:
    """Apply a batch of bot events; returns how many changed a bot (the rest were older)."""
    bots = sorted({d.event.data.bot_id for d in batch})
    stored = {
        doc["_id"]: doc
        async for doc in db.bot_performance.find(
            {"_id": {"$in": bots}},
            {"bot_version": 1, "user_id": 1},
            session=session,
        )
    }
    versions = {bot: int(doc.get("bot_version") or 0) for bot, doc in stored.items()}
    owners = {bot: doc.get("user_id") for bot, doc in stored.items()}
    changes: dict[str, Document] = {}
    runs: dict[str, Run] = {}
    applied = 0
    for d in batch:
        data = d.event.data
        bot = data.bot_id
        if data.version <= versions.get(bot, 0):
            continue
        applied += 1
        versions[bot] = data.version
        change = changes.setdefault(bot, {})
        change["bot_version"] = data.version
        status = _STATUS.get(type(data))
        if status is not None:
            change["status"] = status
        if isinstance(data, BotCreated):
            change.update(user_id=data.user_id, name=data.name, bot_type=data.type)
            owners[bot] = data.user_id
        elif isinstance(data, BotUpdated):
            if data.name is not None:
                change["name"] = data.name
            if data.type is not None:
                change["bot_type"] = data.type
        elif isinstance(data, BotDeployed):
            change["deployment_id"] = data.deployment_id
        elif isinstance(data, BotStarted):
            run = Run(
                execution_id(bot, data.version),
                bot,
                data.deployment_id,
                data.version,
                to_millis(d.event.time),
                user_id=owners.get(bot),
            )
            runs[run.execution_id] = run
        elif isinstance(data, BotStopped):
            run_ = await _open_run(db, session, runs, bot, data.deployment_id, data.version)
            if run_ is not None:
                run_.end_time = to_millis(d.event.time)
                run_.stop_reason = data.reason
    await _write_bots(db, session, changes)
    for run in runs.values():
        run.user_id = run.user_id or owners.get(run.bot_id)
        await _recompute(db, session, run)
    if runs:
        await db.bot_executions.bulk_write(
            [ReplaceOne({"_id": rid}, run.document(), upsert=True) for rid, run in runs.items()],
            ordered=False,
            session=session,
        )
    return applied


async def _open_run(
    db: Db,
    session: AsyncClientSession,
    runs: dict[str, Run],
    bot: str,
    deployment_id: str,
    version: int,
) -> Run | None:
    """The bot's latest open run of ``deployment_id`` started before ``version``."""
    candidates = [
        r
        for r in runs.values()
        if r.bot_id == bot and r.deployment_id == deployment_id and r.end_time is None
    ]
    async for doc in db.bot_executions.find(
        {"bot_id": bot, "deployment_id": deployment_id, "end_time": None}, session=session
    ):
        if doc["_id"] not in runs:
            candidates.append(Run.from_document(doc))
    candidates = [r for r in candidates if r.start_version < version]
    if not candidates:
        return None
    run = max(candidates, key=lambda r: r.start_version)
    runs[run.execution_id] = run
    return run


async def _recompute(db: Db, session: AsyncClientSession, run: Run) -> None:
    window: Document = {"$gte": run.start_time}
    if run.end_time is not None:
        window["$lt"] = run.end_time
    fills = [
        run_fill_of(doc)
        async for doc in db.trading_events.find(
            {"bot_id": run.bot_id, "event_type": "trade.executed", "timestamp": window},
            session=session,
        )
    ]
    run.recompute(fills)


async def _write_bots(db: Db, session: AsyncClientSession, changes: dict[str, Document]) -> None:
    if not changes:
        return
    empty = figures(Tally().figures())
    writes = []
    for bot, change in changes.items():
        on_insert: Document = {
            "bot_id": bot,
            "period": "all",
            **{k: v for k, v in empty.items() if k not in change},
            "open_positions": 0,
            "positions": [],
        }
        for field in ("name", "status", "bot_type", "user_id"):
            if field not in change:
                on_insert[field] = None
        writes.append(
            UpdateOne({"_id": bot}, {"$set": change, "$setOnInsert": on_insert}, upsert=True)
        )
    await db.bot_performance.bulk_write(writes, ordered=False, session=session)
