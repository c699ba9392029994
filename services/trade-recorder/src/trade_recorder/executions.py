"""The form a fill takes inside trade-recorder, and the decoder of the TRADES stream.

``Execution`` holds what the store and the position fold need of a ``trade.executed``
event: its id (text) and the payload's values (exact decimals, the fill time).

``decode_trade_event`` has two lanes with one result:

- the canonical lane: a fill laid out exactly as ``fleet_events.encode`` writes a valid
  one (``fleet_events.canonical``) is read with one regular expression;
- the contract lane: anything else is decoded and validated by the event contract as the
  runtime does for a subscription without its own decoder (``decode_accepted``): a fill
  becomes an ``Execution``, an order's outcome stays its ``Event``, and what the contract
  refuses raises the ``DecodeError`` or ``EventRejected`` that dead-letters it.

The canonical lane accepts only what the contract accepts, with the same values; where it
is not sure (another layout, a zero price, an impossible date) it steps aside for the
contract lane. Tests hold both to that on generated and mutated messages.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from fleet_events import Event, Side, TradeCompleted, TradeExecuted, TradeFailed
from fleet_events.canonical import (
    DECIMAL_STR,
    FRACTION,
    SECOND,
    SUBJECT_WORD,
    TEXT,
    envelope,
    fullmatch,
    utc_second,
)
from fleet_runtime.staging import decode_accepted

ACCEPTS = (TradeExecuted, TradeCompleted, TradeFailed)
"""The event types trade-recorder handles; another valid type is dead-lettered."""

_ZERO = Decimal(0)
_SIDES = {"BUY": Side.BUY, "SELL": Side.SELL}

# The payload as the encoder writes a valid fill, every field captured in order (the
# fill time's second and fraction apart). ``fee_currency`` holds 1 to 10 characters.
_CANONICAL = envelope(
    TradeExecuted.event_type,
    TradeExecuted.schema_version,
    r'"order_id":"(' + TEXT + r'+)","bot_id":"(' + SUBJECT_WORD + r')",'
    r'"user_id":"(' + TEXT + r'+)","symbol":"(' + SUBJECT_WORD + r')",'
    r'"trade_id":"(' + TEXT + r'+)","side":"(BUY|SELL)",'
    r'"quantity":"(' + DECIMAL_STR + r')","price":"(' + DECIMAL_STR + r')",'
    r'"fee":"(' + DECIMAL_STR + r')","fee_currency":"(' + TEXT + r'{1,10})",'
    r'"executed_at":"(' + SECOND + r")" + FRACTION + r'Z"',
)


class Execution(NamedTuple):
    """One fill as the store writes and folds it. ``id`` is the event id (text)."""

    id: str
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

    @classmethod
    def of(cls, event: Event[TradeExecuted]) -> Execution:
        """The execution of a validated fill."""
        data = event.data
        return cls(
            str(event.id),
            data.trade_id,
            data.order_id,
            data.bot_id,
            data.user_id,
            data.symbol,
            data.side,
            data.price,
            data.quantity,
            data.fee,
            data.fee_currency,
            data.executed_at,
        )


def canonical_execution(raw: bytes) -> Execution | None:
    """The execution in ``raw`` if it is a valid fill in canonical form, else None."""
    match = fullmatch(_CANONICAL, raw)
    if match is None:
        return None
    (
        event_id,
        sent,
        _,
        order_id,
        bot_id,
        user_id,
        symbol,
        trade_id,
        side,
        qty_text,
        price_text,
        fee_text,
        fee_currency,
        second,
        fraction,
    ) = match.groups()
    try:
        utc_second(sent)
        executed_at = utc_second(second)
    except ValueError:
        return None
    if fraction is not None:
        executed_at = executed_at.replace(microsecond=int(fraction))
    price = Decimal(price_text)
    quantity = Decimal(qty_text)
    if not (price > _ZERO and quantity > _ZERO):
        return None
    return Execution(
        event_id,
        trade_id,
        order_id,
        bot_id,
        user_id,
        symbol,
        _SIDES[side],
        price,
        quantity,
        Decimal(fee_text),
        fee_currency,
        executed_at,
    )


def decode_trade_event(raw: bytes) -> Execution | Event[Any]:
    """A TRADES message as the store takes it: an ``Execution`` for a fill, else the event.

    Raises ``fleet_events.DecodeError`` (malformed or invalid) or ``EventRejected`` (a
    valid event of a type trade-recorder does not handle) with the contract's reason.
    """
    execution = canonical_execution(raw)
    if execution is not None:
        return execution
    event = decode_accepted(raw, ACCEPTS)
    if type(event.data) is TradeExecuted:
        return Execution.of(event)
    return event
