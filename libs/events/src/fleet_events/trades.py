"""Trade payloads: ``trade.executed``, ``trade.completed``, ``trade.failed``.

All trade subjects end with the bot id (``trade.<verb>.<bot_id>``) and the envelope key
defaults to the bot id: every fill of one bot lands in one partition, so the positions
derived from them are applied in order.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field

from .payload import Payload
from .scalars import NonEmptyStr, NonNegativeDecimal, PositiveDecimal, SubjectToken, UtcDatetime


class Side(StrEnum):
    """Side of an order or fill."""

    BUY = "BUY"
    SELL = "SELL"


class _TradePayload(Payload):
    subject_fields: ClassVar[tuple[str, ...]] = ("bot_id",)
    key_field: ClassVar[str] = "bot_id"

    order_id: NonEmptyStr
    bot_id: SubjectToken
    user_id: NonEmptyStr
    symbol: SubjectToken


class TradeExecuted(_TradePayload):
    """An order was (partly) filled: one fill, identified by ``trade_id``.

    Schema version 2: v1 named ``executed_at`` ``timestamp`` and spelled ``side`` in
    lower case; the registered upcaster converts v1 events (see ``upcasting``).
    """

    event_type: ClassVar[str] = "trade.executed"
    schema_version: ClassVar[int] = 2

    trade_id: NonEmptyStr
    side: Side
    quantity: PositiveDecimal
    price: PositiveDecimal
    fee: NonNegativeDecimal
    fee_currency: Annotated[str, Field(min_length=1, max_length=10)]
    executed_at: UtcDatetime


class TradeCompleted(_TradePayload):
    """An order is fully done: total filled quantity and volume-weighted average price."""

    event_type: ClassVar[str] = "trade.completed"
    schema_version: ClassVar[int] = 1

    filled_quantity: PositiveDecimal
    average_price: PositiveDecimal


class TradeFailed(_TradePayload):
    """An order failed (rejected, cancelled or errored) without completing."""

    event_type: ClassVar[str] = "trade.failed"
    schema_version: ClassVar[int] = 1

    reason: NonEmptyStr
