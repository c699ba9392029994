"""The reconciler's model of analytics-projector's MongoDB read models, from the acks alone.

Written apart from the worker (it does not import ``analytics_projector`` nor
``fleet_trading``): per bot, the fills of its scenario in TRADES stream order, each trade
id once, folded through an average-cost position per symbol:

- adding to a position (or opening one) realizes nothing; the average entry becomes the
  volume-weighted average, rounded half-even to 18 decimal places;
- reducing it realizes (price - average entry) x reduced quantity (negated for a short);
- a fill past zero closes the position and opens the other side at the fill price.

Compared exactly: ``trading_events`` holds one ``fill:<trade_id>`` document per expected
fill (missing: lost; unexpected: doubled), and ``bot_performance`` per bot has the number
of fills counted (more than expected: doubled), realized PnL, volume (price x quantity)
and fees (mismatches otherwise).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

from bson.decimal128 import Decimal128
from pymongo import AsyncMongoClient

from fleet_testing.chaos.publisher import Acked
from fleet_testing.chaos.reconcile import StoreCheck

_WIDE = Context(prec=200, rounding=ROUND_HALF_EVEN)
_AVERAGE = Decimal("1e-18")
_STORED = Context(prec=34, rounding=ROUND_HALF_EVEN)
"""Decimal128 keeps 34 significant digits."""


@dataclass
class _Book:
    """One bot's expected figures."""

    trades: int = 0
    realized: Decimal = Decimal(0)
    volume: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)

    def figures(self) -> tuple[int, Decimal, Decimal, Decimal]:
        """(fills, realized PnL, volume, fees) as Decimal128 stores them."""
        return (
            self.trades,
            _STORED.plus(self.realized),
            _STORED.plus(self.volume),
            _STORED.plus(self.fees),
        )


@dataclass
class _Position:
    """A signed quantity (long > 0) and its average entry price."""

    quantity: Decimal = Decimal(0)
    average: Decimal = Decimal(0)

    def fill(self, signed: Decimal, price: Decimal) -> Decimal:
        """Apply a fill of ``signed`` quantity at ``price``; what it realized."""
        if not self.quantity or (self.quantity > 0) == (signed > 0):
            total = _WIDE.add(self.quantity, signed)
            cost = _WIDE.add(
                _WIDE.multiply(self.average, abs(self.quantity)), _WIDE.multiply(price, abs(signed))
            )
            self.average = _WIDE.divide(cost, abs(total)).quantize(_AVERAGE, ROUND_HALF_EVEN, _WIDE)
            self.quantity = total
            return Decimal(0)
        reduced = min(abs(signed), abs(self.quantity))
        gain = _WIDE.multiply(_WIDE.subtract(price, self.average), reduced)
        realized = gain if self.quantity > 0 else -gain
        rest = abs(signed) - reduced
        self.quantity = _WIDE.add(self.quantity, reduced if self.quantity < 0 else -reduced)
        if not self.quantity and rest:
            self.quantity = rest if signed > 0 else -rest
            self.average = price
        return realized


def expected_books(acks: list[Acked]) -> tuple[dict[str, _Book], dict[str, str]]:
    """Per bot its expected figures, and every expected trade id with its bot."""
    fills = sorted(
        (
            a
            for a in acks
            if a.message.event is not None and a.message.event.type == "trade.executed"
        ),
        key=lambda a: a.seq,
    )
    books: dict[str, _Book] = defaultdict(_Book)
    positions: dict[tuple[str, str], _Position] = defaultdict(_Position)
    trade_bots: dict[str, str] = {}
    for ack in fills:
        assert ack.message.event is not None
        fill = ack.message.event.data
        if fill.trade_id in trade_bots:
            continue  # the same fill under a new event id counts once
        trade_bots[fill.trade_id] = fill.bot_id
        signed = fill.quantity if fill.side.value == "BUY" else -fill.quantity
        book = books[fill.bot_id]
        book.trades += 1
        book.realized = _WIDE.add(
            book.realized, positions[(fill.bot_id, fill.symbol)].fill(signed, fill.price)
        )
        book.volume = _WIDE.add(book.volume, _WIDE.multiply(fill.price, fill.quantity))
        book.fees = _WIDE.add(book.fees, fill.fee)
    return dict(books), trade_bots


def _dec(value: Any) -> Decimal:
    if isinstance(value, Decimal128):
        return value.to_decimal()
    return Decimal(str(value)) if value is not None else Decimal(0)


async def check_analytics(
    mongo_url: str, database: str, bot_prefix: str, acks: list[Acked]
) -> StoreCheck:
    """trading_events and bot_performance against the acked fills."""
    books, trade_bots = expected_books(acks)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_url, serverSelectionTimeoutMS=10_000
    )
    try:
        db = client[database]
        events = await db.trading_events.find(
            {"event_type": "trade.executed", "bot_id": {"$regex": f"^{bot_prefix}"}},
            {"trade_id": 1},
        ).to_list(None)
        stored_books = await db.bot_performance.find(
            {"_id": {"$regex": f"^{bot_prefix}"}},
            {"total_trades": 1, "realized_pnl": 1, "volume": 1, "fees": 1},
        ).to_list(None)
    finally:
        await client.close()
    stored_ids = {str(doc["trade_id"]) for doc in events}
    lost = [t for t in trade_bots if t not in stored_ids]
    doubled = sum(1 for t in stored_ids if t not in trade_bots)
    notes = [f"analytics lost trade {t}" for t in lost[:3]]
    got = {
        str(doc["_id"]): (
            int(doc.get("total_trades") or 0),
            _dec(doc.get("realized_pnl")),
            _dec(doc.get("volume")),
            _dec(doc.get("fees")),
        )
        for doc in stored_books
    }
    mismatched = 0
    for bot in sorted(books.keys() | got.keys()):
        want = books[bot].figures() if bot in books else (0, Decimal(0), Decimal(0), Decimal(0))
        have = got.get(bot, (0, Decimal(0), Decimal(0), Decimal(0)))
        doubled += max(0, have[0] - want[0])
        if have != want:
            mismatched += 1
            notes.append(f"analytics bot {bot}: (fills, pnl, volume, fees) {have} != {want}")
    expected = len(trade_bots)
    applied = expected - len(lost)
    return StoreCheck(
        "analytics", expected, applied, len(lost), doubled, mismatched, tuple(notes[:3])
    )
