"""A candle as every tier returns it, and what a tier must offer the read path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from fleet_events import CandleInterval

if TYPE_CHECKING:
    import pyarrow as pa


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
    def values(self) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal, int]:
        """open, high, low, close, volume, trade_count."""
        return (self.open, self.high, self.low, self.close, self.volume, self.trade_count)

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
class FindsFirst(Protocol):
    """A tier that tells cheaply where its candles of a range begin."""

    async def first_open(
        self, symbol: str, interval: CandleInterval, start: datetime, end: datetime
    ) -> datetime | None:
        """Open time of the oldest candle it holds in [start, end), if any."""
        ...


@runtime_checkable
class ReportsGaps(Protocol):
    """A tier that records the ranges it could not serve while it streams."""

    gaps: list[Gap]


@runtime_checkable
class ServesBatches(Protocol):
    """A tier that can stream its candles as Arrow record batches (the cold tier)."""

    name: str
    gaps: list[Gap]

    def batches(
        self, symbol: str, interval: CandleInterval, start: datetime, end: datetime
    ) -> AsyncIterator[pa.RecordBatch]:
        """The candles opened in [start, end), oldest first, as batches of its columns."""
        ...


class Sink(Protocol):
    """Where a series is written: candles one by one, or a cold tier's batches."""

    def write(self, candle: Candle) -> None:
        """One candle."""
        ...

    def write_batch(self, batch: pa.RecordBatch) -> None:
        """A batch of the cold tier's columns (``fleet_events.history.COLD_COLUMNS``)."""
        ...

    def close(self) -> None:
        """Finish the output."""
        ...
