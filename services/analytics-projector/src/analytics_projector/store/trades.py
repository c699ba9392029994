"""TRADES into the read models: audit log, bot performance (all time and daily), runs, portfolios.

Runs inside the batch's transaction (``MongoFrame.in_transaction``). A fill is applied once
by ``trade_id`` (its ``trading_events`` document is the record that it was), whatever its
event id or stream position; an order outcome once per order and kind.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fleet_trading.metrics import Tally
from pymongo import InsertOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession

from analytics_projector.documents import d128, day_of, figures
from analytics_projector.executions import Run, RunFill
from analytics_projector.performance import BotBook, FoldedFill, fold_fills, position_view
from analytics_projector.store.client import Db, Document
from analytics_projector.store.portfolios import PortfolioWriter
from fleet_events import TradeCompleted, TradeExecuted, TradeFailed
from fleet_runtime.delivery import Batch

_AUDIT_PER_CALL = 2000
"""Audit documents per ``bulk_write`` call. A replay's transactions hold 20,000 events;
one call must still answer within the client's socket timeout (secantusdb inserts a
document with its indexes in about 0.6 ms, more on a busy machine)."""


@dataclass(frozen=True, slots=True)
class TradesApplied:
    """What one batch changed."""

    fills: int
    repeated: int
    outcomes: int


def _fill_doc(folded: FoldedFill, event_id: str, seq: int) -> Document:
    f = folded.fill
    return {
        "_id": f"fill:{f.trade_id}",
        "event_id": event_id,
        "event_type": TradeExecuted.event_type,
        "stream_seq": seq,
        "timestamp": f.executed_at,
        "user_id": f.user_id,
        "bot_id": f.bot_id,
        "trading_pair": f.symbol,
        "order_id": f.order_id,
        "trade_id": f.trade_id,
        "side": f.side.value,
        "quantity": d128(f.quantity),
        "price": d128(f.price),
        "fee": d128(f.fee),
        "fee_currency": f.fee_currency,
        "realized_pnl": d128(folded.realized),
        "fold": [str(folded.realized), str(folded.reduced_cost), str(folded.notional)],
    }


def _outcome_doc(key: str, event: Any, seq: int) -> Document:
    data = event.data
    doc: Document = {
        "_id": key,
        "event_id": str(event.id),
        "event_type": event.type,
        "stream_seq": seq,
        "timestamp": event.time,
        "user_id": data.user_id,
        "bot_id": data.bot_id,
        "trading_pair": data.symbol,
        "order_id": data.order_id,
    }
    if isinstance(data, TradeCompleted):
        doc["filled_quantity"] = d128(data.filled_quantity)
        doc["average_price"] = d128(data.average_price)
    elif isinstance(data, TradeFailed):
        doc["reason"] = data.reason
    return doc


def _key(data: Any) -> str:
    if isinstance(data, TradeExecuted):
        return f"fill:{data.trade_id}"
    if isinstance(data, TradeCompleted):
        return f"completed:{data.order_id}"
    return f"failed:{data.order_id}"


def run_fill_of(doc: Document) -> RunFill:
    """The run fill of a stored ``trading_events`` fill."""
    realized, reduced_cost, notional = doc["fold"]
    return RunFill(
        doc["stream_seq"],
        doc["timestamp"],
        doc["trade_id"],
        doc["trading_pair"],
        doc["side"],
        doc["quantity"].to_decimal(),
        doc["price"].to_decimal(),
        doc["fee"].to_decimal(),
        Decimal(realized),
        Decimal(reduced_cost),
        Decimal(notional),
    )


async def apply_trades(db: Db, session: AsyncClientSession, batch: Batch[Any]) -> TradesApplied:
    """Apply a batch of trade events (past the checkpoint) inside ``session``'s transaction."""
    keys = list(dict.fromkeys(_key(d.event.data) for d in batch))
    seen = {
        doc["_id"]
        async for doc in db.trading_events.find({"_id": {"$in": keys}}, {"_id": 1}, session=session)
    }
    fills: dict[str, list[tuple[TradeExecuted, str, int]]] = defaultdict(list)
    audit: list[Any] = []
    repeated = 0
    for d in batch:
        key = _key(d.event.data)
        if key in seen:
            repeated += 1
            continue
        seen.add(key)
        if isinstance(d.event.data, TradeExecuted):
            fills[d.event.data.bot_id].append((d.event.data, str(d.event.id), d.stream_seq))
        else:
            audit.append(InsertOne(_outcome_doc(key, d.event, d.stream_seq)))
    folded_all: list[tuple[FoldedFill, int]] = []
    if fills:
        folded_all = await _apply_fills(db, session, fills, audit)
        await PortfolioWriter(db, session).add_fills([f.fill for f, _ in folded_all])
    for start in range(0, len(audit), _AUDIT_PER_CALL):
        part = audit[start : start + _AUDIT_PER_CALL]
        await db.trading_events.bulk_write(part, ordered=False, session=session)
    return TradesApplied(len(folded_all), repeated, len(batch) - repeated - len(folded_all))


async def _apply_fills(
    db: Db,
    session: AsyncClientSession,
    fills: dict[str, list[tuple[TradeExecuted, str, int]]],
    audit: list[Any],
) -> list[tuple[FoldedFill, int]]:
    bots = sorted(fills)
    stored = {
        doc["_id"]: doc
        async for doc in db.bot_performance.find(
            {"_id": {"$in": bots}}, {"state": 1, "user_id": 1}, session=session
        )
    }
    day_ids = sorted({f"{bot}|{day_of(f.executed_at)}" for bot in bots for f, _, _ in fills[bot]})
    day_docs = {
        doc["_id"]: doc
        async for doc in db.bot_performance_daily.find(
            {"_id": {"$in": day_ids}}, {"state": 1}, session=session
        )
    }
    runs: dict[str, list[Run]] = defaultdict(list)
    async for doc in db.bot_executions.find({"bot_id": {"$in": bots}}, session=session):
        runs[doc["bot_id"]].append(Run.from_document(doc))
    bot_writes: list[Any] = []
    day_writes: list[Any] = []
    run_writes: list[Any] = []
    folded_all: list[tuple[FoldedFill, int]] = []
    for bot in bots:
        entries = fills[bot]
        known = stored.get(bot)
        book = BotBook.from_state(bot, None if known is None else known.get("state"))
        days = {
            day_id.split("|")[-1]: Tally.from_state(day_docs[day_id]["state"])
            for day_id in day_ids
            if day_id.startswith(f"{bot}|") and day_id in day_docs
        }
        touched_days = {day_of(f.executed_at) for f, _, _ in entries}
        folded = fold_fills(book, [f for f, _, _ in entries], days)
        user_id = entries[0][0].user_id
        owner = known.get("user_id") if known is not None else None
        touched_runs: dict[str, Run] = {}
        for entry, (_, event_id, seq) in zip(folded, entries, strict=True):
            audit.append(InsertOne(_fill_doc(entry, event_id, seq)))
            folded_all.append((entry, seq))
            for run in runs.get(bot, ()):
                if run.contains(entry.fill.executed_at):
                    run.add(RunFill.of(entry, seq))
                    touched_runs[run.execution_id] = run
        update: Document = {
            "$set": {
                **figures(book.tally.figures()),
                "open_positions": len(book.positions),
                "positions": [position_view(p) for _, p in sorted(book.positions.items())],
                "first_trade_at": book.first_trade_at,
                "last_trade_at": book.last_trade_at,
                "state": book.to_state(),
                **({"user_id": user_id} if owner is None else {}),
            },
            "$setOnInsert": {
                "bot_id": bot,
                "period": "all",
                "name": None,
                "status": None,
                "bot_type": None,
                "bot_version": 0,
            },
        }
        bot_writes.append(UpdateOne({"_id": bot}, update, upsert=True))
        for day in sorted(touched_days):
            tally = days[day]
            day_writes.append(
                ReplaceOne(
                    {"_id": f"{bot}|{day}"},
                    {
                        "bot_id": bot,
                        "user_id": owner or user_id,
                        "day": day,
                        "period": "day",
                        **figures(tally.figures()),
                        "state": tally.to_state(),
                    },
                    upsert=True,
                )
            )
        run_writes.extend(
            ReplaceOne({"_id": rid}, run.document(), upsert=True)
            for rid, run in sorted(touched_runs.items())
        )
    await db.bot_performance.bulk_write(bot_writes, ordered=False, session=session)
    await db.bot_performance_daily.bulk_write(day_writes, ordered=False, session=session)
    if run_writes:
        await db.bot_executions.bulk_write(run_writes, ordered=False, session=session)
    return folded_all
