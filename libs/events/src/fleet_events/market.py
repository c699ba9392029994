"""Market data payloads: ``market.tick`` and ``market.candle``."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from .payload import Payload
from .scalars import NonNegativeDecimal, PositiveDecimal, SubjectToken, UtcDatetime


class CandleInterval(StrEnum):
    """Candle widths the platform aggregates."""

    M1 = "1m"
    M5 = "5m"
    M15 = "15m"
    M30 = "30m"
    H1 = "1h"
    H4 = "4h"
    D1 = "1d"
    W1 = "1w"

    @property
    def duration(self) -> timedelta:
        """Return the width of one candle."""
        return _DURATIONS[self]

    @property
    def origin(self) -> timedelta:
        """Where periods start counting from the Unix epoch: weeks open on Mondays
        00:00 UTC (the epoch was a Thursday), every other width at the epoch."""
        return _MONDAY if self is CandleInterval.W1 else timedelta(0)


_DURATIONS = {
    CandleInterval.M1: timedelta(minutes=1),
    CandleInterval.M5: timedelta(minutes=5),
    CandleInterval.M15: timedelta(minutes=15),
    CandleInterval.M30: timedelta(minutes=30),
    CandleInterval.H1: timedelta(hours=1),
    CandleInterval.H4: timedelta(hours=4),
    CandleInterval.D1: timedelta(days=1),
    CandleInterval.W1: timedelta(weeks=1),
}
_MONDAY = timedelta(days=4)  # 1970-01-05, the first Monday after the epoch


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
