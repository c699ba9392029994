"""Market data payloads: ``market.tick`` and ``market.candle``."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from .intervals import CandleInterval
from .payload import Payload
from .scalars import NonNegativeDecimal, PositiveDecimal, SubjectToken, UtcDatetime


class MarketTick(Payload):
    """One public trade on the exchange for ``symbol``; subject ``market.tick.<symbol>``."""

    event_type: ClassVar[str] = "market.tick"
    schema_version: ClassVar[int] = 1
    subject_fields: ClassVar[tuple[str, ...]] = ("symbol",)
    key_field: ClassVar[str] = "symbol"

    symbol: SubjectToken
    price: PositiveDecimal
    quantity: PositiveDecimal
    timestamp: UtcDatetime
    is_buyer_maker: bool
    trade_id: str | None = None
    """Exchange trade id, when the feed provides one."""


class MarketCandle(Payload):
    """A closed OHLCV candle; subject ``market.candle.<interval>.<symbol>``."""

    event_type: ClassVar[str] = "market.candle"
    schema_version: ClassVar[int] = 1
    subject_fields: ClassVar[tuple[str, ...]] = ("interval", "symbol")
    key_field: ClassVar[str] = "symbol"

    symbol: SubjectToken
    interval: CandleInterval
    open_time: UtcDatetime
    close_time: UtcDatetime
    open: PositiveDecimal
    high: PositiveDecimal
    low: PositiveDecimal
    close: PositiveDecimal
    volume: NonNegativeDecimal
    trade_count: Annotated[int, Field(ge=0)]

    @model_validator(mode="after")
    def _consistent(self) -> MarketCandle:
        if self.close_time <= self.open_time:
            raise ValueError("close_time must be after open_time")
        if self.low > min(self.open, self.close) or self.high < max(self.open, self.close):
            raise ValueError("low must be <= open and close, and high >= open and close")
        return self
