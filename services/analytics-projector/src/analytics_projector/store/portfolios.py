"""Portfolio flows and snapshots: stored day sums per user, snapshots recomputed from them.

``portfolio_flows`` holds, per user and UTC day, each symbol's summed fills (exact
strings); ``day_closes`` holds each symbol's last 1m close per day. A new fill or a new
day close recomputes the snapshots of the users it touches from its day onwards
(``analytics_projector.portfolio.snapshots``). Runs inside the batch's transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from pymongo import ReplaceOne
from pymongo.asynchronous.client_session import AsyncClientSession

from analytics_projector.documents import day_of
from analytics_projector.portfolio import DayFlows, SymbolFlow, snapshots
from analytics_projector.store.client import Db, Document
from fleet_events import TradeExecuted


def flows_id(user_id: str, day: str) -> str:
    """The ``portfolio_flows`` document of one user and day (the day has a fixed width)."""
    return f"{day}|{user_id}"


def _flows_of(doc: Document) -> DayFlows:
    return DayFlows(
        doc["user_id"],
        doc["day"],
        {s["symbol"]: SymbolFlow.from_state(s) for s in doc["symbols"]},
    )


def _flows_doc(flows: DayFlows) -> Document:
    return {
        "user_id": flows.user_id,
        "day": flows.day,
        "symbols_held": sorted(flows.symbols),
        "symbols": [
            {"symbol": symbol, **flows.symbols[symbol].to_state()}
            for symbol in sorted(flows.symbols)
        ],
    }


class PortfolioWriter:
    """Updates flows and closes, then rewrites the snapshots they change."""

    def __init__(self, db: Db, session: AsyncClientSession) -> None:
        self._db = db
        self._session = session

    async def add_fills(self, fills: Iterable[TradeExecuted]) -> None:
        """Add new fills to their users' day flows and refresh those users' snapshots."""
        by_user: dict[str, list[TradeExecuted]] = defaultdict(list)
        for fill in fills:
            by_user[fill.user_id].append(fill)
        if not by_user:
            return
        stored = await self._load_flows(sorted(by_user))
        writes: list[Any] = []
        since: dict[str, str] = {}
        for user_id, user_fills in by_user.items():
            days = stored[user_id]
            for fill in user_fills:
                day = day_of(fill.executed_at)
                flows = days.get(day)
                if flows is None:
                    flows = days[day] = DayFlows(user_id, day)
                flows.add(fill)
                since[user_id] = min(since.get(user_id, day), day)
            for day in sorted({day_of(f.executed_at) for f in user_fills}):
                writes.append(
                    ReplaceOne({"_id": flows_id(user_id, day)}, _flows_doc(days[day]), upsert=True)
                )
        await self._db.portfolio_flows.bulk_write(writes, ordered=False, session=self._session)
        await self._refresh(stored, since)

    async def add_closes(self, closes: Mapping[str, Mapping[str, tuple[Any, Decimal]]]) -> None:
        """Record each symbol's day closes (day -> (open_time, close) of a 1m candle) where
        they are later than the stored ones; refresh the snapshots of users holding them."""
        ids = [f"{day}|{symbol}" for symbol, days in closes.items() for day in days]
        stored = {
            doc["_id"]: doc
            async for doc in self._db.day_closes.find(
                {"_id": {"$in": ids}}, {"open_time": 1}, session=self._session
            )
        }
        writes: list[Any] = []
        changed: dict[str, str] = {}
        for symbol, days in closes.items():
            for day, (open_time, close) in days.items():
                cid = f"{day}|{symbol}"
                old = stored.get(cid)
                if old is not None and old["open_time"] > open_time:
                    continue
                writes.append(
                    ReplaceOne(
                        {"_id": cid},
                        {"symbol": symbol, "day": day, "open_time": open_time, "close": str(close)},
                        upsert=True,
                    )
                )
                changed[symbol] = min(changed.get(symbol, day), day)
        if not writes:
            return
        await self._db.day_closes.bulk_write(writes, ordered=False, session=self._session)
        holders: dict[str, str] = {}
        async for doc in self._db.portfolio_flows.find(
            {"symbols_held": {"$in": sorted(changed)}},
            {"user_id": 1, "symbols_held": 1},
            session=self._session,
        ):
            for symbol in doc["symbols_held"]:
                if symbol in changed:
                    user = doc["user_id"]
                    holders[user] = min(holders.get(user, changed[symbol]), changed[symbol])
        if holders:
            await self._refresh(await self._load_flows(sorted(holders)), holders)

    async def _load_flows(self, users: list[str]) -> dict[str, dict[str, DayFlows]]:
        stored: dict[str, dict[str, DayFlows]] = {user: {} for user in users}
        async for doc in self._db.portfolio_flows.find(
            {"user_id": {"$in": users}}, session=self._session
        ):
            stored[doc["user_id"]][doc["day"]] = _flows_of(doc)
        return stored

    async def _refresh(
        self, flows: Mapping[str, Mapping[str, DayFlows]], since: Mapping[str, str]
    ) -> None:
        symbols = sorted({s for days in flows.values() for f in days.values() for s in f.symbols})
        series: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
        async for doc in self._db.day_closes.find(
            {"symbol": {"$in": symbols}}, {"symbol": 1, "day": 1, "close": 1}, session=self._session
        ):
            series[doc["symbol"]].append((doc["day"], Decimal(doc["close"])))
        for points in series.values():
            points.sort()
        writes: list[Any] = []
        for user_id, user_days in flows.items():
            if not user_days:
                continue
            held = {s for f in user_days.values() for s in f.symbols}
            closes = {s: series[s] for s in held if s in series}
            last = max([*user_days, *(c[-1][0] for c in closes.values())])
            since_day = since[user_id]
            for doc in snapshots(user_id, user_days.values(), closes, since=since_day, until=last):
                writes.append(ReplaceOne({"_id": doc["_id"]}, doc, upsert=True))
        if writes:
            await self._db.portfolio_snapshots.bulk_write(
                writes, ordered=False, session=self._session
            )
