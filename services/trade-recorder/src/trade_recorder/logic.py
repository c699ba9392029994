"""Pure trade logic: events to rows (Decimal, no I/O).

Positions follow the average-cost rules of ``fleet_trading.positions`` (the one
implementation, shared with analytics-projector): see that module for the rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from fleet_trading.positions import (
    AVERAGE_PRICE_EXPONENT,
    FillLike,
    Position,
    PositionKey,
    PositionSide,
    apply_fills,
)

from fleet_events import Event, Side, TradeCompleted, TradeExecuted, TradeFailed
from trade_recorder.executions import Execution

__all__ = [
    "AVERAGE_PRICE_EXPONENT",
    "Fill",
    "FillLike",
    "OrderOutcome",
    "Position",
    "PositionKey",
    "PositionSide",
    "apply_fill",
    "apply_fills",
]

OrderStatus = Literal["completed", "failed"]


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


NewFill = tuple[Execution, int]
"""A fill as the store writes it: the execution and its stream sequence."""


@dataclass(frozen=True, slots=True)
class TradeBatch:
    """A batch's fills and order outcomes, each in stream order.

    ``fills`` maps trade_id to the first copy of that fill in the batch; ``fill_count``
    counts every copy (repeats included).
    """

    fills: dict[str, NewFill]
    fill_count: int
    outcomes: list[OrderOutcome]


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


def split_events(events: Iterable[tuple[Execution | Event[Any], int]]) -> TradeBatch:
    """Sort (event, stream_seq) pairs, in stream order, into fills and order outcomes.

    A fill arrives as the ``Execution`` the subscription's decoder makes of it, or as its
    ``trade.executed`` event (which is converted here).
    """
    fills: dict[str, NewFill] = {}
    outcomes: list[OrderOutcome] = []
    count = 0
    for event, seq in events:
        if isinstance(event, Execution):
            fill = event
        elif isinstance(event.data, TradeExecuted):
            fill = Execution.of(event)
        else:
            outcomes.append(outcome_from_event(event))
            continue
        count += 1
        if fill.trade_id not in fills:
            fills[fill.trade_id] = (fill, seq)
    return TradeBatch(fills, count, outcomes)


def first_outcomes(outcomes: Sequence[OrderOutcome]) -> list[OrderOutcome]:
    """The first outcome per order in stream order: an order ends once."""
    seen: dict[str, OrderOutcome] = {}
    for outcome in outcomes:
        seen.setdefault(outcome.order_id, outcome)
    return list(seen.values())


def apply_fill(position: Position | None, fill: Fill) -> list[Position]:
    """Apply one fill to the open position of its key (or to none).

    Returns the positions the fill changed, oldest first: the given one (updated or
    closed) and/or a newly opened one. The last element is open unless the fill closed
    the position exactly.
    """
    return apply_fills(position, [fill], key=fill.key)
