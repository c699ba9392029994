"""A candle as every tier returns it, and what a tier must offer the read path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from fleet_events import CandleInterval


class HistoryError(ValueError):
    """A request the read path cannot serve, with the fix."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV candle; ``closed`` is False only for the period still forming."""

    symbol: str
    interval: CandleInterval
    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    trade_count: int
    closed: bool = True

    @property
    def close_time(self) -> datetime:
        """End of the period (exclusive)."""
        return self.open_time + self.interval.duration


@dataclass(frozen=True, slots=True)
class Gap:
    """A time range a tier should hold but could not serve (a missing or unreadable file)."""

    tier: str
    start: datetime
    end: datetime
    reason: str


class Tier(Protocol):
    """A store of candles the read path stitches: hot, warm or cold."""

    name: str

    def candles(
        self, symbol: str, interval: CandleInterval, start: datetime, end: datetime
    ) -> AsyncIterator[Candle]:
        """The candles opened in [start, end), oldest first, streamed."""
        ...


@runtime_checkable
class ReportsGaps(Protocol):
    """A tier that records the ranges it could not serve while it streams."""

    gaps: list[Gap]
