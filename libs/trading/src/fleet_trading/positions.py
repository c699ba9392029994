"""Positions by the average-cost method, and the realized PnL each fill makes (pure, Decimal).

Position rules, per (user, bot, symbol):
- a fill in the position's direction (or on a flat key) adds to it; the average entry
  price becomes the volume-weighted average, rounded half-even to 18 decimal places;
- a fill against it reduces it: realized PnL += (fill price - average entry) x reduced
  quantity (negated for a short); the average entry price does not change;
- a fill that reaches zero closes the position (``closed_at`` = the fill's time); any
  remainder opens a new position on the other side at the fill price;
- a fill's fee is added to the position the fill touches first (the one it reduces or
  closes on a flip): one charge is never split, so no rounding is invented.
Realized PnL is gross of fees and in the quote currency; fees are summed as reported.

trade-recorder stores these positions; analytics-projector folds the same fills through
the same function for its performance figures, so both report the same realized PnL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Literal, Protocol, runtime_checkable

from fleet_events import Side

AVERAGE_PRICE_EXPONENT = Decimal("1e-18")
"""Average entry prices are kept to 18 decimal places (half-even)."""

EXACT = Context(prec=200, rounding=ROUND_HALF_EVEN)
"""Wide enough that sums and products of exchange-precision decimals are exact; only the
average price division rounds, and it rounds to the documented exponent."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

PositionSide = Literal["LONG", "SHORT"]
PositionKey = tuple[str, str, str]
"""(user_id, bot_id, symbol)."""

FillResult = tuple[Decimal, Decimal]
"""What one fill realized: (realized PnL, cost basis of the quantity it reduced).

Both are zero for a fill that only opens or adds to a position."""


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


@runtime_checkable
class KeyedFill(FillLike, Protocol):
    """A fill that names its position key (e.g. trade-recorder's ``Fill``)."""

    @property
    def key(self) -> PositionKey: ...


def apply_fills(
    position: Position | None,
    fills: Sequence[FillLike],
    *,
    key: PositionKey | None = None,
    results: list[FillResult] | None = None,
) -> list[Position]:
    """Apply fills of one key in order; return every position they changed, oldest first.

    Each position appears once, in its final state: at most one is open (the last).
    ``key`` names the positions this opens; it defaults to the given position's key or
    to the first fill's ``key`` when fills carry one. When ``results`` is given, one
    ``FillResult`` per fill is appended to it, in order.
    """
    # The fold keeps the open position in locals and builds a Position only for each
    # position it closes and for the open one at the end: this runs once per fill.
    changed: list[Position] = []
    if not fills:
        return changed
    if key is None:
        if position is not None:
            key = position.key
        elif isinstance(fills[0], KeyedFill):
            key = fills[0].key
        else:
            raise TypeError("apply_fills needs key= unless a position or keyed fills give it")
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
    add, sub, mul, div = EXACT.add, EXACT.subtract, EXACT.multiply, EXACT.divide
    for fill in fills:
        buy = fill.side is Side.BUY
        if not is_open:
            is_open, touched, pid, long = True, True, None, buy
            quantity = max_quantity = fill.quantity
            average = fill.price
            pnl, fees, count = zero, fill.fee, 1
            opened_at, last_trade_id = fill.executed_at, fill.trade_id
            if results is not None:
                results.append((zero, zero))
            continue
        touched = True
        count += 1
        last_trade_id = fill.trade_id
        fees = add(fees, fill.fee)
        if long == buy:
            total = add(quantity, fill.quantity)
            cost = add(mul(average, quantity), mul(fill.price, fill.quantity))
            average = div(cost, total).quantize(AVERAGE_PRICE_EXPONENT, ROUND_HALF_EVEN, EXACT)
            quantity = total
            max_quantity = max(max_quantity, total)
            if results is not None:
                results.append((zero, zero))
            continue
        # As min(quantity, fill.quantity): on a tie the position's own value (and scale).
        reduced = fill.quantity if fill.quantity < quantity else quantity
        gain = mul(sub(fill.price, average), reduced)
        pnl = add(pnl, gain) if long else sub(pnl, gain)
        if results is not None:
            results.append((gain if long else EXACT.minus(gain), mul(average, reduced)))
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
