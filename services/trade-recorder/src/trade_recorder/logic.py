"""Pure trade logic: events to rows, and position math on fills (Decimal, no I/O).

Position rules (average-cost method), per (user, bot, symbol):
- a fill in the position's direction (or on a flat key) adds to it; the average entry
  price becomes the volume-weighted average, rounded half-even to 18 decimal places;
- a fill against it reduces it: realized PnL += (fill price - average entry) x reduced
  quantity (negated for a short); the average entry price does not change;
- a fill that reaches zero closes the position (``closed_at`` = the fill's time); any
  remainder opens a new position on the other side at the fill price;
- a fill's fee is added to the position the fill touches first (the one it reduces or
  closes on a flip): one charge is never split, so no rounding is invented.
Realized PnL is gross of fees and in the quote currency; fees are summed as reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from typing import Any, Literal
from uuid import UUID

from fleet_events import Event, Side, TradeCompleted, TradeExecuted, TradeFailed

AVERAGE_PRICE_EXPONENT = Decimal("1e-18")
"""Average entry prices are kept to 18 decimal places (half-even)."""

# Wide enough that sums and products of exchange-precision decimals are exact; only the
# average price division rounds, and it rounds to the documented exponent.
_EXACT = Context(prec=200, rounding=ROUND_HALF_EVEN)

PositionSide = Literal["LONG", "SHORT"]
OrderStatus = Literal["completed", "failed"]
PositionKey = tuple[str, str, str]
"""(user_id, bot_id, symbol)."""


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution as recorded in ``trading.trades``."""

    trade_id: str
    order_id: str
    bot_id: str
    user_id: str
    symbol: str
    side: Side
    price: Decimal
    quantity: Decimal
    fee: Decimal
    fee_currency: str
    executed_at: datetime
    event_id: UUID
    stream_seq: int

    @property
    def key(self) -> PositionKey:
        """The position this fill belongs to."""
        return (self.user_id, self.bot_id, self.symbol)


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """An order's end: completed (with the reported totals) or failed (with the reason)."""

    order_id: str
    bot_id: str
    user_id: str
    symbol: str
    status: OrderStatus
    finished_at: datetime
    filled_quantity: Decimal | None = None
    average_price: Decimal | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class TradeBatch:
    """A batch's fills and order outcomes, each in stream order."""

    fills: list[Fill]
    outcomes: list[OrderOutcome]


@dataclass(frozen=True, slots=True)
class Position:
    """One position row; ``id`` is None until it is stored."""

    id: int | None
    user_id: str
    bot_id: str
    symbol: str
    side: PositionSide
    quantity: Decimal
    average_entry_price: Decimal
    max_quantity: Decimal
    realized_pnl: Decimal
    fees: Decimal
    fill_count: int
    opened_at: datetime
    closed_at: datetime | None
    last_trade_id: str

    @property
    def is_open(self) -> bool:
        """Whether the position still holds quantity."""
        return self.closed_at is None

    @property
    def key(self) -> PositionKey:
        """(user_id, bot_id, symbol)."""
        return (self.user_id, self.bot_id, self.symbol)


def fill_from_event(event: Event[Any], stream_seq: int) -> Fill:
    """The fill a ``trade.executed`` event records."""
    data: TradeExecuted = event.data
    return Fill(
        trade_id=data.trade_id,
        order_id=data.order_id,
        bot_id=data.bot_id,
        user_id=data.user_id,
        symbol=data.symbol,
        side=data.side,
        price=data.price,
        quantity=data.quantity,
        fee=data.fee,
        fee_currency=data.fee_currency,
        executed_at=data.executed_at,
        event_id=event.id,
        stream_seq=stream_seq,
    )


def outcome_from_event(event: Event[Any]) -> OrderOutcome:
    """The order outcome a ``trade.completed`` or ``trade.failed`` event records."""
    data = event.data
    if isinstance(data, TradeCompleted):
        return OrderOutcome(
            order_id=data.order_id,
            bot_id=data.bot_id,
            user_id=data.user_id,
            symbol=data.symbol,
            status="completed",
            finished_at=event.time,
            filled_quantity=data.filled_quantity,
            average_price=data.average_price,
        )
    if isinstance(data, TradeFailed):
        return OrderOutcome(
            order_id=data.order_id,
            bot_id=data.bot_id,
            user_id=data.user_id,
            symbol=data.symbol,
            status="failed",
            finished_at=event.time,
            reason=data.reason,
        )
    raise TypeError(f"not an order outcome: {event.type}")


def split_events(events: Iterable[tuple[Event[Any], int]]) -> TradeBatch:
    """Sort (event, stream_seq) pairs, in stream order, into fills and order outcomes."""
    fills: list[Fill] = []
    outcomes: list[OrderOutcome] = []
    for event, seq in events:
        if isinstance(event.data, TradeExecuted):
            fills.append(fill_from_event(event, seq))
        else:
            outcomes.append(outcome_from_event(event))
    return TradeBatch(fills, outcomes)


def first_outcomes(outcomes: Sequence[OrderOutcome]) -> list[OrderOutcome]:
    """The first outcome per order in stream order: an order ends once."""
    seen: dict[str, OrderOutcome] = {}
    for outcome in outcomes:
        seen.setdefault(outcome.order_id, outcome)
    return list(seen.values())


def _open(fill: Fill, quantity: Decimal) -> Position:
    return Position(
        id=None,
        user_id=fill.user_id,
        bot_id=fill.bot_id,
        symbol=fill.symbol,
        side="LONG" if fill.side is Side.BUY else "SHORT",
        quantity=quantity,
        average_entry_price=fill.price,
        max_quantity=quantity,
        realized_pnl=Decimal(0),
        fees=Decimal(0),
        fill_count=1,
        opened_at=fill.executed_at,
        closed_at=None,
        last_trade_id=fill.trade_id,
    )


def apply_fill(position: Position | None, fill: Fill) -> list[Position]:
    """Apply one fill to the open position of its key (or to none).

    Returns the positions the fill changed, oldest first: the given one (updated or
    closed) and/or a newly opened one. The last element is open unless the fill closed
    the position exactly.
    """
    with localcontext(_EXACT):
        if position is None or not position.is_open:
            opened = _open(fill, fill.quantity)
            return [replace(opened, fees=fill.fee)]
        adds = (position.side == "LONG") == (fill.side is Side.BUY)
        if adds:
            quantity = position.quantity + fill.quantity
            cost = position.average_entry_price * position.quantity + fill.price * fill.quantity
            average = (cost / quantity).quantize(AVERAGE_PRICE_EXPONENT, rounding=ROUND_HALF_EVEN)
            return [
                replace(
                    position,
                    quantity=quantity,
                    average_entry_price=average,
                    max_quantity=max(position.max_quantity, quantity),
                    fees=position.fees + fill.fee,
                    fill_count=position.fill_count + 1,
                    last_trade_id=fill.trade_id,
                )
            ]
        reduced = min(position.quantity, fill.quantity)
        direction = 1 if position.side == "LONG" else -1
        pnl = (fill.price - position.average_entry_price) * reduced * direction
        remaining = position.quantity - reduced
        updated = replace(
            position,
            quantity=remaining,
            realized_pnl=position.realized_pnl + pnl,
            fees=position.fees + fill.fee,
            fill_count=position.fill_count + 1,
            closed_at=fill.executed_at if remaining == 0 else None,
            last_trade_id=fill.trade_id,
        )
        flipped = fill.quantity - reduced
        if flipped > 0:
            return [updated, _open(fill, flipped)]
        return [updated]


def apply_fills(position: Position | None, fills: Iterable[Fill]) -> list[Position]:
    """Apply fills of one key in order; return every position they changed, oldest first.

    Each position appears once, in its final state: at most one is open (the last).
    """
    changed: list[Position] = []
    current = position
    for fill in fills:
        result = apply_fill(current, fill)
        if current is not None and current.is_open:
            # The fill changed the open position (the last one listed, if any): replace it.
            changed[-1:] = result
        else:
            changed.extend(result)
        current = result[-1]
    return changed
