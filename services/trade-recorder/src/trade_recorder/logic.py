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
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any, Literal, Protocol
from uuid import UUID

from fleet_events import Event, Side, TradeCompleted, TradeExecuted, TradeFailed

AVERAGE_PRICE_EXPONENT = Decimal("1e-18")
"""Average entry prices are kept to 18 decimal places (half-even)."""

# Wide enough that sums and products of exchange-precision decimals are exact; only the
# average price division rounds, and it rounds to the documented exponent.
_EXACT = Context(prec=200, rounding=ROUND_HALF_EVEN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ZERO = Decimal(0)

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


NewFill = tuple[TradeExecuted, UUID, int]
"""A fill as the store writes it: the payload, its event id and its stream sequence."""

OrderFills = tuple[str, str, str, str, Decimal, int]
"""(order_id, bot_id, user_id, symbol, summed quantity, fill count) of one order."""


@dataclass(frozen=True, slots=True)
class TradeBatch:
    """A batch's fills and order outcomes, each in stream order.

    ``fills`` maps trade_id to the first copy of that fill in the batch; ``fill_count``
    counts every copy (repeats included).
    """

    fills: dict[str, NewFill]
    fill_count: int
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
    # No per-fill object is built: the payload is kept with its event id and sequence.
    fills: dict[str, NewFill] = {}
    outcomes: list[OrderOutcome] = []
    count = 0
    for event, seq in events:
        data = event.data
        if isinstance(data, TradeExecuted):
            count += 1
            if data.trade_id not in fills:
                fills[data.trade_id] = (data, event.id, seq)
        else:
            outcomes.append(outcome_from_event(event))
    return TradeBatch(fills, count, outcomes)


def order_fills(fills: Iterable[NewFill]) -> list[OrderFills]:
    """Per order, in order of first fill: the summed quantity and the number of fills."""
    totals: dict[str, tuple[TradeExecuted, Decimal, int]] = {}
    add = _EXACT.add
    for fill, _, _ in fills:
        seen = totals.get(fill.order_id)
        if seen is None:
            totals[fill.order_id] = (fill, add(_ZERO, fill.quantity), 1)
        else:
            totals[fill.order_id] = (seen[0], add(seen[1], fill.quantity), seen[2] + 1)
    return [
        (order_id, first.bot_id, first.user_id, first.symbol, quantity, count)
        for order_id, (first, quantity, count) in totals.items()
    ]


def first_outcomes(outcomes: Sequence[OrderOutcome]) -> list[OrderOutcome]:
    """The first outcome per order in stream order: an order ends once."""
    seen: dict[str, OrderOutcome] = {}
    for outcome in outcomes:
        seen.setdefault(outcome.order_id, outcome)
    return list(seen.values())


class FillLike(Protocol):
    """What the position fold reads of a fill: a ``Fill`` or a ``TradeExecuted`` payload."""

    @property
    def trade_id(self) -> str: ...
    @property
    def side(self) -> Side: ...
    @property
    def price(self) -> Decimal: ...
    @property
    def quantity(self) -> Decimal: ...
    @property
    def fee(self) -> Decimal: ...
    @property
    def executed_at(self) -> datetime: ...


def apply_fill(position: Position | None, fill: Fill) -> list[Position]:
    """Apply one fill to the open position of its key (or to none).

    Returns the positions the fill changed, oldest first: the given one (updated or
    closed) and/or a newly opened one. The last element is open unless the fill closed
    the position exactly.
    """
    return apply_fills(position, [fill], key=fill.key)


def apply_fills(
    position: Position | None,
    fills: Sequence[FillLike],
    *,
    key: PositionKey | None = None,
) -> list[Position]:
    """Apply fills of one key in order; return every position they changed, oldest first.

    Each position appears once, in its final state: at most one is open (the last).
    ``key`` names the positions this opens; it defaults to the given position's key or,
    for ``Fill`` objects, to the first fill's.
    """
    # The fold keeps the open position in locals and builds a Position only for each
    # position it closes and for the open one at the end: this runs once per fill.
    changed: list[Position] = []
    if not fills:
        return changed
    if key is None:
        if position is not None:
            key = position.key
        elif isinstance(fills[0], Fill):
            key = fills[0].key
        else:
            raise TypeError("apply_fills needs key= unless a position or Fill objects give it")
    user_id, bot_id, symbol = key
    zero = Decimal(0)
    if position is not None and position.is_open:
        is_open = True
        pid: int | None = position.id
        long = position.side == "LONG"
        quantity = position.quantity
        average = position.average_entry_price
        max_quantity = position.max_quantity
        pnl = position.realized_pnl
        fees = position.fees
        count = position.fill_count
        opened_at = position.opened_at
        last_trade_id = position.last_trade_id
    else:
        is_open = False
        pid, long, quantity, average, max_quantity = None, True, zero, zero, zero
        pnl, fees, count, opened_at, last_trade_id = zero, zero, 0, _EPOCH, ""
    touched = False
    add, sub, mul, div = _EXACT.add, _EXACT.subtract, _EXACT.multiply, _EXACT.divide
    for fill in fills:
        buy = fill.side is Side.BUY
        if not is_open:
            is_open, touched, pid, long = True, True, None, buy
            quantity = max_quantity = fill.quantity
            average = fill.price
            pnl, fees, count = zero, fill.fee, 1
            opened_at, last_trade_id = fill.executed_at, fill.trade_id
            continue
        touched = True
        count += 1
        last_trade_id = fill.trade_id
        fees = add(fees, fill.fee)
        if long == buy:
            total = add(quantity, fill.quantity)
            cost = add(mul(average, quantity), mul(fill.price, fill.quantity))
            average = div(cost, total).quantize(AVERAGE_PRICE_EXPONENT, ROUND_HALF_EVEN, _EXACT)
            quantity = total
            max_quantity = max(max_quantity, total)
            continue
        # As min(quantity, fill.quantity): on a tie the position's own value (and scale).
        reduced = fill.quantity if fill.quantity < quantity else quantity
        gain = mul(sub(fill.price, average), reduced)
        pnl = add(pnl, gain) if long else sub(pnl, gain)
        quantity = sub(quantity, reduced)
        if quantity:
            continue
        changed.append(
            Position(
                pid,
                user_id,
                bot_id,
                symbol,
                "LONG" if long else "SHORT",
                quantity,
                average,
                max_quantity,
                pnl,
                fees,
                count,
                opened_at,
                fill.executed_at,
                last_trade_id,
            )
        )
        is_open = touched = False
        flipped = sub(fill.quantity, reduced)
        if flipped > 0:
            # The remainder opens the other side at the fill price; the fee stayed above.
            is_open, touched, pid, long = True, True, None, buy
            quantity = max_quantity = flipped
            average = fill.price
            pnl, fees, count = zero, zero, 1
            opened_at = fill.executed_at
    if is_open and touched:
        changed.append(
            Position(
                pid,
                user_id,
                bot_id,
                symbol,
                "LONG" if long else "SHORT",
                quantity,
                average,
                max_quantity,
                pnl,
                fees,
                count,
                opened_at,
                None,
                last_trade_id,
            )
        )
    return changed
